"""Sweeps that rerun the whole pipeline as DVC experiments, and their reports across experiments.

`python -m ganaug.sweep lowdata --per-class 10 50`: the low-data sweep (paper 003, Fig. 6), leak-free.
`python -m ganaug.sweep pools --pool-seeds 0 1 2`: GAN + pool replicates, the stronger test.
`python -m ganaug.sweep gan --seeds 0 1 --variant "ndis1: gan.n_dis=1 gan.steps=1600"`: GAN settings A/B.

Low-data sweep.

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

Pool replicates. Classifier seeds measure the noise of training on one pool; they cannot say
whether another GAN, trained the same way, would give the same verdict. Pool seed k reruns the
synthetic side with seed k (``gan.seed``, ``generate.seed``, ``projection.seed``, ``rl.seed``): a
new GAN, pool, DAPPER pool and RL policy, the real data and scorer unchanged. The unit of
replication is then the pool: per pool, the mean paired difference over the classifier seeds; over
pools, its mean, t interval and one-sample t-test, Holm-adjusted, with a verdict. (Real-only runs
do not depend on the pool and are shared by every replicate, so pooling all (pool, seed) pairs as if
independent would overstate n.) Writes reports/sweep/pools.{md,csv}.

GAN A/B. Each variant (a named set of ``gan.*`` overrides; ``default`` is params.yaml as it is) is
trained once per GAN seed as ``dvc exp run --temp train_gan`` (only the GAN: its quality is read
from reports/metrics/gan.json), so variants are compared on FID, KID, diversity and label agreement
at the same seeds, with the wall time each took on this machine. Writes reports/sweep/gan.{md,csv}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shlex
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug import paths
from ganaug.errors import GanaugError
from ganaug.report.stats import holm, mean_test, summarize, verdict, welch

OUT = paths.REPORT / "sweep"


def experiment_name(per_class: int | str, overrides: list[str], sweep: str = "lowdata") -> str:
    """<sweep>-<value>, plus a short hash of any extra overrides, so different sweeps never collide."""
    suffix = hashlib.md5("\n".join(overrides).encode()).hexdigest()[:6] if overrides else ""
    return f"{sweep}-{per_class}" + (f"-{suffix}" if suffix else "")


SWEEP_KEYS = ("data.per_class", "data.val_per_class")  # set by the sweep per size: not overridable


def with_overrides(overrides: list[str], path: str = "params.yaml", refused: tuple[str, ...] = SWEEP_KEYS):
    """params.yaml with ``-S key=value`` overrides applied (values parsed as YAML, as DVC does)."""
    import yaml

    from ganaug.params import parse_params

    raw = yaml.safe_load(Path(path).read_text()) or {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise GanaugError(f"sweep: -S {item!r}: expected key=value (as for dvc exp run -S)")
        if key in refused:
            raise GanaugError(f"sweep: -S {key}: the sweep sets it per size; pass sizes with --per-class instead")
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return parse_params(raw, f"{path} with -S {' '.join(overrides)}" if overrides else path)


def size_overrides(params, per_class: int, train_counts: list[int]) -> list[str]:
    """The -S overrides of one size: n real images per class and, so that nothing at this size is
    trained less, epochs scaled to at least the full size's optimiser steps (within one epoch:
    steps come in whole epochs), for the experiment runs and the scorer; the validation set shrinks
    in proportion (the GAN picks its checkpoint by FID against train + val images).
    ``train_counts``: the full-size training set's images per class (data/prepared)."""
    full = params.data.per_class
    if full == "all" or per_class > full:
        raise GanaugError(f"sweep: --per-class {per_class}: expected sizes up to data.per_class ({full})")
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
    name = experiment_name(per_class, overrides)  # the size's own overrides last: they win
    return run_named(name, [*overrides, *size_overrides(params, per_class, train_counts)], dvc)


def pool_name(pool_seed: int, overrides: list[str]) -> str:
    return experiment_name(pool_seed, overrides, sweep="pool")


def pool_overrides(pool_seed: int) -> list[str]:
    """Everything synthetic reseeded: GAN, pool, DAPPER pool, RL policy. Real data and scorer unchanged."""
    return [f"{section}.seed={pool_seed}" for section in ("gan", "generate", "projection", "rl")]


def run_named(name: str, sets: list[str], dvc: str = "dvc", targets: tuple[str, ...] = ()) -> str:
    existing = subprocess.run([dvc, "exp", "list", "--name-only"], capture_output=True, text=True).stdout.split()
    if name in existing:  # the same sweep point again: replace it (same params, so mostly DVC's run cache)
        subprocess.run([dvc, "exp", "remove", name], check=True, capture_output=True)
    cmd = [dvc, "exp", "run", "--temp", "-n", name, *(a for s in sets for a in ("-S", s)), *targets]
    print(f"sweep: {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise GanaugError(f"sweep: experiment {name} failed (exit {proc.returncode}); see the output above")
    return name


def read_summary(experiment: str, path: str = "reports/summary.json") -> dict:
    """reports/summary.json (every row's per-seed accuracies) of a finished experiment, or another of its files."""
    import dvc.api

    try:
        return json.loads(dvc.api.read(path, rev=experiment))
    except Exception as err:  # dvc raises several types for a missing revision or file
        raise GanaugError(
            f"sweep: {path} of experiment {experiment}: not readable ({type(err).__name__}); "
            "run the sweep without --report-only first"
        ) from None


def sweep_table(summaries: dict[int, dict]) -> pd.DataFrame:
    """One row per (size, table row): statistics over seeds, the verdict against real-only of the
    same size (paired, from that experiment's report), and the unpaired difference against real-only
    at the full size (the reference for "data saved")."""
    full = max(summaries)
    reference = list(summaries[full]["rows"]["0x real"]["seeds"].values())
    rows = []
    for n, head in sorted(summaries.items()):
        verdicts = {c["row"]: c for c in head.get("comparisons", []) if c["reference"] == "0x real"}
        for name, r in head["rows"].items():
            accs = list(r["seeds"].values())
            diff, lo, hi = welch(accs, reference)
            c = verdicts.get(name)
            rows.append(
                {
                    "per_class": n,
                    "row": name,
                    **summarize(accs),
                    "steps": r["steps"],
                    "vs_real_same_size": None if c is None else c["verdict"],
                    "diff_same_size": None if c is None else c["diff"],
                    "diff_vs_full_real": diff,
                    "diff_vs_full_real_ci_low": lo,
                    "diff_vs_full_real_ci_high": hi,
                }
            )
    return pd.DataFrame(rows)


def data_saved(table: pd.DataFrame) -> dict:
    """Per row: the smallest size whose mean reaches real-only at the full size (its Welch CI beside)."""
    full = table["per_class"].max()
    ref = float(table[(table["per_class"] == full) & (table["row"] == "0x real")]["mean"].iloc[0])
    out = {"reference_per_class": int(full), "reference_accuracy": round(ref, 5), "smallest_per_class": {}}
    for name, g in table[table["per_class"] < full].groupby("row"):
        reached = g[g["mean"] >= ref].sort_values("per_class")
        out["smallest_per_class"][name] = int(reached["per_class"].iloc[0]) if len(reached) else None
    return out


def to_markdown(table: pd.DataFrame, saved: dict) -> str:
    def pts(x):
        return "—" if pd.isna(x) else f"{100 * x:+.2f}"

    lines = [
        "### Low-data sweep: test accuracy by real images per class (each size: its own GAN, pool and scorer)",
        "",
        "| real/class | run | steps | n | accuracy (mean ± std) | 95% CI | vs real-only, same size | "
        f"vs real-only at {saved['reference_per_class']}/class (Welch 95% CI) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        ci = "—" if math.isnan(r["ci_low"]) else f"[{100 * r['ci_low']:.2f}, {100 * r['ci_high']:.2f}]"
        same = "—" if pd.isna(r["vs_real_same_size"]) else f"{pts(r['diff_same_size'])} ({r['vs_real_same_size']})"
        low, high = pts(r["diff_vs_full_real_ci_low"]), pts(r["diff_vs_full_real_ci_high"])
        vs_full = f"{pts(r['diff_vs_full_real'])} [{low}, {high}]"
        std = "n=1" if r["n"] < 2 else f"± {100 * r['std']:.2f}"
        lines.append(
            f"| {r['per_class']} | {r['row']} | {r['steps']} | {r['n']} | {100 * r['mean']:.2f} {std} | "
            f"{ci} | {same} | {vs_full} |"
        )
    lines += [
        "",
        f"Data saved: real-only at {saved['reference_per_class']}/class reaches "
        f"{100 * saved['reference_accuracy']:.2f} %; "
        "the smallest size whose mean reaches it: "
        + ", ".join(f"{row} {n if n else 'none of the sizes tried'}" for row, n in saved["smallest_per_class"].items())
        + ". Means only: read the Welch intervals before calling a size 'enough'.",
    ]
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, g in table.groupby("row", sort=False):
        g = g.sort_values("per_class")
        err = 100 * np.nan_to_num(g["ci_high"].to_numpy() - g["mean"].to_numpy())
        ax.errorbar(g["per_class"], 100 * g["mean"], yerr=err, marker="o", capsize=3, label=name)
    ax.set(
        xscale="log",
        xlabel="real images per class (each size: its own GAN and scorer)",
        ylabel="test accuracy (%)",
        title="Low-data sweep (95% CI over seeds)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def build_report(summaries: dict[int, dict], out: Path = OUT) -> pd.DataFrame:
    table = sweep_table(summaries)
    saved = data_saved(table)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "lowdata.csv", index=False, float_format="%.5f")
    (out / "lowdata.md").write_text(to_markdown(table, saved))
    (out / "data_saved.json").write_text(json.dumps(saved, indent=2) + "\n")
    plot(table, out / "low_data.png")
    return table


def pool_differences(summaries: dict[int, dict]) -> pd.DataFrame:
    """One row per (comparison, pool): the mean over classifier seeds of the paired difference."""
    rows = []
    for pool, head in sorted(summaries.items()):
        accs = {name: pd.Series({int(k): v for k, v in r["seeds"].items()}) for name, r in head["rows"].items()}
        for c in head["comparisons"]:
            # real-only rows do not depend on the pool (the same runs in every replicate): a comparison
            # of two of them has nothing to replicate and would only inflate the Holm family
            if c["reference"] is None or head["rows"][c["row"]]["mode"] == "baseline":
                continue
            a, b = accs[c["row"]], accs[c["reference"]]
            shared = sorted(set(a.index) & set(b.index))
            rows.append(
                {
                    "row": c["row"],
                    "reference": c["reference"],
                    "kind": c["kind"],
                    "pool": pool,
                    "seeds": len(shared),
                    "diff": float((a.loc[shared] - b.loc[shared]).mean()),
                    "pool_verdict": c["verdict"],
                }
            )
    return pd.DataFrame(rows)


def pools_table(summaries: dict[int, dict]) -> pd.DataFrame:
    """Per comparison, over pool replicates: mean difference, t CI, one-sample t-test, Holm, verdict."""
    per_pool = pool_differences(summaries)
    out = []
    for (row, ref, kind), g in per_pool.groupby(["row", "reference", "kind"], sort=False):
        d = mean_test(g["diff"])
        out.append(
            {
                "row": row,
                "reference": ref,
                "kind": kind,
                "pools": d["n"],
                "seeds_per_pool": int(g["seeds"].min()),
                "diff": d["mean"],
                "ci_low": d["ci_low"],
                "ci_high": d["ci_high"],
                "p": d["p"],
                "per_pool": ", ".join(f"{100 * x:+.2f}" for x in g["diff"]),
                "pool_verdicts": ", ".join(g["pool_verdict"]),
            }
        )
    table = pd.DataFrame(out)
    table["p_holm"] = holm(table["p"].to_numpy())
    table["verdict"] = [verdict(d, p, n) for d, p, n in zip(table["diff"], table["p_holm"], table["pools"])]
    return table


def pools_markdown(table: pd.DataFrame) -> str:
    def pts(x):
        return "—" if math.isnan(x) else f"{100 * x:+.2f}"

    lines = [
        "### Pool replicates: each comparison over independently trained GANs and pools",
        "",
        "| comparison | pools | seeds per pool | difference (points) | 95% CI over pools | p (Holm) | "
        "verdict | per pool | each pool's own verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, c in table.iterrows():
        p_holm = "—" if math.isnan(c["p_holm"]) else f"{c['p_holm']:.3g}"
        lines.append(
            f"| {c['row']} vs {c['reference']} | {c['pools']} | {c['seeds_per_pool']} | {pts(c['diff'])} | "
            f"[{pts(c['ci_low'])}, {pts(c['ci_high'])}] | {p_holm} | {c['verdict']} | {c['per_pool']} | "
            f"{c['pool_verdicts']} |"
        )
    lines += [
        "",
        "Unit of replication: the pool (GAN + pool + DAPPER pool + RL policy, reseeded). Per pool, the mean "
        "paired difference over the classifier seeds; over pools, a one-sample t-test, Holm-adjusted over the "
        "comparisons above (α = 0.05).",
    ]
    return "\n".join(lines) + "\n"


def build_pools_report(summaries: dict[int, dict], out: Path = OUT) -> pd.DataFrame:
    table = pools_table(summaries)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "pools.csv", index=False, float_format="%.5g")
    (out / "pools.md").write_text(pools_markdown(table))
    return table


GAN_TARGETS = {"fid": 30.0, "label_agreement": 0.80}  # issue 12's bar for the default GAN
GAN_METRICS = ("fid", "kid", "diversity_ratio", "label_agreement", "best_step", "minutes")


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``"name: gan.key=value gan.key=value"`` -> (name, overrides); only ``gan.*`` keys, never the seed
    (the sweep sets it), so a variant changes the generator's training and nothing else."""
    name, sep, rest = text.partition(":")
    name, sets = name.strip(), shlex.split(rest)
    if not sep or not name or not sets or not name.replace("-", "").replace("_", "").isalnum():
        raise GanaugError(
            f"sweep gan: --variant {text!r}: expected 'name: gan.key=value ...' (name: letters, digits, - or _)"
        )
    for item in sets:
        key = item.partition("=")[0]
        if not key.startswith("gan.") or key == "gan.seed" or "=" not in item:
            raise GanaugError(
                f"sweep gan: --variant {name}: {item!r}: expected gan.<key>=<value>, not gan.seed (set by --seeds)"
            )
    if name == "default":
        raise GanaugError("sweep gan: --variant default: that name is params.yaml as it is, always included")
    return name, sets


def gan_experiment_name(variant: str, seed: int, overrides: list[str]) -> str:
    return experiment_name(f"s{seed}", overrides, sweep=f"gan-{variant}")


def gan_table(results: dict[tuple[str, int], dict]) -> pd.DataFrame:
    """One row per (variant, GAN seed) from each experiment's gan.json, plus its wall time."""
    rows = [
        {"variant": v, "seed": k, **{m: r.get(m, math.nan) for m in GAN_METRICS}}
        for (v, k), r in sorted(results.items(), key=lambda item: (item[0][0] != "default", item[0]))
    ]
    return pd.DataFrame(rows)


def gan_markdown(table: pd.DataFrame) -> str:
    """Per variant: each metric's mean over GAN seeds, its per-seed values, and the mean paired
    difference from ``default`` at the same seeds (with 2 seeds, a direction, not a verdict)."""
    lines = [
        "### GAN A/B: each variant trained once per GAN seed (the pipeline's scorer and real data)",
        "",
        "| variant | seeds | FID (per seed) | Δ FID vs default | label agreement (per seed) | Δ agreement | "
        "KID | diversity | "
        "best step | minutes | targets (FID ≤ 30, agreement ≥ 0.80) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = table[table["variant"] == "default"].set_index("seed")
    for variant, g in table.groupby("variant", sort=False):
        g = g.set_index("seed")

        def each(m, fmt, g=g):  # bound now: called within this iteration
            return f"{fmt.format(g[m].mean())} ({', '.join(fmt.format(x) for x in g[m])})"

        def delta(m, fmt, g=g, variant=variant):
            shared = sorted(set(g.index) & set(base.index))
            if variant == "default" or not shared:
                return "—"
            d = summarize(g.loc[shared, m] - base.loc[shared, m])
            ci = "" if math.isnan(d["ci_low"]) else f" [{fmt.format(d['ci_low'])}, {fmt.format(d['ci_high'])}]"
            return f"{fmt.format(d['mean'])}{ci}"

        met = g["fid"].mean() <= GAN_TARGETS["fid"], g["label_agreement"].mean() >= GAN_TARGETS["label_agreement"]
        minutes = "—" if g["minutes"].isna().all() else f"{g['minutes'].mean():.1f}"
        lines.append(
            f"| {variant} | {len(g)} | {each('fid', '{:.1f}')} | {delta('fid', '{:+.1f}')} | "
            f"{each('label_agreement', '{:.3f}')} | {delta('label_agreement', '{:+.3f}')} | {g['kid'].mean():.4f} | "
            f"{g['diversity_ratio'].mean():.2f} | {', '.join(str(int(x)) for x in g['best_step'])} | {minutes} | "
            f"{'both' if all(met) else 'FID' if met[0] else 'agreement' if met[1] else 'neither'} |"
        )
    lines += [
        "",
        "Means over GAN seeds (lower FID and KID are better; label agreement is the scorer's, whose own "
        "agreement with the real test set is the floor to read it against, `real_test` in gan.json). Δ: the mean "
        "paired difference from default at the same seeds, with its t interval when there are 2 or more. "
        "Minutes: the wall time of each `dvc exp run train_gan` on this machine, process start included "
        "(— where DVC's run cache restored it).",
    ]
    return "\n".join(lines) + "\n"


def build_gan_report(results: dict[tuple[str, int], dict], out: Path = OUT) -> pd.DataFrame:
    table = gan_table(results)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "gan.csv", index=False, float_format="%.5g")
    (out / "gan.md").write_text(gan_markdown(table))
    return table


def run_gan_sweep(variants: dict[str, list[str]], seeds: list[int], overrides: list[str], report_only: bool) -> None:
    times_path = OUT / "gan-minutes.json"  # wall times survive a --report-only rebuild
    minutes = json.loads(times_path.read_text()) if times_path.exists() else {}
    results = {}
    for variant, sets in variants.items():
        for seed in seeds:
            name = gan_experiment_name(variant, seed, overrides)
            if not report_only:
                started = time.perf_counter()
                run_named(name, [*overrides, *sets, f"gan.seed={seed}"], targets=("train_gan",))
                elapsed = (time.perf_counter() - started) / 60
                minutes[name] = round(elapsed, 2) if elapsed > 1 else None  # under a minute: restored, not trained
                OUT.mkdir(parents=True, exist_ok=True)
                times_path.write_text(json.dumps(minutes, indent=1) + "\n")
            results[(variant, seed)] = {**read_summary(name, "reports/metrics/gan.json"), "minutes": minutes.get(name)}
    build_gan_report(results)


def main(argv: list[str] | None = None) -> int:
    from ganaug.stages import main as stage_main

    parser = argparse.ArgumentParser(
        description="Sweeps as DVC experiments: low-data sizes, pool replicates, GAN settings."
    )
    sub = parser.add_subparsers(dest="sweep", required=True)
    low = sub.add_parser("lowdata", help="the leak-free low-data sweep: one experiment per real-set size")
    low.add_argument(
        "--per-class", type=int, nargs="+", required=True, help="real images per class, each <= data.per_class"
    )
    pools = sub.add_parser("pools", help="GAN + pool replicates: one experiment per pool seed")
    pools.add_argument("--pool-seeds", type=int, nargs="+", required=True, help="at least 2 (e.g. 0 1 2)")
    gans = sub.add_parser("gan", help="GAN settings A/B: one train_gan experiment per (variant, GAN seed)")
    gans.add_argument(
        "--seeds", type=int, nargs="+", required=True, help="GAN seeds (gan.seed), the same for every variant"
    )
    gans.add_argument(
        "--variant",
        dest="variants",
        action="append",
        default=[],
        help="'name: gan.key=value ...' (repeatable); 'default' (params.yaml as it is) is always run",
    )
    for p in (low, pools, gans):
        p.add_argument(
            "-S",
            "--set",
            dest="overrides",
            action="append",
            default=[],
            help="extra params override for every experiment, as for dvc exp run -S "
            "(e.g. 'experiments.samplers=[cl-sam]')",
        )
        p.add_argument("--report-only", action="store_true", help="rebuild the report from the finished experiments")
    args = parser.parse_args(argv)

    def run() -> None:
        if args.sweep == "gan":
            variants = {"default": [], **dict(parse_variant(v) for v in args.variants)}
            for sets in variants.values():
                with_overrides([*args.overrides, *sets], refused=())  # every variant checked before the first GAN
            run_gan_sweep(variants, sorted(set(args.seeds)), args.overrides, args.report_only)
            print((OUT / "gan.md").read_text())
            return
        if args.sweep == "pools":
            with_overrides(args.overrides, refused=())  # a bad key or value stops here, before any experiment
            if len(set(args.pool_seeds)) < 2:
                raise GanaugError(
                    "sweep pools: --pool-seeds: expected at least 2 distinct seeds (a spread over pools needs 2)"
                )
            names = {
                k: pool_name(k, args.overrides)
                if args.report_only
                else run_named(pool_name(k, args.overrides), [*args.overrides, *pool_overrides(k)])
                for k in sorted(set(args.pool_seeds))
            }
            build_pools_report({k: read_summary(name) for k, name in names.items()})
            print((OUT / "pools.md").read_text())
            return
        from ganaug.data.store import load_classes

        params = with_overrides(args.overrides)  # the full size's recipe, which each size scales
        meta = load_classes(paths.PREPARED)  # the full size's training set (run `make run` first)
        counts = [meta["counts"]["train"][c] for c in meta["classes"]]
        for n in args.per_class:
            size_overrides(params, n, counts)  # every size checked before the first (long) experiment starts
        # the full size is an experiment too, with the same overrides: every size shares one recipe
        # (with none, DVC's run cache restores the workspace's own outputs instead of retraining)
        sizes = sorted({*args.per_class, params.data.per_class})
        names = {
            n: experiment_name(n, args.overrides) if args.report_only else run_size(n, args.overrides, params, counts)
            for n in sizes
        }
        build_report({n: read_summary(name) for n, name in names.items()})
        print((OUT / "lowdata.md").read_text())

    stage_main(run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
