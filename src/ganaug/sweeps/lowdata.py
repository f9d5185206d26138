"""`python -m ganaug.sweep lowdata --per-class 10 50`: the low-data sweep (paper 003, Fig. 6), leak-free.

Each size n is the whole pipeline rerun as a DVC experiment, ``dvc exp run --temp -S data.per_class=n``:
prepare keeps n real images per class, and the scorer, the GAN, the pool, the scores and every
classifier of that experiment are trained on those n images only (each records the ids it learned
from: ``train_ids_md5`` in reports/metrics/real-only.json and gan.json). Nothing is shared with the
full-size pipeline but the code, the test set and the params not overridden.

Why experiments and not a foreach chain in dvc.yaml: a size is exactly "the pipeline at another
data.per_class", which is what ``-S`` expresses; a chain would duplicate every upstream stage under
new paths. Each experiment is kept by DVC (``dvc exp show``, ``dvc exp apply lowdata-10``), its runs
land in the project's MLflow store (tagged ``dvc.exp_name``), and the sweep reads the finished
experiments' reports/summary.json with dvc.api.read.

Budgets: within a size every row trains the same optimiser steps (the experiments' match rule).
Across sizes, epochs (``experiments.epochs`` and the scorer's ``train.epochs``) scale so that a
size trains at least the full size's optimiser steps, within one epoch (steps come in whole
epochs: at batch 64, 10/class takes 1 step per epoch, 180 epochs = 180 steps; 50/class 7 steps,
26 epochs = 182 steps against 180), so a 10/class classifier is not under-trained because an epoch
of 100 images is one batch. The validation set shrinks in proportion, since the GAN picks its
checkpoint by FID against train + val: at 10/class it sees 10 + 5 real images per class, not 10 + 50.

The full size (data.per_class) runs as an experiment too, with the same extra overrides, so every
size shares one recipe. Writes reports/sweep/lowdata.{md,csv}, data_saved.json and low_data.png.

The few-shot protocol (DA-Fusion, Trabucco et al. 2024) is this sweep at ``--per-class 1 2 4 8 16`` with
``-S data.unlabelled=rest`` and the real-image samplers among experiments.samplers (``make run-fewshot``): at 1/class
the classifier sees 10 images, a batch of 64 is drawn from permutations of them chained (ganaug.classify.train), and
validation is 1 image per class, drawn from what the training images leave (ganaug.data.splits). Within a size
every row is paired over seeds with real-only and with each real-image reference that ran (REFERENCES:
pseudo-label, retrieval) at the same mode and amount, one Holm family for the table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug import paths
from ganaug.errors import GanaugError
from ganaug.experiment.plan import REAL_ONLY_ID, row_id
from ganaug.report.cells import ci_cell, signed_points
from ganaug.report.rows import label
from ganaug.report.stats import summarize, welch
from ganaug.sweeps.common import (
    OUT,
    experiment_name,
    holm_verdicts,
    read_summary,
    run_named,
    seed_series,
    versus,
    versus_cell,
    with_overrides,
)

SWEEP_KEYS = ("data.per_class", "data.val_per_class")  # set by the sweep per size: not overridable
# samplers of real unlabelled images (data.unlabelled), the baselines a synthetic row must beat at its size: the
# scorer's most confident labels of them, and those nearest each class's training images (Geng et al. 2024); a
# size's rows are paired with the ones that ran (experiments.samplers)
REFERENCES = ("pseudo-label", "retrieval")


def size_overrides(params, per_class: int, train_counts: list[int]) -> list[str]:
    """The -S overrides of one size: n real images per class and, so that nothing at this size is
    trained less, epochs scaled to at least the full size's optimiser steps (within one epoch:
    steps come in whole epochs), for the experiment runs and the scorer; the validation set shrinks
    in proportion (the GAN picks its checkpoint by FID against train + val images).
    ``train_counts``: the full-size training set's images per class (data/prepared)."""
    full = params.data.per_class
    if full == "all" or not 1 <= per_class <= full:
        raise GanaugError(f"sweep: --per-class {per_class}: expected sizes from 1 up to data.per_class ({full})")
    if per_class == full:
        return []  # the reference size: the params as they are
    if isinstance(params.data.val_per_class, float):
        raise GanaugError(
            f"sweep: data.val_per_class is a fraction ({params.data.val_per_class:g}); set a count (e.g. 50) "
            "so each size's validation set shrinks with its training set"
        )
    batch = params.train.batch_size
    steps_full = max(1, sum(train_counts) // batch)  # steps per epoch at the full size
    steps_small = max(1, sum(min(per_class, c) for c in train_counts) // batch)

    def scaled(epochs: int) -> int:
        return math.ceil(epochs * steps_full / steps_small)

    sets = [
        f"data.per_class={per_class}",
        f"data.val_per_class={max(1, math.ceil(params.data.val_per_class * per_class / full))}",
        f"train.epochs={scaled(params.train.epochs)}",
    ]
    if params.experiments.epochs is not None:  # null: the experiments use train.epochs, scaled above
        sets.append(f"experiments.epochs={scaled(params.experiments.epochs)}")
    return sets


def run_size(per_class: int, overrides: list[str], params, train_counts: list[int], dvc: str = "dvc") -> str:
    name = experiment_name(per_class, overrides, "lowdata")  # the size's own overrides last: they win
    return run_named(name, [*overrides, *size_overrides(params, per_class, train_counts)], dvc)


def references(row: dict) -> list[tuple[str, str]]:
    """(name, row id) of each row ``row`` is paired with at its size: real-only (every row but itself), and each
    real-image reference in REFERENCES at the row's mode and amount (a synthetic row faces all of them; a reference
    only those before it, so no pair is tested twice; real-only variants only real-only, as in the report)."""
    if row["mode"] == "baseline":
        return [] if row["method"] == "real" else [("real-only", REAL_ONLY_ID)]
    refs = [("real-only", REAL_ONLY_ID)]
    for method in REFERENCES:
        if row["method"] == method:
            break
        refs.append((method, row_id(row["mode"], method, row["amount"])))
    return refs


def in_table_order(rows: dict) -> list[str]:
    """A size's row ids: real-only, then the real-image references, then the rest in the experiment report's order."""

    def rank(row: str) -> int:
        if row == REAL_ONLY_ID:
            return 0
        method = rows[row]["method"]
        return 1 + REFERENCES.index(method) if method in REFERENCES else 1 + len(REFERENCES)

    return sorted(rows, key=rank)  # stable: the report's order within each rank


def sweep_table(summaries: dict[int, dict]) -> pd.DataFrame:
    """One row per (size, table row): statistics over seeds; paired over seeds with real-only and with each reference
    of REFERENCES that ran at the same size (``references``; NaN when it did not), Holm over every comparison of the
    table; and the unpaired difference against real-only at the full size (the reference for "data saved"). A row
    an experiment did not run is absent at that size. Rows are joined across sizes by id."""
    full = max(summaries)
    reference = list(summaries[full]["rows"][REAL_ONLY_ID]["seeds"].values())
    rows = []
    for n, head in sorted(summaries.items()):
        runs = head["rows"]
        seeds = {row: seed_series(r) for row, r in runs.items()}
        for row in in_table_order(runs):
            r = runs[row]
            accs = list(r["seeds"].values())
            diff, lo, hi = welch(accs, reference)
            entry = {
                "per_class": n,
                "id": row,
                "row": label(r["mode"], r["method"], r["amount"]),
                **summarize(accs),
                "steps": r["steps"],
            }
            for name, ref in references(r):
                entry.update(versus(name, seeds[row], seeds.get(ref)))
            rows.append(
                {
                    **entry,
                    "diff_vs_full_real": diff,
                    "diff_vs_full_real_ci_low": lo,
                    "diff_vs_full_real_ci_high": hi,
                }
            )
    return holm_verdicts(pd.DataFrame(rows), ["real-only", *REFERENCES])


def data_saved(table: pd.DataFrame) -> dict:
    """Per row: the smallest size whose mean reaches real-only at the full size (its Welch CI beside)."""
    full = table["per_class"].max()
    ref = float(table[(table["per_class"] == full) & (table["id"] == REAL_ONLY_ID)]["mean"].iloc[0])
    out = {"reference_per_class": int(full), "reference_accuracy": round(ref, 5), "smallest_per_class": {}}
    for _, g in table[table["per_class"] < full].groupby("id"):
        reached = g[g["mean"] >= ref].sort_values("per_class")
        out["smallest_per_class"][g["row"].iloc[0]] = int(reached["per_class"].iloc[0]) if len(reached) else None
    return out


def to_markdown(table: pd.DataFrame, saved: dict) -> str:
    pts = signed_points
    refs = [r for r in ("real-only", *REFERENCES) if f"verdict {r}" in table and table[f"verdict {r}"].notna().any()]
    lines = [
        "### Low-data sweep: test accuracy by real images per class (each size: its own GAN, pool and scorer)",
        "",
        "| real/class | run | steps | n | accuracy (mean ± std) | 95% CI | "
        + "".join(f"vs {r}, same size | " for r in refs)
        + f"vs real-only at {saved['reference_per_class']}/class (Welch 95% CI) |",
        "|---|---|---|---|---|---|" + "---|" * (len(refs) + 1),
    ]
    for _, r in table.iterrows():
        ci = ci_cell(r["ci_low"], r["ci_high"])
        low, high = pts(r["diff_vs_full_real_ci_low"]), pts(r["diff_vs_full_real_ci_high"])
        vs_full = f"{pts(r['diff_vs_full_real'])} [{low}, {high}]"
        std = "n=1" if r["n"] < 2 else f"± {100 * r['std']:.2f}"
        lines.append(
            f"| {r['per_class']} | {r['row']} | {r['steps']} | {r['n']} | {100 * r['mean']:.2f} {std} | {ci} | "
            + "".join(f"{versus_cell(r, ref)} | " for ref in refs)
            + f"{vs_full} |"
        )
    lines += [
        "",
        "Same size: differences in points, paired over the seeds both rows ran at the same optimiser steps, 95% CI; "
        "verdicts Holm-adjusted over every same-size comparison in the table. A reference is the same mode and "
        "amount of its sampler; '—' where it did not run at that size.",
        "",
        f"Data saved: real-only at {saved['reference_per_class']}/class reaches "
        f"{100 * saved['reference_accuracy']:.2f} %; "
        "the smallest size whose mean reaches it: "
        + ", ".join(f"{row} {n if n else 'none of the sizes tried'}" for row, n in saved["smallest_per_class"].items())
        + ". Means only: read the Welch intervals before calling a size 'enough'.",
    ]
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, path: Path) -> None:
    from ganaug.plots import plt, save  # pyplot with the files-only backend

    fig, ax = plt.subplots(figsize=(6, 4))
    for _, g in table.groupby("id", sort=False):
        name, g = g["row"].iloc[0], g.sort_values("per_class")
        err = 100 * np.nan_to_num(g["ci_high"].to_numpy() - g["mean"].to_numpy())
        ax.errorbar(g["per_class"], 100 * g["mean"], yerr=err, marker="o", capsize=3, label=name)
    ax.set(
        xscale="log",
        xlabel="real images per class (each size: its own GAN and scorer)",
        ylabel="test accuracy (%)",
        title="Low-data sweep (95% CI over seeds)",
    )
    ax.legend(fontsize=8)
    save(fig, path)


def build_report(summaries: dict[int, dict], out: Path = OUT) -> pd.DataFrame:
    table = sweep_table(summaries)
    saved = data_saved(table)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "lowdata.csv", index=False, float_format="%.5f")
    (out / "lowdata.md").write_text(to_markdown(table, saved))
    (out / "data_saved.json").write_text(json.dumps(saved, indent=2) + "\n")
    plot(table, out / "low_data.png")
    return table


def add_arguments(parser) -> None:
    parser.add_argument(
        "--per-class", type=int, nargs="+", required=True, help="real images per class, each <= data.per_class"
    )


def run(args) -> Path:
    from ganaug.data.store import load_classes

    params = with_overrides(args.overrides, refused=SWEEP_KEYS)  # the full size's recipe, which each size scales
    meta = load_classes(paths.PREPARED)  # the full size's training set (run `make run` first)
    counts = [meta["counts"]["train"][c] for c in meta["classes"]]
    for n in args.per_class:
        size_overrides(params, n, counts)  # every size checked before the first (long) experiment starts
    # the full size is an experiment too, with the same overrides: every size shares one recipe
    # (with none, DVC's run cache restores the workspace's own outputs instead of retraining)
    sizes = sorted({*args.per_class, params.data.per_class})
    names = {
        n: experiment_name(n, args.overrides, "lowdata")
        if args.report_only
        else run_size(n, args.overrides, params, counts)
        for n in sizes
    }
    build_report({n: read_summary(name) for n, name in names.items()})
    return OUT / "lowdata.md"
