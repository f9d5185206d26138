"""One experiment run: build a training set from the real images and a synthetic selection, train
the classifier on it, test it on the real test set.

Modes (``RunSpec.mode``):
  baseline  real images only, a variant of BASELINES (real; rotate: + online rotation; plain: no
            augmentation; rotated-copies: plain + a rotated copy of each image, paper 004; for long
            tails, resample: class-balanced batches, logit-adjust: the logit-adjusted loss);
            ``amount`` is the ratio whose optimiser steps it matches (0: the real set's own epochs)
  augment   real + ``amount`` x the real set, chosen by ``sampler`` (paper 000); amount ``topup``:
            every class topped up to the largest class's count (a long tail's minority top-up)
  replace   ``amount`` (a fraction) of each class's real images swapped for synthetic; same set size (paper 001)
  count     real + ``amount`` synthetic images (a fixed number, paper 004)
  own       real + the subset a sampler chooses on its own, whatever its size (``amount`` is "own";
            paper 000's RL agent, which kept 2.6x the real set there)

Every run selects its own synthetic images, seeded by its seed, so a stochastic sampler (random)
draws anew per seed. The low-data sweep is not a mode: it reruns the whole pipeline (GAN, pool,
scorer) per real-set size as DVC experiments (ganaug.sweep), so nothing it uses saw more real data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug import paths
from ganaug.data.splits import stratified_take
from ganaug.data.store import Split
from ganaug.errors import GanaugError
from ganaug.gan.pool import open_pool
from ganaug.sampling.samplers import class_quotas, own_choice, sampler_options, select, topup_quotas
from ganaug.sampling.scores import Scores
from ganaug.sampling.selection import load_source_scores, save_selection, source_of

MODES = ("baseline", "augment", "replace", "count", "own")
OWN = "own"  # the amount of an own-mode run: the sampler decides it
TOPUP = "topup"  # the amount of an augment run that fills every class up to the largest one's count


@dataclass(frozen=True)
class RunSpec:
    mode: str
    sampler: str  # a sampler name; for baseline the variant (real | rotate)
    amount: str  # ratio / fraction / count exactly as params.yaml (and so the DVC stage name) writes it
    seed: int

    def __post_init__(self):
        if self.mode not in MODES:
            raise GanaugError(f"unknown experiment mode '{self.mode}' (expected one of {', '.join(MODES)})")
        if self.mode == "own":
            if self.amount != OWN:
                raise GanaugError(
                    f"experiment amount '{self.amount}': mode own takes '{OWN}' (the sampler chooses the size)"
                )
            return
        if self.mode == "augment" and self.amount == TOPUP:
            return
        try:
            float(self.amount)
        except ValueError:
            raise GanaugError(f"experiment amount '{self.amount}': expected a number") from None

    @property
    def key(self) -> str:
        """Unique within the mode; the folder name under reports/runs/<mode>/ and models/classifiers/<mode>/."""
        return f"{self.sampler}-{self.amount}-s{self.seed}"

    @property
    def dvc_stage(self) -> str:
        """The dvc.yaml stage name of this run (matrix values joined by '-', as DVC names them)."""
        if self.mode in ("augment", "baseline"):  # train@<sampler>-<ratio>-<seed>, baseline@<variant>-<budget>-<seed>
            return f"{'train' if self.mode == 'augment' else 'baseline'}@{self.sampler}-{self.amount}-{self.seed}"
        if self.mode == "own":  # own@<sampler>-<seed>
            return f"own@{self.sampler}-{self.seed}"
        return f"{self.mode}@{self.amount}-{self.seed}"  # replace@<fraction>-<seed>, count@<n>-<seed>

    @property
    def synthetic(self) -> bool:
        return self.mode != "baseline"

    @property
    def selection_path(self) -> Path:
        return paths.SELECTED / self.mode / f"{self.key}.parquet"  # written by this run's own stage

    @property
    def report_dir(self) -> Path:
        return paths.RUNS / self.mode / self.key

    @property
    def model_dir(self) -> Path:
        return paths.CLASSIFIERS / self.mode / self.key


def planned_runs(params) -> list[RunSpec]:
    """Every experiment run the current params define: the same matrices dvc.yaml expands into
    baseline@ / train@ / replace@ / count@ stages (a test checks the two agree). The report reads
    exactly these runs, so a metrics.json left on disk by other params is never counted."""
    exp = params.experiments
    runs = [RunSpec("baseline", v, str(b), s) for v in exp.baselines for b in exp.baseline_at for s in exp.seeds]
    runs += [RunSpec("augment", m, str(r), s) for m in exp.samplers for r in exp.ratios for s in exp.seeds]
    runs += [RunSpec("replace", exp.replace_sampler, str(f), s) for f in exp.replace for s in exp.seeds]
    runs += [RunSpec("count", exp.count_sampler, str(n), s) for n in exp.counts for s in exp.seeds]
    runs += [RunSpec("own", m, OWN, s) for m in exp.own for s in exp.seeds]
    return runs


def recipe(params) -> dict:
    """The knobs every training stage depends on (dvc.yaml lists them for each) besides its row
    (mode, sampler, amount) and seed: the experiments' schedule and synthetic-image handling, and
    the whole training config. Runs that differ in any are different experiments, never averaged."""
    exp = params.experiments
    return {
        "epochs": exp.epochs or params.train.epochs,
        "match": exp.match,
        "synthetic_weight": exp.synthetic_weight,
        "synthetic_labels": exp.synthetic_labels,
        "finetune_epochs": exp.finetune_epochs,
        # the default recipe is left out, so runs recorded before recipes existed stay comparable
        **({"recipe": exp.recipe} if exp.recipe != "mix" else {}),
        "train": params.train.model_dump(exclude={"seed", "epochs"}),
    }


@dataclass
class TrainingSet:
    split: Split  # real + synthetic images, labels, ids ('pool-<id>' / 'projection-<id>' for synthetic)
    n_real: int
    reference_size: int  # the real set before replacement: what `match: steps` counts an epoch by
    weights: np.ndarray | None
    targets: np.ndarray | None
    selection: pd.DataFrame | None  # the chosen synthetic rows (id, label, scores)


def choose(
    spec: RunSpec, real_counts: np.ndarray, ratio: float, params, balance: bool = True
) -> tuple[pd.DataFrame, Scores]:
    """Select this run's synthetic images and record them at spec.selection_path. The draw is seeded
    by (select.seed, the run's seed): each seed of a stochastic sampler is a new draw.
    ``balance=False`` keeps the quotas proportional even on an imbalanced set (replacement swaps
    exactly what it removed from each class)."""
    if source_of(spec.sampler) == "projection" and (why := open_pool(paths.PROJECTION).meta.get("skipped")):
        raise GanaugError(f"sampler {spec.sampler}: there is no projection pool ({why}); use gan.arch: cgan")
    scores = load_source_scores(spec.sampler)
    balance = balance and params.select.balance  # on a balanced real set, water-filling = proportional
    quota = topup_quotas(real_counts) if spec.amount == TOPUP else class_quotas(real_counts, ratio, balance)
    ids = select(
        spec.sampler, scores, quota, [params.select.seed, spec.seed], **sampler_options(spec.sampler, params.select)
    )
    return save_selection(spec.selection_path, spec.sampler, source_of(spec.sampler), scores, ids), scores


def rotated_copies(real: Split, max_degrees: float, seed: int) -> Split:
    """Paper 004's rotation baseline: one copy of each real image rotated by an angle drawn
    uniformly from [0, max_degrees] (corners filled with black), seeded by the run's seed."""
    import albumentations as A
    import cv2

    from ganaug.classify.augment import augment_batch

    rotate = A.Compose([A.Rotate(limit=(0, max_degrees), border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0)], seed=seed)
    return Split(augment_batch(rotate, real.images), real.labels.copy(), np.array([f"rotated-{i}" for i in real.ids]))


def build_training_set(spec: RunSpec, real: Split, params) -> TrainingSet:
    """The run's training images, with per-image weights / soft targets for the synthetic part."""
    num_classes = int(real.labels.max()) + 1
    reference_size = len(real)
    if not spec.synthetic:
        if spec.sampler == "rotated-copies":
            copies = rotated_copies(real, params.experiments.rotate_copies_degrees, spec.seed)
            both = Split(
                np.concatenate([real.images, copies.images]),
                np.concatenate([real.labels, copies.labels]),
                np.concatenate([real.ids, copies.ids]),
            )
            return TrainingSet(both, len(real), reference_size, None, None, None)
        return TrainingSet(real, len(real), reference_size, None, None, None)

    amount = math.nan if spec.mode == "own" or spec.amount == TOPUP else float(spec.amount)
    counts = np.bincount(real.labels, minlength=num_classes)
    if spec.mode == "augment":
        selection, scores = choose(spec, counts, amount, params)
    elif spec.mode == "replace":
        rng = np.random.default_rng(spec.seed)
        drop = np.round(amount * counts).astype(np.int64)
        keep = stratified_take(real.labels, np.arange(len(real)), list(counts - drop), rng)
        real = Split(real.images[keep], real.labels[keep], real.ids[keep])
        selection, scores = choose(spec, drop, 1.0, params, balance=False)
    elif spec.mode == "own":
        scores = load_source_scores(spec.sampler)
        selection = save_selection(
            spec.selection_path, spec.sampler, source_of(spec.sampler), scores, own_choice(spec.sampler, scores)
        )
        if selection.empty:  # a legitimate choice, but one a reader of the row should not miss
            print(
                f"{spec.dvc_stage}: warning: sampler {spec.sampler} keeps no pool image; this row is real-only training"
            )
    else:  # count
        selection, scores = choose(spec, counts, amount / counts.sum(), params)

    source = str(selection["source"].iloc[0]) if len(selection) else "pool"
    pool = open_pool(paths.PROJECTION if source == "projection" else paths.POOL)
    ids = selection["id"].to_numpy(np.int64)
    if len(ids) and ids.max() >= len(pool):
        raise GanaugError(
            f"{spec.selection_path}: ids up to {ids.max()} but the {source} pool has {len(pool)} images "
            "(stale selection)"
        )
    synth = Split(
        np.asarray(pool.images[ids]), pool.labels[ids].astype(np.int64), np.array([f"{source}-{i}" for i in ids])
    )
    if not np.array_equal(synth.labels, selection["label"].to_numpy()):
        raise GanaugError(f"{spec.selection_path}: labels disagree with the {source} pool (stale selection)")

    train = Split(
        np.concatenate([real.images, synth.images]),
        np.concatenate([real.labels, synth.labels]),
        np.concatenate([real.ids, synth.ids]),
    )
    exp = params.experiments
    weights = targets = None
    w_synth = np.full(len(synth), exp.synthetic_weight, np.float32)
    if exp.synthetic_labels == "confidence":
        w_synth *= selection["confidence"].to_numpy(np.float32)  # the selection carries the scores it was chosen by
    if exp.synthetic_weight != 1.0 or exp.synthetic_labels == "confidence":
        weights = np.concatenate([np.ones(len(real), np.float32), w_synth])
    if exp.synthetic_labels == "soft":
        if scores.probs is None:
            raise GanaugError(
                f"{paths.SCORES}: {source}_probs.npy missing; synthetic_labels: soft needs the scorer's probabilities"
            )
        row_of = pd.Series(np.arange(len(scores.table)), index=scores.table["id"].to_numpy())
        targets = np.concatenate(
            [
                np.eye(num_classes, dtype=np.float32)[real.labels],
                np.asarray(scores.probs[row_of.loc[ids].to_numpy()], np.float32),
            ]
        )
    return TrainingSet(train, len(real), reference_size, weights, targets, selection)


BASELINES = ("real", "rotate", "plain", "rotated-copies", "resample", "logit-adjust")
# the real-only baselines a reviewer expects on a long tail: their fit() options
LONG_TAIL_BASELINES = {
    "resample": {"class_balanced": True},  # class-balanced resampling
    "logit-adjust": {"logit_adjust": 1.0},
}  # logit-adjusted loss, tau = 1 (Menon et al. 2021)


def baseline_augment(variant: str, augment, exp):
    """The online augmentation of a real-only variant: ``real`` as train.augment says, ``rotate``
    adds rotation up to experiments.rotate_degrees, ``plain`` and ``rotated-copies`` train without
    any (paper 004 compares rotated copies with an un-augmented baseline)."""
    if variant == "rotate":
        return augment.model_copy(update={"rotate_degrees": exp.rotate_degrees})
    if variant in ("plain", "rotated-copies"):
        return augment.model_copy(update={"hflip": False, "crop_padding": 0, "rotate_degrees": 0})
    return augment


RECIPES = ("mix", "pretrain", "head-refit")


def recipe_main_phase(recipe_name: str, data: TrainingSet) -> Split:
    """What the main phase trains on: ``pretrain`` the synthetic images alone (real-only rows, rotated
    copies included, and a run that chose none train on their own images); ``mix`` and ``head-refit`` real +
    synthetic. Every recipe then has the same fine-tune phase length on real images (head-refit: the head alone)."""
    if recipe_name == "pretrain" and data.selection is not None and len(data.selection):
        s = data.split
        return Split(s.images[data.n_real :], s.labels[data.n_real :], s.ids[data.n_real :])
    return data.split


def steps_per_epoch(spec: RunSpec, data: TrainingSet, params) -> int | None:
    """Optimiser steps per epoch. ``match: steps``: an epoch of the real set, for every run.
    ``match: real_epochs``: one pass over the whole training set (more steps with more synthetic
    images); a baseline at budget r > 0 takes the steps a run at ratio r takes, so the two compare
    at the same number of optimiser steps. None: one pass (fit's default)."""
    batch = params.train.batch_size
    if spec.mode == "baseline" and float(spec.amount) > 0:
        return max(1, int(round((1 + float(spec.amount)) * data.reference_size)) // batch)
    return max(1, data.reference_size // batch) if params.experiments.match == "steps" else None


def run_experiment(spec: RunSpec, params, track: bool = True) -> dict:
    """Train and test one run; writes ``spec.report_dir`` (metrics.json, summary.csv, confusion.png)
    and the classifier to ``spec.model_dir`` (Grad-CAM in the report reads it). Returns the metrics
    (None on a torchrun rank other than 0).
    Every run, the baseline included, gets the same fine-tune phase on real images (equal budgets)."""
    import json

    import mlflow

    from ganaug.classify.run import RunOutputs, train_and_report
    from ganaug.data.store import load_classes, load_split
    from ganaug.digests import dvc_md5
    from ganaug.tracking import log_epoch, log_per_class, tracked_run

    exp = params.experiments
    meta = load_classes(paths.PREPARED)
    real, val, test = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val", "test"))
    data = build_training_set(spec, real, params)
    cfg = params.train.model_copy(update={"seed": spec.seed, "epochs": exp.epochs or params.train.epochs})
    if spec.mode == "baseline":
        cfg = cfg.model_copy(update={"augment": baseline_augment(spec.sampler, cfg.augment, exp)})
    long_tail = LONG_TAIL_BASELINES.get(spec.sampler, {}) if spec.mode == "baseline" else {}
    fit_options = {
        "steps_per_epoch": steps_per_epoch(spec, data, params),
        "weights": data.weights,
        "targets": data.targets,
        **long_tail,
    }
    real_part = Split(data.split.images[: data.n_real], data.split.labels[: data.n_real], data.split.ids[: data.n_real])
    main_phase = recipe_main_phase(exp.recipe, data)
    if main_phase is not data.split:  # pretrain: the synthetic part alone, with its own weights and targets,
        # normalised like the real images the fine-tune, the test and the saved model see
        from ganaug.classify.normalize import Normalizer

        fit_options.update(
            weights=None if data.weights is None else data.weights[data.n_real :],
            targets=None if data.targets is None else data.targets[data.n_real :],
            norm=Normalizer.fit(real_part.images),
        )
    # the fine-tune phase takes the real set's steps per epoch whatever is left of it, so a replace row
    # fine-tunes as long as real-only does; replace 1.0 has no real image left and skips it (its row then
    # trains fewer steps than real-only, and the report says so instead of comparing)
    finetune = None
    if exp.finetune_epochs:
        # a long-tail baseline keeps its treatment in the final phase too; a head refit is class-balanced
        options = {**long_tail, **({"head_only": True, "class_balanced": True} if exp.recipe == "head-refit" else {})}
        finetune = (real_part, exp.finetune_epochs, max(1, data.reference_size // cfg.batch_size), options)

    out = RunOutputs(spec.model_dir, spec.report_dir / "metrics.json", spec.report_dir)
    inputs = {"data/prepared": paths.PREPARED}
    if data.selection is not None:
        source = str(data.selection["source"].iloc[0]) if len(data.selection) else "pool"
        inputs[f"data/synthetic/{source}"] = paths.PROJECTION if source == "projection" else paths.POOL
        inputs[str(spec.selection_path)] = spec.selection_path
    tags = {
        "mode": spec.mode,
        "sampler": spec.sampler,
        "ratio": spec.amount,
        "seed": str(spec.seed),
        "match": exp.match,
    }
    name = f"{spec.mode}/{spec.key}"

    def train():
        return train_and_report(
            name,
            main_phase,
            val,
            test,
            meta,
            cfg,
            out,
            log_epoch=log_epoch if track else None,
            fit_options=fit_options,
            finetune=finetune,
        )

    def finish(metrics: dict) -> dict:
        metrics.update(
            {
                "mode": spec.mode,
                "sampler": spec.sampler,
                "amount": spec.amount,
                "seed": spec.seed,
                "n_real": data.n_real,
                "n_synthetic": len(data.split) - data.n_real,
                "recipe": recipe(params),
                # the data this run saw, as DVC hashes it: the report refuses to mix runs of different data
                "inputs": {name: dvc_md5(path) for name, path in inputs.items()},
                "selection": str(spec.selection_path) if data.selection is not None else None,
            }
        )
        out.metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
        return metrics

    if not track:
        metrics, _ = train()
        return None if metrics is None else finish(metrics)
    with tracked_run(spec.dvc_stage, params, inputs, tags, run_name=name):
        metrics, timing = train()
        if metrics is None:  # a torchrun rank other than 0: it trained, rank 0 reports
            return None
        mlflow.log_metrics(
            {
                "test_accuracy": metrics["test_accuracy"],
                "test_loss": metrics["test_loss"],
                "steps": metrics["steps"],
                **timing,
            }
        )
        log_per_class("test_acc", metrics["per_class_accuracy"])
        metrics = finish(metrics)
        mlflow.log_artifacts(str(spec.report_dir), "report")  # the final metrics.json, the one the report reads
    return metrics
