"""`python -m ganaug.sweep unlabelled --per-class 10 100`: paper 003's setting, where a generator can know more
than the labelled set, against the fair baseline for the same unlabelled images.

Per labelled size n (scaled as the low-data sweep scales it: ganaug.sweeps.lowdata), per generator pre-trained on
the unlabelled images (``--generators``: style, ddpm) and per perturbation of its projections (a DVC experiment
each; the second of a generator restores the scorer, the generator and the pseudo-labelled pool from DVC's run
cache and retrains only what the projection changes): data.unlabelled: rest (the source's training images not
drawn as labelled, labels dropped), and the rows

  real-only            the n labelled images per class
  pseudo-label         + the unlabelled images the scorer labels most confidently, 1x the real set per class
  <generator> samples  + the generator's samples, labelled by the scorer
  DAPPER-W             + the labelled images projected into the style GAN's W and perturbed (random / predictor)
  Diffusion Inversion  + the labelled images DDIM-inverted by the diffusion model, perturbed, decoded (random)

all at the same optimiser steps. The table pairs every row with real-only and with pseudo-label over the shared
seeds (real-only and pseudo-label do not depend on the generator and are deterministic: the first experiment's
are used), Holm over the whole table. Beside it each generator pool's FID and label agreement, and the
projection grids (source -> reconstruction -> variants). Writes reports/sweep/unlabelled.{md,csv} and
reports/sweep/unlabelled/grid-<n>-<generator>-<method>.png.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ganaug import paths
from ganaug.experiment.plan import REAL_ONLY_ID, row_id
from ganaug.report.cells import ci_cell
from ganaug.report.stats import summarize
from ganaug.sweeps.common import (
    OUT,
    experiment_name,
    finished_experiments,
    holm_verdicts,
    read_summary,
    run_named,
    seed_series,
    versus,
    versus_cell,
    with_overrides,
)
from ganaug.sweeps.lowdata import SWEEP_KEYS, size_overrides

# 8 variants per projected image for every perturbation: the predictor has one direction per class, so 8 distinct
# steps along it (the coefficients, in spreads of w); a DAPPER pool is then 20 x 9 per class, enough for 1x
SHARED = ["data.unlabelled=rest"]
SAMPLERS = ["experiments.samplers=[pseudo-label,random,dapper]", "projection.variants=8"]
PREDICTOR = ["projection.coefficients=[-2,-1.5,-1,-0.5,0.5,1,1.5,2]"]


@dataclass(frozen=True)
class Generator:
    overrides: list[str]  # what makes the pipeline this generator's (before the sweep's and the user's -S)
    methods: tuple[str, ...]  # projection.method values, an experiment each
    samples_row: str  # the random sampler's row: the generator's own samples
    projected_row: str  # the dapper sampler's row: projected labelled images, perturbed


GENERATORS = {
    "style": Generator(
        [*SHARED, "gan.arch=style", *SAMPLERS], ("random", "predictor"), "style GAN samples", "DAPPER-W"
    ),
    # Diffusion Inversion perturbs its noise latents at random; a sample or an evaluation is gan.sample_steps
    # UNet passes per image (~10 s per 100 images on 2 cores), so its pool and FID evaluations are kept small
    "ddpm": Generator(
        [*SHARED, "gan.arch=ddpm", *SAMPLERS, "generate.pool_multiple=2", "gan.eval_samples=500"],
        ("random",),
        "DDPM samples",
        "Diffusion Inversion",
    ),
}
ROWS = {REAL_ONLY_ID: "real-only", row_id("augment", "pseudo-label", "1"): "pseudo-label"}  # id -> this table's row
SAMPLES = row_id("augment", "random", "1")  # a generator's own samples, the random sampler
PROJECTED = row_id("augment", "dapper", "1")  # its projected labelled images, perturbed


def point_overrides(generator: str, method: str, extra: list[str]) -> list[str]:
    predictor = PREDICTOR if method == "predictor" else []
    return [*GENERATORS[generator].overrides, f"projection.method={method}", *predictor, *extra]


def table_rows(summaries: dict[tuple[int, str, str], dict]) -> pd.DataFrame:
    """One row per (size, row): accuracy over seeds, and paired differences against real-only and pseudo-label.
    ``summaries``: (size, generator, method) -> that experiment's summary.json."""
    out = []
    for n in sorted({n for n, _, _ in summaries}):
        points = [(g, m) for size, g, m in summaries if size == n]
        base = summaries[(n, *points[0])]["rows"]
        rows = {label: base[row] for row, label in ROWS.items()}
        for g in dict.fromkeys(g for g, _ in points):
            spec = GENERATORS[g]
            first = next(m for generator, m in points if generator == g)
            samples = summaries[(n, g, first)]["rows"].get(SAMPLES)  # None: an experiment run without it
            if samples is not None:
                rows[f"{spec.samples_row} (random)"] = samples
            for method in spec.methods:
                if (g, method) in points:
                    rows[f"{spec.projected_row} ({method})"] = summaries[(n, g, method)]["rows"][PROJECTED]
        seeds = {label: seed_series(r) for label, r in rows.items()}
        for label, r in rows.items():
            entry = {"per_class": n, "row": label, "steps": r["steps"], **summarize(list(seeds[label]))}
            for ref in ("real-only", "pseudo-label"):
                if label not in (ref, "real-only"):
                    entry.update(versus(ref, seeds[label], seeds[ref]))
            out.append(entry)
    return holm_verdicts(pd.DataFrame(out), ["real-only", "pseudo-label"])


def generator_quality(experiment: str) -> dict:
    """The generator's own FID (its samples), its pool's size against the size wanted, and each pool's FID and label
    agreement, from the experiment's metrics."""
    gan = read_json(experiment, "reports/metrics/gan.json")
    pools = read_json(experiment, "reports/metrics/pool.json")
    pool = pool_meta(experiment)
    return {
        "pool_images": pool.get("count"),
        "pool_wanted": pool["per_class"] * pool["num_classes"] if "per_class" in pool else None,
        "gan_fid": gan.get("fid"),
        "real_test_fid": gan.get("real_test", {}).get("fid"),
        **{f"{name}_fid": pools.get(name, {}).get("fid") for name in ("pool", "projection", "pseudo")},
        **{
            f"{name}_agreement": pools.get(name, {}).get("label_agreement") for name in ("pool", "projection", "pseudo")
        },
    }


def pool_meta(experiment: str) -> dict:
    """The pool's meta.json (its size: a class the generator rarely draws stays short), or {} when the pool is not
    in this DVC cache (experiments pulled without their data): the size is then left blank, not the report."""
    from dvc.exceptions import DvcException

    try:
        return read_json(experiment, "data/synthetic/pool/meta.json")
    except (DvcException, OSError) as err:
        why = f"its meta.json could not be read from the DVC cache: {type(err).__name__}"
        print(f"sweep: {experiment}: pool size left blank ({why})")
        return {}


def read_json(experiment: str, path: str) -> dict:
    import dvc.api

    return json.loads(dvc.api.read(path, rev=experiment))


def to_markdown(table: pd.DataFrame, quality: dict[tuple[int, str], dict], commands: list[str]) -> str:
    lines = [
        "### Unlabelled images: generators pre-trained on them (DAPPER in W, Diffusion Inversion) vs "
        "pseudo-labelling them",
        "",
        "| labelled/class | row | steps | n | accuracy (mean ± std) | 95% CI | vs real-only | vs pseudo-label |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        std = "n=1" if r["n"] < 2 else f"± {100 * r['std']:.2f}"
        lines.append(
            f"| {r['per_class']} | {r['row']} | {r['steps']} | {r['n']} | {100 * r['mean']:.2f} {std} | "
            f"{ci_cell(r['ci_low'], r['ci_high'])} | {versus_cell(r, 'real-only')} | {versus_cell(r, 'pseudo-label')} |"
        )
    lines += [
        "",
        "Differences in points, paired over seeds at the same optimiser steps, 95% CI; verdicts Holm-adjusted over "
        "every comparison in the table.",
        "",
        "| labelled/class | generator | projection method | generator FID (samples) | real test FID | "
        "pool images / wanted | pool FID / agreement | projected pool FID / agreement | pseudo-labelled FID |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def num(x, fmt):
        return "—" if x is None else format(x, fmt)

    for (n, generator, method), q in sorted(quality.items()):
        lines.append(
            f"| {n} | {generator} | {method} | {num(q['gan_fid'], '.1f')} | {num(q['real_test_fid'], '.1f')} | "
            f"{num(q['pool_images'], ',')} / {num(q['pool_wanted'], ',')} | "
            f"{num(q['pool_fid'], '.1f')} / {num(q['pool_agreement'], '.2f')} | "
            f"{num(q['projection_fid'], '.1f')} / {num(q['projection_agreement'], '.2f')} | "
            f"{num(q['pseudo_fid'], '.1f')} |"
        )
    lines += [
        "",
        "FID in the scorer's feature space (lower is closer to the real images); agreement: how often the "
        "scorer predicts an image's label (the scorer's own labels for a generator's pool, hence ~1 there). Pool "
        "images: the samples kept, up to generate.pool_multiple x the labelled set, balanced per class; fewer when "
        "the scorer rarely gives the generator's samples some class and drawing stopped at generate.max_draws x that.",
        "",
        "Reproduce:",
        "",
        *(f"    {c}" for c in commands),
    ]
    return "\n".join(lines) + "\n"


def save_grids(names: dict[tuple[int, str, str], str], out: Path) -> None:
    import dvc.api

    out.mkdir(parents=True, exist_ok=True)
    for (n, generator, method), name in names.items():
        for source, target in (
            ("reports/projection/grid.png", f"grid-{n}-{generator}-{method}.png"),
            ("reports/gan/samples.png", f"samples-{n}-{generator}.png"),
        ):
            (out / target).write_bytes(dvc.api.read(source, rev=name, mode="rb"))


def add_arguments(parser) -> None:
    parser.add_argument(
        "--per-class", type=int, nargs="+", required=True, help="labelled images per class, each <= data.per_class"
    )
    parser.add_argument(
        "--generators",
        nargs="+",
        choices=list(GENERATORS),
        default=list(GENERATORS),
        help="generators pre-trained on the unlabelled images (style: DAPPER in W; ddpm: Diffusion Inversion)",
    )


def run(args) -> Path:
    from ganaug.data.store import load_classes

    generators = list(dict.fromkeys(args.generators))
    params = with_overrides([*SHARED, *args.overrides], refused=SWEEP_KEYS)
    meta = load_classes(paths.PREPARED)  # the full size's training set (run `make run` first)
    counts = [meta["counts"]["train"][c] for c in meta["classes"]]
    sizes = sorted({*args.per_class})
    for n in sizes:
        size_overrides(params, n, counts)  # every size checked before the first (long) experiment starts
    names, commands = {}, []
    for n in sizes:
        for g, method in ((name, m) for name in generators for m in GENERATORS[name].methods):
            point = point_overrides(g, method, args.overrides)
            sets = [*point, *size_overrides(params, n, counts)]
            commands.append("dvc exp run " + " ".join(f"-S '{s}'" for s in sets))
            names[(n, g, method)] = experiment_name(n, point, "unlabelled")
            if not args.report_only:
                run_named(names[(n, g, method)], sets)
    if args.report_only:  # a report of what has run so far: a point not run yet is named, and left out
        existing = finished_experiments()
        for key in [k for k, name in names.items() if name not in existing]:
            print(f"sweep: {names.pop(key)} ({key[1]} {key[2]}, {key[0]}/class) has not run: its rows are left out")
    summaries = {key: read_summary(name) for key, name in names.items()}
    table = table_rows(summaries)
    quality = {key: generator_quality(name) for key, name in names.items()}
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "unlabelled.csv", index=False, float_format="%.5f")
    (OUT / "unlabelled.md").write_text(to_markdown(table, quality, commands))
    save_grids(names, OUT / "unlabelled")
    return OUT / "unlabelled.md"
