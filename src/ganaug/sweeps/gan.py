"""`python -m ganaug.sweep gan --seeds 0 1 --variant "ndis1: gan.n_dis=1 gan.steps=1600"`: GAN settings A/B.

Each variant (a named set of ``gan.*`` overrides; ``default`` is params.yaml as it is) is
trained once per GAN seed as ``dvc exp run --temp train_gan`` (only the GAN: its quality is read
from reports/metrics/gan.json), so variants are compared on FID, KID, diversity and label agreement
at the same seeds, with the wall time each took on this machine. Writes reports/sweep/gan.{md,csv}.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from pathlib import Path

import pandas as pd

from ganaug.errors import GanaugError
from ganaug.report.stats import summarize
from ganaug.sweeps.common import OUT, experiment_name, read_summary, run_named, with_overrides

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


def add_arguments(parser) -> None:
    parser.add_argument(
        "--seeds", type=int, nargs="+", required=True, help="GAN seeds (gan.seed), the same for every variant"
    )
    parser.add_argument(
        "--variant",
        dest="variants",
        action="append",
        default=[],
        help="'name: gan.key=value ...' (repeatable); 'default' (params.yaml as it is) is always run",
    )


def run(args) -> Path:
    variants = {"default": [], **dict(parse_variant(v) for v in args.variants)}
    for sets in variants.values():
        with_overrides([*args.overrides, *sets])  # every variant checked before the first GAN
    run_gan_sweep(variants, sorted(set(args.seeds)), args.overrides, args.report_only)
    return OUT / "gan.md"
