"""A run's training set and phases, from explicit inputs (the real split, the pool, the selection and its scores):
nothing here reads or writes a file. The real images and the images added to them stay apart until the main phase
joins them, once.

``SYNTHETIC`` says, per mode that adds synthetic images, how many of each class its run selects and which real
images it keeps; a real-only baseline is ``real_only`` (a ``VARIANTS`` entry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ganaug import paths
from ganaug.data.splits import stratified_take
from ganaug.data.store import Split
from ganaug.errors import GanaugError
from ganaug.experiment.plan import TOPUP
from ganaug.experiment.variants import VARIANTS
from ganaug.sampling.samplers import class_quotas, topup_quotas
from ganaug.sampling.scores import Scores


@dataclass
class TrainingSet:
    real: Split  # the real images it trains on (a replace run: those it kept)
    reference_size: int  # the real set before replacement: what `match: steps` counts an epoch by
    added: Split | None = None  # the selected pool images ('<source>-<id>'), or a baseline's rotated copies
    weights: np.ndarray | None = None  # per added image (a real image weighs 1); None: all 1
    targets: np.ndarray | None = None  # soft targets per added image; None: hard labels
    selection: pd.DataFrame | None = None  # the chosen pool rows (id, label, scores); None: a real-only run

    @property
    def n_added(self) -> int:
        return 0 if self.added is None else len(self.added)

    @property
    def synthetic_only_first(self) -> bool:
        """Whether ``recipe: pretrain`` trains the main phase on the added images alone: only when some were chosen
        (real-only rows, rotated copies included, and a run that chose no image train on their own images)."""
        return self.selection is not None and len(self.selection) > 0


def concat(*parts: Split) -> Split:
    return Split(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("images", "labels", "ids")))


def class_counts(real: Split) -> np.ndarray:
    return np.bincount(real.labels, minlength=int(real.labels.max()) + 1)


# ---------------------------------------------------------------------------------------------------------
# What each mode with synthetic images selects


def replaced_counts(amount: str, counts: np.ndarray) -> np.ndarray:
    return np.round(float(amount) * counts).astype(np.int64)


def kept_after_replacement(amount: str, real: Split, seed: int) -> Split:
    """The real images a replace run keeps: ``amount`` (a fraction) of each class dropped, seeded by the run's seed."""
    counts = class_counts(real)
    keep = stratified_take(
        real.labels, np.arange(len(real)), list(counts - replaced_counts(amount, counts)), np.random.default_rng(seed)
    )
    return Split(real.images[keep], real.labels[keep], real.ids[keep])


@dataclass(frozen=True)
class Synthetic:
    """How a mode's run adds synthetic images to the real set."""

    # (amount, the real set's images per class, select.balance) -> images to select per class; None: the sampler
    # keeps what it chooses on its own, whatever its size
    quota: Callable | None
    keep: Callable | None = None  # (amount, real, seed) -> the real images kept; None: all of them


SYNTHETIC: dict[str, Synthetic] = {
    # real + amount x the real set (topup: every class up to the largest one's count)
    "augment": Synthetic(
        lambda amount, counts, balance: (
            topup_quotas(counts) if amount == TOPUP else class_quotas(counts, float(amount), balance)
        )
    ),
    # the same set size: exactly what it removed from each class, even on an imbalanced set
    "replace": Synthetic(
        lambda amount, counts, balance: class_quotas(replaced_counts(amount, counts), 1.0, False),
        keep=kept_after_replacement,
    ),
    # real + amount synthetic images, spread over the classes like a ratio's
    "count": Synthetic(lambda amount, counts, balance: class_quotas(counts, float(amount) / counts.sum(), balance)),
    "own": Synthetic(None),
}


# ---------------------------------------------------------------------------------------------------------
# Training sets


def real_only(variant: str, real: Split, exp, seed: int) -> TrainingSet:
    """A real-only baseline's set: the real images, plus what its variant adds (rotated copies)."""
    extra = VARIANTS[variant].extra
    return TrainingSet(real, len(real), None if extra is None else extra(real, exp, seed))


def with_synthetic(
    real: Split, reference_size: int, pool, selection: pd.DataFrame, scores: Scores, exp, origin: str
) -> TrainingSet:
    """The real images + the selected pool images, with per-image weights / soft targets for the pool images.
    ``reference_size``: the real training set's size before any were replaced; ``origin``: where the selection is
    recorded (named in errors)."""
    source = str(selection["source"].iloc[0]) if len(selection) else "pool"
    ids = selection["id"].to_numpy(np.int64)
    if len(ids) and ids.max() >= len(pool):
        raise GanaugError(
            f"{origin}: ids up to {ids.max()} but the {source} pool has {len(pool)} images (stale selection)"
        )
    added = Split(
        np.asarray(pool.images[ids]), pool.labels[ids].astype(np.int64), np.array([f"{source}-{i}" for i in ids])
    )
    if not np.array_equal(added.labels, selection["label"].to_numpy()):
        raise GanaugError(f"{origin}: labels disagree with the {source} pool (stale selection)")

    weights = targets = None
    if exp.synthetic_weight != 1.0 or exp.synthetic_labels == "confidence":
        weights = np.full(len(added), exp.synthetic_weight, np.float32)
        if exp.synthetic_labels == "confidence":
            weights *= selection["confidence"].to_numpy(np.float32)  # the selection carries the scores it was chosen by
    if exp.synthetic_labels == "soft":
        if scores.probs is None:
            raise GanaugError(
                f"{paths.SCORES}: {source}_probs.npy missing; synthetic_labels: soft needs the scorer's probabilities"
            )
        row_of = pd.Series(np.arange(len(scores.table)), index=scores.table["id"].to_numpy())
        targets = np.asarray(scores.probs[row_of.loc[ids].to_numpy()], np.float32)
    return TrainingSet(real, reference_size, added, weights, targets, selection)


# ---------------------------------------------------------------------------------------------------------
# Phases


def steps_per_epoch(spec, data: TrainingSet, params) -> int | None:
    """Optimiser steps per epoch. ``match: steps``: an epoch of the real set, for every run.
    ``match: real_epochs``: one pass over the whole training set (more steps with more synthetic
    images); a baseline at budget r > 0 takes the steps a run at ratio r takes, so the two compare
    at the same number of optimiser steps. None: one pass (fit's default)."""
    batch = params.train.batch_size
    if spec.mode == "baseline" and float(spec.amount) > 0:
        return max(1, int(round((1 + float(spec.amount)) * data.reference_size)) // batch)
    return max(1, data.reference_size // batch) if params.experiments.match == "steps" else None


def training_phases(spec, data: TrainingSet, params) -> list:
    """The run's training phases: the main phase on the real and the added images (``recipe: pretrain``: on the
    added images alone), then ``experiments.finetune_epochs`` on the real images alone at a tenth of the learning
    rate, cosine-annealed (``recipe: head-refit``: the head alone, class-balanced). Every run, the baselines
    included, gets the same fine-tune (equal budgets); a real-only variant keeps its treatment in every phase."""
    from ganaug.classify.train import Phase

    exp = params.experiments
    cfg = params.train.model_copy(update={"seed": spec.seed, "epochs": exp.epochs or params.train.epochs})
    variant = VARIANTS.get(spec.variant)  # None for a run with synthetic images
    if variant is not None and variant.augment is not None:
        cfg = cfg.model_copy(update={"augment": variant.augment(cfg.augment, exp)})
    treatment = variant.fit if variant is not None else {}
    steps = steps_per_epoch(spec, data, params)
    if exp.recipe == "pretrain" and data.synthetic_only_first:
        main = Phase("train", data.added, cfg, steps, data.weights, data.targets)
    elif data.added is None:
        main = Phase("train", data.real, cfg, steps, **treatment)
    else:
        n_real, classes = len(data.real), None if data.targets is None else data.targets.shape[1]
        weights = None if data.weights is None else np.concatenate([np.ones(n_real, np.float32), data.weights])
        targets = (
            None
            if data.targets is None
            else np.concatenate([np.eye(classes, dtype=np.float32)[data.real.labels], data.targets])
        )
        main = Phase("train", concat(data.real, data.added), cfg, steps, weights, targets, **treatment)
    phases = [main]
    # the fine-tune takes the real set's steps per epoch whatever is left of it, so a replace row fine-tunes as
    # long as real-only does; replace 1.0 has no real image left and skips it (its row then trains fewer steps
    # than real-only, and the report says so instead of comparing)
    if exp.finetune_epochs and len(data.real):
        refit = {"head_only": True, "class_balanced": True} if exp.recipe == "head-refit" else {}
        ft_cfg = cfg.model_copy(update={"epochs": exp.finetune_epochs, "lr": cfg.lr / 10, "schedule": "cosine"})
        phases.append(
            Phase(
                "finetune", data.real, ft_cfg, max(1, data.reference_size // cfg.batch_size), **{**treatment, **refit}
            )
        )
    return phases
