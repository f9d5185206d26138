"""Seeded, stratified selection of test / val / train indices, with the low-data regime
(``per_class``) and an optional long-tail profile (``imbalance``) applied to train only."""

from __future__ import annotations

import numpy as np

from ganaug.errors import GanaugError


def stratified_take(labels: np.ndarray, candidates: np.ndarray, counts: list[int], rng: np.random.Generator) -> np.ndarray:
    """From ``candidates`` (indices into labels) take counts[c] random indices of each class c,
    returned sorted so the order on disk does not depend on the draw."""
    taken = []
    for c, n in enumerate(counts):
        pool = candidates[labels[candidates] == c]
        taken.append(rng.choice(pool, size=n, replace=False) if n < len(pool) else pool)
    return np.sort(np.concatenate(taken)) if taken else np.array([], dtype=np.int64)


def imbalance_fractions(imbalance, n_classes: int) -> np.ndarray:
    """None -> all ones; a ratio r -> exponential profile from 1 down to 1/r (long-tailed CIFAR
    style, class 0 the largest); a list -> those fractions, one per class."""
    if imbalance is None:
        return np.ones(n_classes)
    if isinstance(imbalance, list):
        if len(imbalance) != n_classes:
            raise GanaugError(f"data.imbalance: {len(imbalance)} fractions given, the dataset has {n_classes} classes")
        return np.asarray(imbalance, dtype=np.float64)
    return float(imbalance) ** (-np.arange(n_classes) / max(n_classes - 1, 1))


def train_counts(available: np.ndarray, per_class, fractions: np.ndarray, classes: list[str], val_per_class: int) -> list[int]:
    """Training images per class after val is set aside; an error names a class that is too small."""
    if per_class == "all" and np.all(fractions == 1):
        wanted = available
    else:  # with 'all', the smallest class sets the scale of the profile
        base = int(available.min()) if per_class == "all" else per_class
        wanted = np.maximum(1, np.floor(base * fractions + 1e-9).astype(int))
    for c, (want, have) in enumerate(zip(wanted, available)):
        if want > have:
            raise GanaugError(
                f"data.per_class: class '{classes[c]}' has {have + val_per_class} images left after the test split, "
                f"but data.per_class ({want}) + data.val_per_class ({val_per_class}) ask for {want + val_per_class}"
            )
    return [int(w) for w in wanted]


def split_indices(labels: np.ndarray, is_test: np.ndarray | None, classes: list[str], params) -> dict[str, np.ndarray]:
    """Indices of test, val and train. Test: the official split, or ``test_per_class`` per class;
    val: ``val_per_class`` per class of the rest; train: ``per_class`` (x imbalance) of what remains."""
    rng = np.random.default_rng(params.seed)
    n_classes = len(classes)
    all_idx = np.arange(len(labels))
    if is_test is None:
        counts = np.bincount(labels, minlength=n_classes)
        for c in range(n_classes):
            if counts[c] <= params.test_per_class:
                raise GanaugError(
                    f"data.test_per_class: class '{classes[c]}' has {counts[c]} images; "
                    f"{params.test_per_class} for test would leave none to train on"
                )
        test = stratified_take(labels, all_idx, [params.test_per_class] * n_classes, rng)
    else:
        test = all_idx[is_test]
    rest = np.setdiff1d(all_idx, test)
    rest_counts = np.bincount(labels[rest], minlength=n_classes)
    for c in range(n_classes):
        if rest_counts[c] <= params.val_per_class:
            raise GanaugError(
                f"data.val_per_class: class '{classes[c]}' has {rest_counts[c]} non-test images; "
                f"{params.val_per_class} for validation would leave none to train on"
            )
    val = stratified_take(labels, rest, [params.val_per_class] * n_classes, rng)
    rest = np.setdiff1d(rest, val)
    available = np.bincount(labels[rest], minlength=n_classes)
    counts = train_counts(available, params.per_class, imbalance_fractions(params.imbalance, n_classes), classes, params.val_per_class)
    train = stratified_take(labels, rest, counts, rng)
    return {"train": train, "val": val, "test": test}
