"""One classifier training run, end to end: train, evaluate on the real test set, write the
model, the metrics JSON, summary.csv and the confusion matrix, and log it all to MLflow.
Used by train_scorer (the real-only row) and reused by every augmented-training stage."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ganaug import distributed
from ganaug.classify.models import create_classifier, save_classifier
from ganaug.classify.normalize import Normalizer
from ganaug.classify.train import Phase, evaluate, fit
from ganaug.data.store import Split, ids_digest
from ganaug.device import pick_device, seed_everything
from ganaug.plots import confusion_matrix_png
from ganaug.timing import work


@dataclass
class RunOutputs:
    model_dir: Path | None  # None: the model is not kept
    metrics_path: Path | None  # None: the caller completes the metrics and writes them (an experiment run)
    report_dir: Path  # summary.csv, confusion.png


@work()  # the time the timing table counts as training: start-up and MLflow set-up stay outside
def train_and_report(
    name: str,
    phases: list[Phase],
    val: Split,
    test: Split,
    meta: dict,
    out: RunOutputs,
    log_epoch=None,
    norm: Normalizer | None = None,
) -> tuple[dict, dict]:
    """Train ``phases[0].cfg.model`` through ``phases`` in order; write and return the test metrics, and
    return the timings.

    The first phase fits the normaliser (unless ``norm`` is given) and every later phase keeps it; epochs
    count on across phases. Under torchrun every rank trains and only rank 0 goes on to test, write and
    return; the others return (None, None)."""
    cfg = phases[0].cfg
    seed_everything(cfg.seed, cfg.deterministic)
    device = distributed.init(pick_device())
    classes = meta["classes"]
    model = create_classifier(
        cfg.model, len(classes), meta["channels"], cfg.pretrained_path if cfg.pretrained else None
    )
    started = time.perf_counter()
    history, steps, epochs_before = [], 0, 0
    for phase in phases:

        def log(row, offset=epochs_before):
            if log_epoch is not None:
                log_epoch({**row, "epoch": row["epoch"] + offset} if offset else row)

        rows, norm = fit(model, phase, val, len(classes), device, norm=norm, on_epoch=log)
        history += [{**row, "epoch": row["epoch"] + epochs_before, "phase": phase.name} for row in rows]
        steps += phase.steps
        epochs_before += phase.cfg.epochs
    train_seconds = time.perf_counter() - started
    if not distributed.is_main():
        return None, None
    test_metrics = evaluate(model, test, norm, device, len(classes), cfg.eval_batch_size)
    train = phases[0].data  # the main phase's images (under recipe: pretrain, the synthetic ones alone)

    config = {
        "model": cfg.model,
        "classes": classes,
        "channels": meta["channels"],
        "image_size": meta["image_size"],
        "mean": norm.mean,
        "std": norm.std,
        "train": cfg.recorded(),
        "device": device.type,
    }
    if distributed.world_size() > 1:  # recorded only then: single-process outputs stay as they were
        config["world_size"] = distributed.world_size()
    if out.model_dir is not None:
        save_classifier(out.model_dir, model, config)
    metrics = {
        "name": name,
        "test_accuracy": round(test_metrics["accuracy"], 5),
        "test_loss": round(test_metrics["loss"], 5),
        "per_class_accuracy": {c: round(a, 5) for c, a in zip(classes, test_metrics["per_class_accuracy"])},
        "val_accuracy": round(history[-1]["val_acc"], 5),
        "n_train": len(train),
        "train_ids_md5": ids_digest(train.ids),  # exactly which images it learned from (the low-data leak test)
        "n_test": len(test),
        "epochs": cfg.epochs,
        "steps": steps,
    }
    # timings vary run to run: MLflow gets them, the DVC metrics file stays deterministic
    timing = {
        "train_seconds": round(train_seconds, 1),
        "train_images_per_second": round(steps * cfg.batch_size / train_seconds, 1),
    }
    if out.metrics_path is not None:
        out.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        out.metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    out.report_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(history).drop(columns="seconds").to_csv(  # seconds: MLflow only (not deterministic)
        out.report_dir / "summary.csv", index=False, float_format="%.6g"
    )
    confusion_matrix_png(
        test_metrics["confusion"],
        classes,
        out.report_dir / "confusion.png",
        f"{name}: test accuracy {test_metrics['accuracy']:.4f}",
    )
    return metrics, timing
