"""What a trained GAN leaves for people to read: reports/metrics/gan.json (its best step's quality beside the real
floor: held-out real test images scored exactly like generated ones) and reports/gan/quality.csv and losses.csv."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug.data.store import ids_digest
from ganaug.metrics.quality import balanced_draw


def gan_metrics(gan, evaluator, test, source, cfg, classes: list[str], conditional: bool, learned_from: str) -> dict:
    """The best step's FID, KID, diversity (and label agreement, for a conditional generator) beside the real
    floor; ``source`` is what it learned from, the split named ``learned_from`` (train or unlabelled)."""
    held_out = balanced_draw(test.labels, cfg.eval_samples, len(classes), cfg.seed)  # class-balanced, like fakes
    floor = evaluator.evaluate(test.images[held_out], test.labels[held_out])
    best = next(r for r in gan.evals if r["step"] == gan.best["step"])
    kept = ("fid", "kid", "diversity_ratio", *(("label_agreement",) if conditional else ()))
    return {
        "best_step": gan.best["step"],
        "steps": gan.step,
        "train_ids_md5": ids_digest(source.ids),
        **({} if conditional else {"learned_from": learned_from, "images": len(source)}),
        **{k: round(best[k], 5) for k in kept},
        "real_test": {k: round(floor[k], 5) for k in ("fid", "kid", "diversity_ratio", "label_agreement")},
        "diversity_per_class": dict(zip(classes, (round(v, 4) for v in best["diversity_per_class"]))),
    }


def write_results(gan, metrics: dict, metrics_path: Path, reports: Path) -> None:
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    reports.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        [{k: v for k, v in r.items() if k not in ("seconds", "diversity_per_class")} for r in gan.evals]
    ).to_csv(reports / "quality.csv", index=False, float_format="%.6g")
    pd.DataFrame(gan.losses).to_csv(reports / "losses.csv", index=False, float_format="%.6g")


def scalars(row: dict) -> dict:
    """A quality or loss row's numbers, for MLflow."""
    return {k: v for k, v in row.items() if k != "step" and np.isscalar(v)}
