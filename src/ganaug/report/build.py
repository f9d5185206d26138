"""Assemble the report: summary.md / summary.csv / summary.json and the figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug.report import figures
from ganaug.report.tables import collect_runs, comparisons, details, headline, summary_table, to_markdown

MATCH_NOTE = {
    "steps": "every run takes as many optimiser steps as real-only; synthetic images replace, not add, steps.",
    "real_epochs": "every run sees the real images the same number of epochs (more steps with more synthetic "
    "images); each row is compared with the real-only row trained for the same steps.",
}


def build_tables(
    runs_dir: Path,
    specs,
    recipe: dict,
    out_dir: Path,
    metrics_path: Path,
    extra: dict | None = None,
    tail: list[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """summary.md, summary.csv, comparisons.csv and summary.json (every statistic) in ``out_dir`` from
    the planned runs ``specs``; the headline numbers as DVC metrics at ``metrics_path``; ``tail``: the
    classes of the tail-third accuracy column (none on a balanced set)."""
    runs = collect_runs(runs_dir, specs, recipe, tail)
    table = summary_table(runs)
    comp = comparisons(runs, table)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "summary.csv", index=False, float_format="%.5f")
    comp.to_csv(out_dir / "comparisons.csv", index=False, float_format="%.5g")
    head = headline(table, comp)
    (out_dir / "summary.json").write_text(json.dumps({**details(table, comp, runs), "recipe": recipe}, indent=2) + "\n")
    md = [
        to_markdown(table, comp),
        f"Recipe: {recipe['epochs']} epochs, schedule matched by **{recipe['match']}** (`experiments.match`): "
        f"{MATCH_NOTE[recipe['match']]}"
        + (
            f" Every run, real-only included, ends with {recipe['finetune_epochs']} epochs on real images only."
            if recipe["finetune_epochs"]
            else ""
        )
        + "\n",
    ]
    for key, value in (extra or {}).items():
        head[key] = value
    (out_dir / "summary.md").write_text("\n".join(md))
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(head, indent=2) + "\n")
    return table, comp


def build_figures(
    table: pd.DataFrame, figures_dir: Path, classes: list[str], pool_images=None, scores: pd.DataFrame | None = None
) -> list[Path]:
    figures_dir.mkdir(parents=True, exist_ok=True)
    made = []
    if (table["mode"] == "augment").any():
        figures.accuracy_vs_ratio(table, figures_dir / "accuracy_vs_ratio.png")
        made.append(figures_dir / "accuracy_vs_ratio.png")
    if figures.curve(
        table,
        "replace",
        figures_dir / "replacement.png",
        "fraction of the real set replaced by synthetic",
        "Replacement (set size constant; 1.0 = synthetic only)",
    ):
        made.append(figures_dir / "replacement.png")
    if figures.curve(
        table, "count", figures_dir / "fixed_counts.png", "synthetic images added", "Fixed synthetic counts"
    ):
        made.append(figures_dir / "fixed_counts.png")
    if scores is not None:
        for column in ("confidence", "realism"):
            figures.score_histograms(scores, column, classes, figures_dir / f"hist_{column}.png")
            figures.extremes_grid(pool_images, scores, column, classes, figures_dir / f"extremes_{column}.png")
            made += [figures_dir / f"hist_{column}.png", figures_dir / f"extremes_{column}.png"]
    return made


def gradcam_images(test_images: np.ndarray, test_labels: np.ndarray, per_class: int = 1, max_classes: int = 10):
    """The first ``per_class`` test images of each class (a fixed, reproducible set)."""
    idx = np.concatenate(
        [np.flatnonzero(test_labels == c)[:per_class] for c in range(min(max_classes, test_labels.max() + 1))]
    )
    return test_images[idx], test_labels[idx]
