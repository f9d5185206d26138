"""`python -m ganaug.budget`: choose the experiments' training budget on the validation set.

Trains the real-only classifier (the experiments' recipe) for each epoch count and seed and reads the
final validation accuracy -- never the test set. A budget is "converged" when its mean validation
accuracy is within ``--tolerance`` of the best budget tried; the smallest such budget is the choice.
Each budget is a separate run with its own one-cycle schedule, so a shorter run is not a prefix of a
longer one: the curve has to come from separate runs, not from one run's epochs.

Writes reports/budget/runs.csv (one row per run), reports/budget/budget.md (per budget: mean, std,
95% CI) and reports/budget/val_accuracy_vs_epochs.png. Run by hand (`make budget`), not by dvc repro.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ganaug import paths
from ganaug.report.stats import summarize

OUT = paths.REPORT / "budget"


def study_digest(params) -> str:
    """What a budget run depends on besides (epochs, seed): the training params and the real data.
    Rows of runs.csv with another digest are from other params and are never reused."""
    import hashlib
    import json

    from ganaug.digests import dvc_md5

    train = params.train.recorded(exclude={"epochs", "seed"})
    return hashlib.md5(json.dumps([train, dvc_md5(paths.PREPARED)], sort_keys=True).encode()).hexdigest()[:12]


def train_real_only(params, epochs: int, seed: int, scratch: Path) -> dict:
    from ganaug.classify.run import RunOutputs, train_and_report
    from ganaug.classify.train import Phase
    from ganaug.data.store import load_classes, load_split

    meta = load_classes(paths.PREPARED)
    train, val, test = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val", "test"))
    cfg = params.train.model_copy(update={"epochs": epochs, "seed": seed})
    run_dir = scratch / f"e{epochs}-s{seed}"
    out = RunOutputs(None, run_dir / "metrics.json", run_dir)
    metrics, timing = train_and_report(f"budget/e{epochs}-s{seed}", [Phase("train", train, cfg)], val, test, meta, out)
    return {
        "epochs": epochs,
        "seed": seed,
        "steps": metrics["steps"],
        "val_accuracy": metrics["val_accuracy"],
        "train_seconds": timing["train_seconds"],
    }


def per_budget(runs: pd.DataFrame) -> pd.DataFrame:
    rows = [
        {"epochs": e, "steps": int(g["steps"].iloc[0]), **summarize(g["val_accuracy"])}
        for e, g in runs.groupby("epochs", sort=True)
    ]
    return pd.DataFrame(rows)


def choose_epochs(table: pd.DataFrame, tolerance: float) -> int:
    """The smallest budget whose mean validation accuracy is within ``tolerance`` of the best mean."""
    best = table["mean"].max()
    return int(table.loc[table["mean"] >= best - tolerance, "epochs"].min())


def to_markdown(table: pd.DataFrame, chosen: int, tolerance: float) -> str:
    lines = ["| epochs | steps | validation accuracy (mean ± std) | n | 95% CI |", "|---|---|---|---|---|"]
    for _, r in table.iterrows():
        mark = " (chosen)" if r["epochs"] == chosen else ""
        lines.append(
            f"| {int(r['epochs'])}{mark} | {int(r['steps'])} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} | "
            f"{int(r['n'])} | [{100 * r['ci_low']:.2f}, {100 * r['ci_high']:.2f}] |"
        )
    lines += [
        "",
        f"Chosen: the smallest budget within {100 * tolerance:.1f} points of the best mean validation accuracy.",
    ]
    if chosen == table["epochs"].max():
        lines += [
            "The chosen budget is the largest one tried: validation accuracy was still rising, so this is a lower "
            "bound on the converged budget (try larger --epochs)."
        ]
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, chosen: int, path: Path) -> None:
    from ganaug.plots import plt, save  # pyplot with the files-only backend

    fig, ax = plt.subplots(figsize=(6, 4))
    yerr = [100 * (table["mean"] - table["ci_low"]), 100 * (table["ci_high"] - table["mean"])]
    ax.errorbar(
        table["epochs"], 100 * table["mean"], yerr=yerr, marker="o", capsize=3, label="real only (95% CI over seeds)"
    )
    ax.axvline(chosen, color="gray", ls="--", lw=1, label=f"chosen: {chosen} epochs")
    ax.set(
        xlabel="epochs (separate runs, one-cycle schedule each)",
        ylabel="validation accuracy (%)",
        title="Training budget, chosen on validation",
    )
    ax.legend(fontsize=8)
    save(fig, path)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from ganaug.params import load_params

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[6, 12, 20, 30, 40])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tolerance", type=float, default=0.005, help="accuracy (0.005 = half a point)")
    args = parser.parse_args(argv)
    params = load_params()
    OUT.mkdir(parents=True, exist_ok=True)
    digest = study_digest(params)
    # an interrupted study resumes: runs of these params already in runs.csv are kept, not repeated
    previous = pd.read_csv(OUT / "runs.csv") if (OUT / "runs.csv").is_file() else pd.DataFrame(columns=["digest"])
    done = previous[previous["digest"] == digest].to_dict("records") if "digest" in previous else []
    have = {(int(r["epochs"]), int(r["seed"])) for r in done}
    if len(done) < len(previous):
        print(f"budget: {len(previous) - len(done)} runs in {OUT / 'runs.csv'} are of other params; replacing them")
    with tempfile.TemporaryDirectory() as scratch:
        for epochs in args.epochs:
            for seed in args.seeds:
                if (epochs, seed) in have:
                    continue
                done.append({**train_real_only(params, epochs, seed, Path(scratch)), "digest": digest})
                print(
                    f"budget: {epochs} epochs, seed {seed}: validation accuracy {done[-1]['val_accuracy']:.4f}",
                    flush=True,
                )
                pd.DataFrame(done).to_csv(
                    OUT / "runs.csv", index=False
                )  # after every run: an interrupted study keeps its runs
    runs = pd.DataFrame(done)
    table = per_budget(runs[runs["epochs"].isin(args.epochs) & runs["seed"].isin(args.seeds)])
    chosen = choose_epochs(table, args.tolerance)
    (OUT / "budget.md").write_text(to_markdown(table, chosen, args.tolerance))
    plot(table, chosen, OUT / "val_accuracy_vs_epochs.png")
    print((OUT / "budget.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
