"""What a DAPPER projection leaves on disk: the images it projects (projection.per_class of each class, seeded), its
pool (the format of ganaug.gan.pool_format, plus source_ids, variant and recon_error per row), the grid of
originals, reconstructions and variants, and reports/metrics/projection.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ganaug.data.splits import stratified_take
from ganaug.gan.pool_format import save_pool
from ganaug.gan.projection import Projected
from ganaug.plots import projection_grid


def chosen(train, cfg, num_classes: int):
    """(images, labels, ids) of the training images to project: projection.per_class of each class, seeded."""
    counts = np.bincount(train.labels, minlength=num_classes)
    take = counts if cfg.per_class == "all" else np.minimum(counts, cfg.per_class)
    idx = stratified_take(train.labels, np.arange(len(train)), take.tolist(), np.random.default_rng(cfg.seed))
    return train.images[idx], train.labels[idx], train.ids[idx]


def save_projection(folder: Path, out: Projected, labels, ids, cfg, classes: list[str], about: dict) -> None:
    """The projection pool; ``about``: what its meta records of the generator (ganaug.gan.export.provenance)."""
    meta = {"method": cfg.method, "space": out.space, "variants": cfg.variants, "projected": len(out.latents)}
    rows = {"source_ids": ids[out.source], "variant": out.variant, "recon_error": out.errors[out.source]}
    rows["recon_error"] = rows["recon_error"].astype(np.float32)
    meta.update(classes=classes, **about)
    save_pool(folder, out.images, labels[out.source], out.variant_latents, meta, rows)


def report_projection(out: Projected, images, labels, classes: list[str], cfg, grid: Path, metrics_path: Path) -> dict:
    """The grid (one image per class: original, reconstruction, variants) and projection.json; returns the metrics."""
    variants = [np.flatnonzero((out.source == i) & (out.variant > 0)) for i in range(len(images))]
    show = np.concatenate([np.flatnonzero(labels == c)[:1] for c in range(len(classes))])
    shown = np.stack([out.images[variants[i]] for i in show])
    projection_grid(images[show], out.reconstructions[show], shown, [classes[labels[i]] for i in show], grid)
    metrics = {
        "projected": len(out.errors),
        "pool_size": len(out.variant_latents),
        "recon_mse_mean": round(float(out.errors.mean()), 5),
        "recon_mse_median": round(float(np.median(out.errors)), 5),
        "method": cfg.method,
        "space": out.space,
    }
    if out.fit_r2 is not None:  # how much of the target the linear predictor explains, per class
        metrics["predictor_r2"] = {"mean": round(float(out.fit_r2.mean()), 4), "min": round(float(out.fit_r2.min()), 4)}
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
