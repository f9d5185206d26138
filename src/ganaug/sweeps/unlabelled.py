"""`python -m ganaug.sweep unlabelled --per-class 10 100`: paper 003's setting, where a generator can know more
than the labelled set, against the fair baseline for the same unlabelled images.

Per labelled size n (a DVC experiment each, scaled as the low-data sweep scales it: ganaug.sweeps.lowdata) and
per DAPPER perturbation (``projection.method`` random and predictor, one experiment each; the second restores the
scorer, the style GAN and the pseudo-labelled pool from DVC's run cache and retrains only what the projection
changes): data.unlabelled: rest (the source's training images not drawn as labelled, labels dropped), gan.arch:
style pre-trained on them, and the rows

  real-only      the n labelled images per class
  pseudo-label   + the unlabelled images the scorer labels most confidently, 1x the real set per class
  random         + the style GAN's samples, labelled by the scorer
  dapper-W       + the labelled images projected into the style GAN's W and perturbed (random / predictor)

all at the same optimiser steps. The table pairs every row with real-only and with pseudo-label over the shared
seeds (real-only, pseudo-label and random are the same runs in both experiments of a size: deterministic, so
the random-method experiment's are used), Holm over the whole table. Beside it each generator pool's FID and
label agreement, and the projection grids (source -> reconstruction -> variants). Writes
reports/sweep/unlabelled.{md,csv} and reports/sweep/unlabelled/grid-<n>-<method>.png.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ganaug import paths
from ganaug.report.cells import ci_cell, signed_points
from ganaug.report.stats import holm, paired, summarize, verdict
from ganaug.sweeps.common import OUT, experiment_name, read_summary, run_named, with_overrides
from ganaug.sweeps.lowdata import SWEEP_KEYS, size_overrides

METHODS = ("random", "predictor")
# 8 variants per projected image for both perturbations: the predictor has one direction per class, so 8 distinct
# steps along it (the coefficients, in spreads of w); the DAPPER pool is then 20 x 9 per class, enough for 1x
REGIME = [
    "data.unlabelled=rest",
    "gan.arch=style",
    "experiments.samplers=[pseudo-label,random,dapper]",
    "projection.variants=8",
]
PREDICTOR = ["projection.coefficients=[-2,-1.5,-1,-0.5,0.5,1,1.5,2]"]
ROWS = {"0x real": "real-only", "pseudo-label 1x": "pseudo-label", "random 1x": "style GAN samples (random)"}


def point_overrides(method: str, extra: list[str]) -> list[str]:
    return [*REGIME, f"projection.method={method}", *(PREDICTOR if method == "predictor" else []), *extra]


def table_rows(summaries: dict[tuple[int, str], dict]) -> pd.DataFrame:
    """One row per (size, row): accuracy over seeds, and paired differences against real-only and pseudo-label."""
    out = []
    for n in sorted({n for n, _ in summaries}):
        base = summaries[(n, "random")]["rows"]
        rows = {label: base[name] for name, label in ROWS.items()}
        for method in METHODS:
            rows[f"DAPPER-W ({method})"] = summaries[(n, method)]["rows"]["dapper 1x"]
        seeds = {label: pd.Series({int(k): v for k, v in r["seeds"].items()}) for label, r in rows.items()}
        for label, r in rows.items():
            entry = {"per_class": n, "row": label, "steps": r["steps"], **summarize(list(seeds[label]))}
            for ref in ("real-only", "pseudo-label"):
                if label in (ref, "real-only"):
                    continue
                d = paired(seeds[label], seeds[ref])
                entry.update({f"vs {ref}": d["diff"], f"vs {ref} ci": (d["ci_low"], d["ci_high"]), f"p {ref}": d["p"]})
            out.append(entry)
    table = pd.DataFrame(out)
    refs = [r for r in ("real-only", "pseudo-label") if f"p {r}" in table]
    pvalues = pd.concat([table[f"p {r}"] for r in refs]).to_numpy()
    adjusted = holm(pvalues)  # one family: every comparison of the table
    for i, ref in enumerate(refs):
        table[f"p_holm {ref}"] = adjusted[i * len(table) : (i + 1) * len(table)]
        table[f"verdict {ref}"] = [
            None if math.isnan(p) else verdict(d, p, n)
            for d, p, n in zip(table[f"vs {ref}"], table[f"p_holm {ref}"], table["n"])
        ]
    return table


def generator_quality(experiment: str) -> dict:
    """The style GAN's own FID (its samples) and each pool's FID and label agreement, from the experiment's metrics."""
    gan = read_json(experiment, "reports/metrics/gan.json")
    pools = read_json(experiment, "reports/metrics/pool.json")
    return {
        "gan_fid": gan.get("fid"),
        "real_test_fid": gan.get("real_test", {}).get("fid"),
        **{f"{name}_fid": pools.get(name, {}).get("fid") for name in ("pool", "projection", "pseudo")},
        **{
            f"{name}_agreement": pools.get(name, {}).get("label_agreement") for name in ("pool", "projection", "pseudo")
        },
    }


def read_json(experiment: str, path: str) -> dict:
    import dvc.api

    return json.loads(dvc.api.read(path, rev=experiment))


def to_markdown(table: pd.DataFrame, quality: dict[tuple[int, str], dict], commands: list[str]) -> str:
    pts = signed_points

    def vs(r, ref):
        if pd.isna(r.get(f"verdict {ref}")):
            return "—"
        low, high = r[f"vs {ref} ci"]
        return f"{pts(r[f'vs {ref}'])} [{pts(low)}, {pts(high)}] {r[f'verdict {ref}']}"

    lines = [
        "### Unlabelled images: a style GAN pre-trained on them (DAPPER in W) vs pseudo-labelling them",
        "",
        "| labelled/class | row | steps | n | accuracy (mean ± std) | 95% CI | vs real-only | vs pseudo-label |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        std = "n=1" if r["n"] < 2 else f"± {100 * r['std']:.2f}"
        lines.append(
            f"| {r['per_class']} | {r['row']} | {r['steps']} | {r['n']} | {100 * r['mean']:.2f} {std} | "
            f"{ci_cell(r['ci_low'], r['ci_high'])} | {vs(r, 'real-only')} | {vs(r, 'pseudo-label')} |"
        )
    lines += [
        "",
        "Differences in points, paired over seeds at the same optimiser steps, 95% CI; verdicts Holm-adjusted over "
        "every comparison in the table.",
        "",
        "| labelled/class | DAPPER method | style GAN FID (samples) | real test FID | pool FID / agreement | "
        "DAPPER pool FID / agreement | pseudo-labelled FID |",
        "|---|---|---|---|---|---|---|",
    ]

    def num(x, fmt):
        return "—" if x is None else format(x, fmt)

    for (n, method), q in sorted(quality.items()):
        lines.append(
            f"| {n} | {method} | {num(q['gan_fid'], '.1f')} | {num(q['real_test_fid'], '.1f')} | "
            f"{num(q['pool_fid'], '.1f')} / {num(q['pool_agreement'], '.2f')} | "
            f"{num(q['projection_fid'], '.1f')} / {num(q['projection_agreement'], '.2f')} | "
            f"{num(q['pseudo_fid'], '.1f')} |"
        )
    lines += [
        "",
        "FID in the scorer's feature space (lower is closer to the real images); agreement: how often the "
        "scorer predicts an image's label (the scorer's own labels for the GAN pool, hence ~1 there).",
        "",
        "Reproduce:",
        "",
        *(f"    {c}" for c in commands),
    ]
    return "\n".join(lines) + "\n"


def save_grids(names: dict[tuple[int, str], str], out: Path) -> None:
    import dvc.api

    out.mkdir(parents=True, exist_ok=True)
    for (n, method), name in names.items():
        for source, target in (
            ("reports/projection/grid.png", f"grid-{n}-{method}.png"),
            ("reports/gan/samples.png", f"samples-{n}.png"),
        ):
            (out / target).write_bytes(dvc.api.read(source, rev=name, mode="rb"))


def add_arguments(parser) -> None:
    parser.add_argument(
        "--per-class", type=int, nargs="+", required=True, help="labelled images per class, each <= data.per_class"
    )


def run(args) -> Path:
    from ganaug.data.store import load_classes

    params = with_overrides([*REGIME, *args.overrides], refused=SWEEP_KEYS)
    meta = load_classes(paths.PREPARED)  # the full size's training set (run `make run` first)
    counts = [meta["counts"]["train"][c] for c in meta["classes"]]
    sizes = sorted({*args.per_class})
    for n in sizes:
        size_overrides(params, n, counts)  # every size checked before the first (long) experiment starts
    names, commands = {}, []
    for n in sizes:
        for method in METHODS:
            sets = [*point_overrides(method, args.overrides), *size_overrides(params, n, counts)]
            name = experiment_name(n, point_overrides(method, args.overrides), "unlabelled")
            commands.append("dvc exp run " + " ".join(f"-S '{s}'" for s in sets))
            names[(n, method)] = name if args.report_only else run_named(name, sets)
    summaries = {key: read_summary(name) for key, name in names.items()}
    table = table_rows(summaries)
    quality = {key: generator_quality(name) for key, name in names.items()}
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "unlabelled.csv", index=False, float_format="%.5f")
    (OUT / "unlabelled.md").write_text(to_markdown(table, quality, commands))
    save_grids(names, OUT / "unlabelled")
    return OUT / "unlabelled.md"
