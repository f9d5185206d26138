"""One experiment run: build a training set from the real images and a synthetic selection, train
the classifier on it, test it on the real test set.

Modes (``RunSpec.mode``):
  baseline  real images only; variant ``real`` or ``rotate`` (+ rotation augmentation, paper 004)
  augment   real + a selection of ``amount`` x the real set, chosen by the select@ stage
  replace   ``amount`` (a fraction) of each class's real images swapped for synthetic; same set size (paper 001)
  count     real + ``amount`` synthetic images (a fixed number, paper 004)
  lowdata   ``per_class`` real images per class, alone (``sampler`` real) or + lowdata_ratio x synthetic (paper 003)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug import paths
from ganaug.data.splits import stratified_take
from ganaug.data.store import Split
from ganaug.errors import GanaugError
from ganaug.gan.pool import open_pool
from ganaug.sampling.samplers import class_quotas, sampler_options, select
from ganaug.sampling.scores import Scores
from ganaug.sampling.selection import load_source_scores, read_selection, save_selection, source_of

MODES = ("baseline", "augment", "replace", "count", "lowdata")


@dataclass(frozen=True)
class RunSpec:
    mode: str
    sampler: str  # a sampler name; for baseline the variant (real | rotate); for lowdata also 'real'
    amount: str  # ratio / fraction / count exactly as params.yaml (and so the DVC stage name) writes it
    seed: int
    per_class: int | None = None  # lowdata only

    def __post_init__(self):
        if self.mode not in MODES:
            raise GanaugError(f"unknown experiment mode '{self.mode}' (expected one of {', '.join(MODES)})")
        try:
            float(self.amount)
        except ValueError:
            raise GanaugError(f"experiment amount '{self.amount}': expected a number") from None
        if self.mode == "lowdata" and not self.per_class:
            raise GanaugError("lowdata runs need per_class, the real images per class")

    @property
    def key(self) -> str:
        """Unique within the mode; the folder name under reports/runs/<mode>/ and models/classifiers/<mode>/."""
        stem = f"{self.sampler}-{self.amount}-s{self.seed}"
        return f"{self.per_class}-{stem}" if self.mode == "lowdata" else stem

    @property
    def dvc_stage(self) -> str:
        """The dvc.yaml stage name of this run (matrix values joined by '-', as DVC names them)."""
        if self.mode == "augment":
            return f"train@{self.sampler}-{self.amount}-{self.seed}"
        if self.mode == "baseline":
            return f"baseline@{self.sampler}-{self.seed}"
        if self.mode == "lowdata":
            return f"lowdata@{self.per_class}-{self.sampler}-{self.seed}"
        return f"{self.mode}@{self.amount}-{self.seed}"  # replace@<fraction>-<seed>, count@<n>-<seed>

    @property
    def synthetic(self) -> bool:
        return self.mode != "baseline" and self.sampler != "real"

    @property
    def selection_path(self) -> Path:
        if self.mode == "augment":  # written by the select@ stage, shared by all seeds
            return paths.SELECTED / f"{self.sampler}-{self.amount}.parquet"
        return paths.SELECTED / self.mode / f"{self.key}.parquet"  # written by this run's own stage

    @property
    def report_dir(self) -> Path:
        return paths.RUNS / self.mode / self.key

    @property
    def model_dir(self) -> Path:
        return paths.CLASSIFIERS / self.mode / self.key


@dataclass
class TrainingSet:
    split: Split  # real + synthetic images, labels, ids ('pool-<id>' / 'projection-<id>' for synthetic)
    n_real: int
    reference_size: int  # the real set before replacement: what `match: steps` counts an epoch by
    weights: np.ndarray | None
    targets: np.ndarray | None
    selection: pd.DataFrame | None  # the chosen synthetic rows (id, label, scores)


def subsample_real(real: Split, per_class: int, seed: int) -> Split:
    counts = [min(per_class, int(n)) for n in np.bincount(real.labels)]
    idx = stratified_take(real.labels, np.arange(len(real)), counts, np.random.default_rng(seed))
    return Split(real.images[idx], real.labels[idx], real.ids[idx])


def sampler_of(spec: RunSpec, params) -> str:
    """The sampler a run selects with; a low-data run's 'synthetic' arm uses experiments.lowdata_sampler."""
    return params.experiments.lowdata_sampler if spec.sampler == "synthetic" else spec.sampler


def choose(spec: RunSpec, real_counts: np.ndarray, ratio: float, params, balance: bool = True) -> tuple[pd.DataFrame, Scores]:
    """Select inline (replace / count / lowdata) and record the selection at spec.selection_path.
    ``balance=False`` keeps the quotas proportional even under data.imbalance (replacement swaps
    exactly what it removed from each class)."""
    sampler = sampler_of(spec, params)
    scores = load_source_scores(sampler)
    balance = balance and params.select.balance and params.data.imbalance is not None
    quota = class_quotas(real_counts, ratio, balance)
    ids = select(sampler, scores, quota, params.select.seed, **sampler_options(sampler, params.select))
    return save_selection(spec.selection_path, sampler, source_of(sampler), scores, ids), scores


def build_training_set(spec: RunSpec, real: Split, params) -> TrainingSet:
    """The run's training images, with per-image weights / soft targets for the synthetic part."""
    num_classes = int(real.labels.max()) + 1
    reference_size = len(real)
    if spec.mode == "lowdata":
        real = subsample_real(real, spec.per_class, params.data.seed)  # the same real subset for every arm and seed
        reference_size = len(real)
        if not spec.synthetic:  # the real arm records an empty selection, so every low-data run has one
            save_selection(spec.selection_path, "real", "pool", Scores(pd.DataFrame({"id": np.empty(0, np.int64)})), np.empty(0, np.int64))
    if not spec.synthetic:
        return TrainingSet(real, len(real), reference_size, None, None, None)

    amount = float(spec.amount)
    counts = np.bincount(real.labels, minlength=num_classes)
    if spec.mode == "augment":
        selection = read_selection(spec.selection_path)
        scores = load_source_scores(spec.sampler) if params.experiments.synthetic_labels == "soft" else None
    elif spec.mode == "replace":
        rng = np.random.default_rng(spec.seed)
        drop = np.round(amount * counts).astype(np.int64)
        keep = stratified_take(real.labels, np.arange(len(real)), list(counts - drop), rng)
        real = Split(real.images[keep], real.labels[keep], real.ids[keep])
        selection, scores = choose(spec, drop, 1.0, params, balance=False)
    elif spec.mode == "count":
        selection, scores = choose(spec, counts, amount / counts.sum(), params)
    else:  # lowdata + synthetic
        selection, scores = choose(spec, counts, params.experiments.lowdata_ratio, params)

    source = str(selection["source"].iloc[0]) if len(selection) else "pool"
    pool = open_pool(paths.PROJECTION if source == "projection" else paths.POOL)
    ids = selection["id"].to_numpy(np.int64)
    if len(ids) and ids.max() >= len(pool):
        raise GanaugError(f"{spec.selection_path}: ids up to {ids.max()} but the {source} pool has {len(pool)} images (stale selection)")
    synth = Split(np.asarray(pool.images[ids]), pool.labels[ids].astype(np.int64), np.array([f"{source}-{i}" for i in ids]))
    if not np.array_equal(synth.labels, selection["label"].to_numpy()):
        raise GanaugError(f"{spec.selection_path}: labels disagree with the {source} pool (stale selection)")

    train = Split(np.concatenate([real.images, synth.images]), np.concatenate([real.labels, synth.labels]),
                  np.concatenate([real.ids, synth.ids]))
    exp = params.experiments
    weights = targets = None
    w_synth = np.full(len(synth), exp.synthetic_weight, np.float32)
    if exp.synthetic_labels == "confidence":
        w_synth *= selection["confidence"].to_numpy(np.float32)  # the selection carries the scores it was chosen by
    if exp.synthetic_weight != 1.0 or exp.synthetic_labels == "confidence":
        weights = np.concatenate([np.ones(len(real), np.float32), w_synth])
    if exp.synthetic_labels == "soft":
        if scores.probs is None:
            raise GanaugError(f"{paths.SCORES}: {source}_probs.npy missing; synthetic_labels: soft needs the scorer's probabilities")
        row_of = pd.Series(np.arange(len(scores.table)), index=scores.table["id"].to_numpy())
        targets = np.concatenate([np.eye(num_classes, dtype=np.float32)[real.labels],
                                  np.asarray(scores.probs[row_of.loc[ids].to_numpy()], np.float32)])
    return TrainingSet(train, len(real), reference_size, weights, targets, selection)


def run_experiment(spec: RunSpec, params, track: bool = True) -> dict:
    """Train and test one run; writes ``spec.report_dir`` (metrics.json, summary.csv, confusion.png)
    and the classifier to ``spec.model_dir`` (Grad-CAM in the report reads it). Returns the metrics."""
    import json

    import mlflow

    from ganaug.classify.run import RunOutputs, train_and_report
    from ganaug.data.store import load_classes
    from ganaug.data.store import load_split
    from ganaug.tracking import log_epoch, tracked_run

    exp = params.experiments
    meta = load_classes(paths.PREPARED)
    real, val, test = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val", "test"))
    data = build_training_set(spec, real, params)
    cfg = params.train.model_copy(update={"seed": spec.seed, "epochs": exp.epochs or params.train.epochs})
    if spec.mode == "baseline" and spec.sampler == "rotate":
        cfg = cfg.model_copy(update={"augment": cfg.augment.model_copy(update={"rotate_degrees": exp.rotate_degrees})})
    steps_per_epoch = max(1, data.reference_size // cfg.batch_size) if exp.match == "steps" else None
    fit_options = {"steps_per_epoch": steps_per_epoch, "weights": data.weights, "targets": data.targets}
    real_part = Split(data.split.images[: data.n_real], data.split.labels[: data.n_real], data.split.ids[: data.n_real])
    finetune = (real_part, exp.finetune_epochs) if data.selection is not None and exp.finetune_epochs else None

    out = RunOutputs(spec.model_dir, spec.report_dir / "metrics.json", spec.report_dir)
    inputs = {"data/prepared": paths.PREPARED}
    if data.selection is not None:
        source = str(data.selection["source"].iloc[0]) if len(data.selection) else "pool"
        inputs[f"data/synthetic/{source}"] = paths.PROJECTION if source == "projection" else paths.POOL
        inputs[str(spec.selection_path)] = spec.selection_path
    tags = {"mode": spec.mode, "sampler": spec.sampler, "ratio": spec.amount, "seed": str(spec.seed),
            "match": exp.match, "per_class": str(spec.per_class or "")}
    name = f"{spec.mode}/{spec.key}"

    def train():
        return train_and_report(name, data.split, val, test, meta, cfg, out, log_epoch=log_epoch if track else None,
                                fit_options=fit_options, finetune=finetune)

    if track:
        with tracked_run(spec.dvc_stage, params, inputs, tags, run_name=name):
            metrics, timing = train()
            mlflow.log_metrics({"test_accuracy": metrics["test_accuracy"], "test_loss": metrics["test_loss"], **timing})
            mlflow.log_metrics({f"test_acc.{c.replace('/', '-')}": a for c, a in metrics["per_class_accuracy"].items()})
            mlflow.log_artifacts(str(spec.report_dir), "report")
    else:
        metrics, timing = train()
    n_synth = len(data.split) - data.n_real
    metrics.update({
        "mode": spec.mode, "sampler": spec.sampler, "amount": spec.amount, "seed": spec.seed,
        "per_class": spec.per_class, "n_real": data.n_real, "n_synthetic": n_synth, "match": exp.match,
        "synthetic_weight": exp.synthetic_weight, "synthetic_labels": exp.synthetic_labels,
        "finetune_epochs": exp.finetune_epochs if finetune else 0,
        "selection": str(spec.selection_path) if data.selection is not None else None,
    })
    out.metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
