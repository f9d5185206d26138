"""The real-only baselines (``VARIANTS``, experiments.baselines): what each changes about training on the real images
alone. How the report names and compares their rows is ganaug.report.rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ganaug.data.store import Split


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
    augment: Callable | None = None  # (train.augment, experiments) -> the online augmentation it trains with
    extra: Callable | None = None  # (real, experiments, seed) -> images added to the real set
    fit: dict = field(default_factory=dict)  # fit() options, in every phase: what a long-tail baseline changes


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("real"),  # train.augment as it is
        Variant("rotate", augment=with_rotation),
        Variant("plain", augment=no_augmentation),
        Variant("rotated-copies", augment=no_augmentation, extra=rotated_copies),
        # the long-tail baselines a reviewer expects: class-balanced resampling, and the logit-adjusted loss
        # with tau = 1 (Menon et al. 2021)
        Variant("resample", fit={"class_balanced": True}),
        Variant("logit-adjust", fit={"logit_adjust": 1.0}),
    )
}
