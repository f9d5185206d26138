"""One experiment run: build a training set from the real images and a synthetic selection, train
the classifier on it, test it on the real test set.

What a run does is declared in two registries below, one entry per kind of row:

- ``MODES``: how a run builds its training set, what its ``amount`` means, its DVC stage name, and
  how the report names and compares its row: baseline (real images only, a ``VARIANTS`` entry),
  augment (real + amount x the real set, paper 000; ``topup``: every class up to the largest), replace
  (a fraction of each class swapped for synthetic, paper 001), count (a fixed number added, paper 004),
  own (the subset a sampler keeps on its own, paper 000's RL agent).
- ``VARIANTS``: the real-only baselines (online rotation, no augmentation, rotated copies, and the
  long-tail ones: class-balanced resampling, the logit-adjusted loss).

Samplers have their own registry (ganaug.sampling.samplers.SAMPLERS). docs/development.md shows how to add
an entry. Every run selects its own synthetic images, seeded by its seed, so a stochastic sampler
(random) draws anew per seed. The low-data sweep is not a mode: it reruns the whole pipeline (GAN,
pool, scorer) per real-set size as DVC experiments (ganaug.sweeps.lowdata), so nothing it uses saw
more real data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug import paths
from ganaug.data.splits import stratified_take
from ganaug.data.store import Split
from ganaug.errors import GanaugError
from ganaug.gan.pool_format import open_pool
from ganaug.sampling.samplers import SAMPLERS, class_quotas, own_choice, select, topup_quotas
from ganaug.sampling.scores import Scores
from ganaug.sampling.selection import load_source_scores, save_selection

OWN = "own"  # the amount of an own-mode run: the sampler decides it
TOPUP = "topup"  # the amount of an augment run that fills every class up to the largest one's count


@dataclass
class TrainingSet:
    split: Split  # real + synthetic images, labels, ids ('pool-<id>' / 'projection-<id>' for synthetic)
    n_real: int
    reference_size: int  # the real set before replacement: what `match: steps` counts an epoch by
    weights: np.ndarray | None = None
    targets: np.ndarray | None = None
    selection: pd.DataFrame | None = None  # the chosen synthetic rows (id, label, scores)


def concat(*parts: Split) -> Split:
    return Split(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("images", "labels", "ids")))


# ---------------------------------------------------------------------------------------------------------
# Real-only baselines


def rotated_copies(real: Split, exp, seed: int) -> Split:
    """Paper 004's rotation baseline: one copy of each real image rotated by an angle drawn
    uniformly from [0, experiments.rotate_copies_degrees] (corners filled with black), seeded by the run's seed."""
    import albumentations as A
    import cv2

    from ganaug.classify.augment import augment_batch

    rotate = A.Compose(
        [A.Rotate(limit=(0, exp.rotate_copies_degrees), border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0)], seed=seed
    )
    return Split(augment_batch(rotate, real.images), real.labels.copy(), np.array([f"rotated-{i}" for i in real.ids]))


def no_augmentation(augment, exp):
    return augment.model_copy(update={"hflip": False, "crop_padding": 0, "rotate_degrees": 0})


def with_rotation(augment, exp):
    return augment.model_copy(update={"rotate_degrees": exp.rotate_degrees})


@dataclass(frozen=True)
class Variant:
    """A real-only baseline: what it changes about training on the real images alone."""

    name: str  # experiments.baselines
    row: str  # its row in the report
    augment: Callable | None = None  # (train.augment, experiments) -> the online augmentation it trains with
    extra: Callable | None = None  # (real, experiments, seed) -> images added to the real set
    fit: dict = field(default_factory=dict)  # fit() options, in every phase: what a long-tail baseline changes
    vs_plain: bool = False  # whether its row is also compared with the un-augmented baseline ("vs no augmentation")


REAL_ONLY = "real only"  # the plain real-only baseline's row (written "0x real" in reports before 2026-11-25)
LEGACY_REAL_ONLY = "0x real"

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("real", REAL_ONLY),  # train.augment as it is
        Variant("rotate", "real only + rotation", augment=with_rotation),
        Variant("plain", "real only, no augmentation", augment=no_augmentation),
        # paper 004 compares rotated copies with the un-augmented baseline
        Variant(
            "rotated-copies",
            "real only + rotated copies, no augmentation",
            augment=no_augmentation,
            extra=rotated_copies,
            vs_plain=True,
        ),
        # the long-tail baselines a reviewer expects: class-balanced resampling, and the logit-adjusted loss
        # with tau = 1 (Menon et al. 2021)
        Variant("resample", "real only, class-balanced resampling", fit={"class_balanced": True}),
        Variant("logit-adjust", "real only, logit-adjusted loss", fit={"logit_adjust": 1.0}),
    )
}


# ---------------------------------------------------------------------------------------------------------
# Training sets of the modes


def choose(
    spec: RunSpec, real_counts: np.ndarray, ratio: float, params, balance: bool = True
) -> tuple[pd.DataFrame, Scores]:
    """Select this run's synthetic images and record them at spec.selection_path. The draw is seeded
    by (select.seed, the run's seed): each seed of a stochastic sampler is a new draw.
    ``balance=False`` keeps the quotas proportional even on an imbalanced set (replacement swaps
    exactly what it removed from each class)."""
    sampler = SAMPLERS[spec.sampler]
    if sampler.source != "pool" and (why := open_pool(paths.POOLS[sampler.source]).meta.get("skipped")):
        fix = "set data.unlabelled" if sampler.source == "pseudo" else "use a generator with a latent space"
        raise GanaugError(f"sampler {sampler.name}: there is no {sampler.source} pool ({why}); {fix}")
    scores = load_source_scores(sampler)
    balance = balance and params.select.balance  # on a balanced real set, water-filling = proportional
    quota = topup_quotas(real_counts) if spec.amount == TOPUP else class_quotas(real_counts, ratio, balance)
    ids = select(sampler.name, scores, quota, [params.select.seed, spec.seed], **sampler.options(params.select))
    return save_selection(spec.selection_path, sampler.name, sampler.source, scores, ids), scores


def real_only(spec: RunSpec, real: Split, params) -> TrainingSet:
    variant = VARIANTS[spec.variant]
    train = real if variant.extra is None else concat(real, variant.extra(real, params.experiments, spec.seed))
    return TrainingSet(train, len(real), len(real))


def class_counts(real: Split) -> np.ndarray:
    return np.bincount(real.labels, minlength=int(real.labels.max()) + 1)


def augmented(spec: RunSpec, real: Split, params) -> TrainingSet:
    """Real + ``amount`` x the real set (``topup``: every class up to the largest one's count)."""
    counts = class_counts(real)
    ratio = math.nan if spec.amount == TOPUP else float(spec.amount)
    return with_synthetic(spec, real, counts, *choose(spec, counts, ratio, params), params)


def replaced(spec: RunSpec, real: Split, params) -> TrainingSet:
    """``amount`` (a fraction) of each class's real images swapped for synthetic ones: the same set size."""
    counts = class_counts(real)
    drop = np.round(float(spec.amount) * counts).astype(np.int64)
    keep = stratified_take(real.labels, np.arange(len(real)), list(counts - drop), np.random.default_rng(spec.seed))
    kept = Split(real.images[keep], real.labels[keep], real.ids[keep])
    return with_synthetic(spec, kept, counts, *choose(spec, drop, 1.0, params, balance=False), params)


def counted(spec: RunSpec, real: Split, params) -> TrainingSet:
    """Real + ``amount`` synthetic images (a fixed number), spread over the classes like a ratio's."""
    counts = class_counts(real)
    return with_synthetic(spec, real, counts, *choose(spec, counts, float(spec.amount) / counts.sum(), params), params)


def own_choice_set(spec: RunSpec, real: Split, params) -> TrainingSet:
    """Real + the subset the sampler keeps on its own, whatever its size."""
    sampler = SAMPLERS[spec.sampler]
    scores = load_source_scores(sampler)
    ids = own_choice(sampler.name, scores)
    selection = save_selection(spec.selection_path, sampler.name, sampler.source, scores, ids)
    if selection.empty:  # a legitimate choice, but one a reader of the row should not miss
        print(f"{spec.dvc_stage}: warning: sampler {sampler.name} keeps no pool image; this row is real-only training")
    return with_synthetic(spec, real, class_counts(real), selection, scores, params)


def with_synthetic(
    spec: RunSpec, real: Split, counts: np.ndarray, selection: pd.DataFrame, scores: Scores, params
) -> TrainingSet:
    """The real images + the selected pool images, with per-image weights / soft targets for the synthetic part.
    ``counts``: the real training set's images per class, before any were replaced."""
    source = str(selection["source"].iloc[0]) if len(selection) else "pool"
    pool = open_pool(paths.POOLS[source])
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
                np.eye(len(counts), dtype=np.float32)[real.labels],
                np.asarray(scores.probs[row_of.loc[ids].to_numpy()], np.float32),
            ]
        )
    return TrainingSet(concat(real, synth), len(real), int(counts.sum()), weights, targets, selection)


# ---------------------------------------------------------------------------------------------------------
# The modes


@dataclass(frozen=True)
class Mode:
    """A kind of experiment row: which runs params.yaml asks for, how a run builds its training set, its DVC
    stage, and how the report names and compares its row. ``method`` is the registry that RunSpec.method
    names in this mode; ``amount`` is written as params.yaml (and so the stage name) writes it."""

    name: str
    method: str  # "variant" (VARIANTS) or "sampler" (SAMPLERS)
    plan: Callable  # experiments params -> [(method, amount)]: the rows params.yaml defines
    build: Callable  # (spec, real, params) -> TrainingSet
    stage: Callable  # spec -> its dvc.yaml stage name (matrix values joined by '-', as DVC names them)
    row: Callable  # (method, amount) -> the row's name in the report
    report_order: int  # where its rows stand in the report's table
    amounts: tuple[str, ...] = ()  # amounts that are words, not numbers
    numeric: bool = True  # whether a number is an amount
    bold: bool = True  # whether its rows compete for the table's per-class bests
    vs_random: bool = False  # whether each sampler's row is also compared with random's at the same amount

    def check_amount(self, amount: str) -> None:
        if amount in self.amounts:
            return
        if not self.numeric:
            raise GanaugError(
                f"experiment amount '{amount}': mode {self.name} takes '{self.amounts[0]}' "
                "(the sampler chooses the size)"
            )
        try:
            float(amount)
        except ValueError:
            raise GanaugError(f"experiment amount '{amount}': expected a number") from None


def baseline_row(variant: str, amount: str) -> str:
    name = VARIANTS[variant].row
    return name if float(amount) == 0 else f"{name} (steps of {float(amount):g}x)"


MODES: dict[str, Mode] = {
    m.name: m
    for m in (  # in the order planned_runs lists their runs
        Mode(
            "baseline",
            "variant",
            plan=lambda exp: [(v, str(b)) for v in exp.baselines for b in exp.baseline_at],
            build=real_only,
            stage=lambda s: f"baseline@{s.method}-{s.amount}-{s.seed}",
            row=baseline_row,
            report_order=0,
        ),
        Mode(
            "augment",
            "sampler",
            plan=lambda exp: [(m, str(r)) for m in exp.samplers for r in exp.ratios],
            build=augmented,
            stage=lambda s: f"augment@{s.method}-{s.amount}-{s.seed}",
            row=lambda m, a: f"{m} top-up" if a == TOPUP else f"{m} {float(a):g}x",
            report_order=1,
            amounts=(TOPUP,),
            vs_random=True,
        ),
        Mode(
            "replace",
            "sampler",
            plan=lambda exp: [(exp.replace_sampler, str(f)) for f in exp.replace],
            build=replaced,
            stage=lambda s: f"replace@{s.amount}-{s.seed}",
            row=lambda m, a: f"{m} replace {float(a):.0%}",
            report_order=3,
            bold=False,  # fewer real images: its per-class accuracies are not the table's contest
        ),
        Mode(
            "count",
            "sampler",
            plan=lambda exp: [(exp.count_sampler, str(n)) for n in exp.counts],
            build=counted,
            stage=lambda s: f"count@{s.amount}-{s.seed}",
            row=lambda m, a: f"{m} +{int(float(a))}",
            report_order=4,
        ),
        Mode(
            "own",
            "sampler",
            plan=lambda exp: [(m, OWN) for m in exp.own],
            build=own_choice_set,
            stage=lambda s: f"own@{s.method}-{s.seed}",
            row=lambda m, a: f"{m} own choice",
            report_order=2,
            amounts=(OWN,),
            numeric=False,
        ),
    )
}


@dataclass(frozen=True)
class RunSpec:
    mode: str  # a MODES entry
    method: str  # the entry of the mode's method registry: a variant (baseline) or a sampler (the rest)
    amount: str  # ratio / fraction / count / word exactly as params.yaml (and so the DVC stage name) writes it
    seed: int

    def __post_init__(self):
        if self.mode not in MODES:
            raise GanaugError(f"unknown experiment mode '{self.mode}' (expected one of {', '.join(MODES)})")
        registry = VARIANTS if MODES[self.mode].method == "variant" else SAMPLERS
        if self.method not in registry:
            raise GanaugError(
                f"experiment mode {self.mode}: unknown {MODES[self.mode].method} '{self.method}' "
                f"(expected one of {', '.join(registry)})"
            )
        MODES[self.mode].check_amount(self.amount)

    @property
    def sampler(self) -> str | None:
        """The sampler that chooses this run's synthetic images (None for a real-only run)."""
        return self.method if MODES[self.mode].method == "sampler" else None

    @property
    def variant(self) -> str | None:
        """The real-only baseline this run is (None for a run with synthetic images)."""
        return self.method if MODES[self.mode].method == "variant" else None

    @property
    def key(self) -> str:
        """Unique within the mode; the folder name under reports/runs/<mode>/ and models/classifiers/<mode>/."""
        return f"{self.method}-{self.amount}-s{self.seed}"

    @property
    def dvc_stage(self) -> str:
        return MODES[self.mode].stage(self)

    @property
    def synthetic(self) -> bool:
        return self.sampler is not None

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
    baseline@ / augment@ / replace@ / count@ / own@ stages (a test checks the two agree). The report reads
    exactly these runs, so a metrics.json left on disk by other params is never counted."""
    exp = params.experiments
    return [
        RunSpec(mode.name, method, amount, seed)
        for mode in MODES.values()
        for method, amount in mode.plan(exp)
        for seed in exp.seeds
    ]


# stages whose output only some samplers read (-> whether a sampler reads it); the plan stage writes which planned
# runs need each, and a stage no run needs writes its empty outputs instead of training
OPTIONAL_STAGES: dict[str, Callable] = {
    "rl_policy": lambda sampler: sampler.reads_rl,
    "projection": lambda sampler: sampler.source == "projection",
    "pseudo_label": lambda sampler: sampler.source == "pseudo",
}


def optional_stage_plan(params) -> dict[str, dict]:
    """Each optional stage -> ``needed_by``: the planned runs' samplers that read its output (empty: no run needs
    it), and ``readers``: every sampler that would."""
    used = sorted({spec.sampler for spec in planned_runs(params) if spec.synthetic})
    return {
        stage: {
            "needed_by": [s for s in used if reads(SAMPLERS[s])],
            "readers": [s for s in SAMPLERS if reads(SAMPLERS[s])],
        }
        for stage, reads in OPTIONAL_STAGES.items()
    }


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
        "train": params.train.recorded(exclude={"seed", "epochs"}),
    }


def build_training_set(spec: RunSpec, real: Split, params) -> TrainingSet:
    """The run's training images, with per-image weights / soft targets for the synthetic part."""
    return MODES[spec.mode].build(spec, real, params)


def steps_per_epoch(spec: RunSpec, data: TrainingSet, params) -> int | None:
    """Optimiser steps per epoch. ``match: steps``: an epoch of the real set, for every run.
    ``match: real_epochs``: one pass over the whole training set (more steps with more synthetic
    images); a baseline at budget r > 0 takes the steps a run at ratio r takes, so the two compare
    at the same number of optimiser steps. None: one pass (fit's default)."""
    batch = params.train.batch_size
    if spec.mode == "baseline" and float(spec.amount) > 0:
        return max(1, int(round((1 + float(spec.amount)) * data.reference_size)) // batch)
    return max(1, data.reference_size // batch) if params.experiments.match == "steps" else None


def training_phases(spec: RunSpec, data: TrainingSet, params) -> list:
    """The run's training phases: the main phase on its training set (``recipe: pretrain``: on the synthetic
    images alone), then ``experiments.finetune_epochs`` on the real images alone at a tenth of the learning
    rate, cosine-annealed (``recipe: head-refit``: the head alone, class-balanced). Every run, the baselines
    included, gets the same fine-tune (equal budgets); a real-only variant keeps its treatment in every phase."""
    from ganaug.classify.train import Phase

    exp = params.experiments
    cfg = params.train.model_copy(update={"seed": spec.seed, "epochs": exp.epochs or params.train.epochs})
    variant = VARIANTS.get(spec.variant)  # None for a run with synthetic images
    if variant is not None and variant.augment is not None:
        cfg = cfg.model_copy(update={"augment": variant.augment(cfg.augment, exp)})
    treatment = variant.fit if variant is not None else {}
    s, n = data.split, data.n_real
    real = Split(s.images[:n], s.labels[:n], s.ids[:n])
    main = Phase("train", s, cfg, steps_per_epoch(spec, data, params), data.weights, data.targets, **treatment)
    if exp.recipe == "pretrain" and data.selection is not None and len(data.selection):
        # real-only rows, rotated copies included, and a run that chose no image train on their own images
        cut = slice(n, None)
        main = Phase(
            "train",
            Split(s.images[cut], s.labels[cut], s.ids[cut]),
            cfg,
            main.steps_per_epoch,
            None if data.weights is None else data.weights[cut],
            None if data.targets is None else data.targets[cut],
        )
    phases = [main]
    # the fine-tune takes the real set's steps per epoch whatever is left of it, so a replace row fine-tunes as
    # long as real-only does; replace 1.0 has no real image left and skips it (its row then trains fewer steps
    # than real-only, and the report says so instead of comparing)
    if exp.finetune_epochs and len(real):
        refit = {"head_only": True, "class_balanced": True} if exp.recipe == "head-refit" else {}
        ft_cfg = cfg.model_copy(update={"epochs": exp.finetune_epochs, "lr": cfg.lr / 10, "schedule": "cosine"})
        phases.append(
            Phase("finetune", real, ft_cfg, max(1, data.reference_size // cfg.batch_size), **{**treatment, **refit})
        )
    return phases


def run_experiment(spec: RunSpec, params, track: bool = True) -> dict:
    """Train and test one run; writes ``spec.report_dir`` (metrics.json, summary.csv, confusion.png)
    and the classifier to ``spec.model_dir`` (Grad-CAM in the report reads it). Returns the metrics
    (None on a torchrun rank other than 0).
    Every run, the baseline included, gets the same fine-tune phase on real images (equal budgets)."""
    import json

    import mlflow

    from ganaug.classify.normalize import Normalizer
    from ganaug.classify.run import RunOutputs, train_and_report
    from ganaug.data.store import load_classes, load_split
    from ganaug.digests import dvc_md5
    from ganaug.tracking import log_epoch, log_per_class, tracked_run

    exp = params.experiments
    meta = load_classes(paths.PREPARED)
    real, val, test = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val", "test"))
    data = build_training_set(spec, real, params)
    phases = training_phases(spec, data, params)
    out = RunOutputs(spec.model_dir, spec.report_dir / "metrics.json", spec.report_dir)
    inputs = {"data/prepared": paths.PREPARED}
    if data.selection is not None:
        source = str(data.selection["source"].iloc[0]) if len(data.selection) else "pool"
        inputs[str(paths.POOLS[source])] = paths.POOLS[source]
        inputs[str(spec.selection_path)] = spec.selection_path
    tags = {
        "mode": spec.mode,
        "sampler": spec.method,  # the sampler, or a real-only run's variant
        "ratio": spec.amount,
        "seed": str(spec.seed),
        "match": exp.match,
    }
    name = f"{spec.mode}/{spec.key}"

    # pretrain: the synthetic images alone first, normalised like the real images that the fine-tune, the test
    # and the saved model see
    norm = Normalizer.fit(data.split.images[: data.n_real]) if phases[0].data is not data.split else None

    def train():
        return train_and_report(name, phases, val, test, meta, out, log_epoch=log_epoch if track else None, norm=norm)

    def finish(metrics: dict) -> dict:
        metrics.update(
            {
                "mode": spec.mode,
                "sampler": spec.method,  # the sampler, or a real-only run's variant (the report's method column)
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
