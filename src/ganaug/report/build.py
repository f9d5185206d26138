"""Assemble the report: summary.md / summary.csv / summary.json and the figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug.report import figures
from ganaug.report.tables import collect_runs, data_saved, headline, real_only_row, summary_table, to_markdown


def build_tables(runs_dir: Path, out_dir: Path, metrics_path: Path, extra: dict | None = None) -> pd.DataFrame:
    """summary.md + summary.csv in ``out_dir``; the headline numbers as DVC metrics at ``metrics_path``."""
    runs = collect_runs(runs_dir)
    table = summary_table(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.drop(columns=["per_class"]).to_csv(out_dir / "summary.csv", index=False, float_format="%.5f")
    head = headline(table)
    saved = data_saved(table, head["real_only"]) if "real_only" in head else None
    md = [to_markdown(table)]
    if (matches := runs["match"].dropna().unique()).size:
        md.append(f"Schedule matched by **{', '.join(matches)}** (`experiments.match`): "
                  + ("every run takes as many optimiser steps as real-only; synthetic images replace, not add, steps.\n"
                     if list(matches) == ["steps"] else "every run sees the real images the same number of epochs.\n"))
    if saved is not None:
        head["low_data"] = saved
        md.append(f"Low-data sweep: real-only at the full real set reaches {100 * saved['reference_accuracy']:.2f} %; "
                  f"augmented, the smallest real set that reaches it is "
                  f"{saved['smallest_per_class_augmented'] or 'none of the sizes tried'} per class "
                  f"(real alone: {saved['smallest_per_class_real_only'] or 'none'}).\n")
    for key, value in (extra or {}).items():
        head[key] = value
    (out_dir / "summary.md").write_text("\n".join(md))
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(head, indent=2) + "\n")
    return table


def build_figures(table: pd.DataFrame, figures_dir: Path, classes: list[str], pool_images=None, scores: pd.DataFrame | None = None) -> list[Path]:
    figures_dir.mkdir(parents=True, exist_ok=True)
    made = []
    if (table["mode"] == "augment").any():
        figures.accuracy_vs_ratio(table, figures_dir / "accuracy_vs_ratio.png")
        made.append(figures_dir / "accuracy_vs_ratio.png")
    if figures.curve(table, "replace", figures_dir / "replacement.png", "fraction of the real set replaced by synthetic",
                     "Replacement (set size constant; 1.0 = synthetic only)"):
        made.append(figures_dir / "replacement.png")
    if figures.curve(table, "count", figures_dir / "fixed_counts.png", "synthetic images added", "Fixed synthetic counts"):
        made.append(figures_dir / "fixed_counts.png")
    base = real_only_row(table)
    if figures.lowdata_curve(table, figures_dir / "low_data.png", None if base is None else float(base["mean"])):
        made.append(figures_dir / "low_data.png")
    if scores is not None:
        for column in ("confidence", "realism"):
            figures.score_histograms(scores, column, classes, figures_dir / f"hist_{column}.png")
            figures.extremes_grid(pool_images, scores, column, classes, figures_dir / f"extremes_{column}.png")
            made += [figures_dir / f"hist_{column}.png", figures_dir / f"extremes_{column}.png"]
    return made


def gradcam_images(test_images: np.ndarray, test_labels: np.ndarray, per_class: int = 1, max_classes: int = 10):
    """The first ``per_class`` test images of each class (a fixed, reproducible set)."""
    idx = np.concatenate([np.flatnonzero(test_labels == c)[:per_class] for c in range(min(max_classes, test_labels.max() + 1))])
    return test_images[idx], test_labels[idx]
