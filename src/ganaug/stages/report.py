"""Stage report: reports/summary.{md,csv}, reports/comparisons.csv, reports/metrics/summary.json,
reports/figures/*.png (accuracy vs ratio, replacement / fixed-count curves, loss curves, score
histograms, highest/lowest grids, Grad-CAM of real-only vs the best augmented classifier).
It reads exactly the runs the current params define (ganaug.experiment.plan.planned_runs)."""

import json

from ganaug import paths
from ganaug.classify.models import load_classifier
from ganaug.data.store import load_classes, load_split
from ganaug.experiment.plan import RunSpec, planned_runs, recipe
from ganaug.gan.pool_format import open_pool
from ganaug.params import load_params
from ganaug.report.build import build_figures, build_tables, gradcam_images
from ganaug.report.figures import loss_curves
from ganaug.report.gradcam import gradcam_figure
from ganaug.report.rows import REAL_ONLY
from ganaug.report.tables import best_augmented, tail_classes
from ganaug.sampling.scores import load_scores
from ganaug.stages import main


def run() -> None:
    params = load_params()
    meta = load_classes(paths.PREPARED)
    classes = meta["classes"]
    rl_path = paths.METRICS / "rl.json"
    rl = json.loads(rl_path.read_text()) if rl_path.is_file() else {}
    extra = {"rl_chosen_ratio": rl["chosen_ratio"]} if "chosen_ratio" in rl else {}  # absent: no run used the agent
    table, _ = build_tables(
        paths.RUNS,
        planned_runs(params),
        recipe(params),
        paths.REPORT,
        paths.METRICS / "summary.json",
        extra,
        tail_classes(meta["counts"]["train"]),
    )
    scores = load_scores(paths.SCORES, "pool").table
    build_figures(table, paths.FIGURES, classes, open_pool(paths.POOL).images, scores)

    # loss curves and Grad-CAM: real-only (first seed) against the best augmented row (same seed)
    seed = params.experiments.seeds[0]
    real_only = RunSpec("baseline", "real", "0", seed)
    runs, models = {REAL_ONLY: real_only}, {REAL_ONLY: real_only}
    best = best_augmented(table)
    if best is not None:
        best_run = RunSpec("augment", best["method"], best["amount"], seed)
        runs[f"{best['row']} (highest mean)"] = models[best["row"]] = best_run
        random_rows = table[(table["mode"] == "augment") & (table["method"] == "random")]
        if len(random_rows) and best["method"] != "random":
            r = random_rows.iloc[0]
            runs[r["row"]] = RunSpec("augment", "random", r["amount"], seed)
    curves = {name: spec.report_dir for name, spec in runs.items() if (spec.report_dir / "summary.csv").is_file()}
    if curves:
        loss_curves(curves, paths.FIGURES / "loss_curves.png")
    models = {name: load_classifier(spec.model_dir) for name, spec in models.items() if spec.model_dir.is_dir()}
    if models:
        test = load_split(paths.PREPARED / "test.npz")
        images, labels = gradcam_images(test.images, test.labels)
        gradcam_figure(images, labels, classes, models, paths.FIGURES / "gradcam.png")
    print((paths.REPORT / "summary.md").read_text())


if __name__ == "__main__":
    main(run)
