"""Seeded, stratified selection of test / val / train indices, with the low-data regime
(``per_class``) and an optional long-tail profile (``imbalance``) applied to train only.

Test and validation sizes are a count per class (an int) or a fraction of each class (a float
in (0, 1)): a fraction fits any folder, and keeps a naturally imbalanced test set imbalanced."""

from __future__ import annotations

import numpy as np

from ganaug.errors import GanaugError


def stratified_take(
    labels: np.ndarray, candidates: np.ndarray, counts: list[int], rng: np.random.Generator
) -> np.ndarray:
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


def train_counts(
    available: np.ndarray,
    per_class,
    fractions: np.ndarray,
    classes: list[str],
    val_sizes: list[int],
    val_given: bool = False,
) -> list[int]:
    """Training images per class after val is set aside; an error names a class that is too small."""
    if per_class == "all" and np.all(fractions == 1):
        wanted = available
    else:  # with 'all', the smallest class sets the scale of the profile
        base = int(available.min()) if per_class == "all" else per_class
        wanted = np.maximum(1, np.floor(base * fractions + 1e-9).astype(int))
    for c, (want, have) in enumerate(zip(wanted, available)):
        if want > have and val_given:
            raise GanaugError(
                f"data.per_class: class '{classes[c]}' has {have} training images (train/ less any test split), "
                f"but data.per_class asks for {want}"
            )
        if want > have:
            raise GanaugError(
                f"data.per_class: class '{classes[c]}' has {have + val_sizes[c]} images left after the test split, "
                f"but data.per_class ({want}) + data.val_per_class ({val_sizes[c]}) ask for {want + val_sizes[c]}"
            )
    return [int(w) for w in wanted]


def split_sizes(size, counts: np.ndarray, classes: list[str], key: str, what: str) -> list[int]:
    """Per-class split sizes from a count or a fraction of each class's ``counts``; every class must
    keep at least one image for what comes after (an error names the class and its count)."""
    sizes = [int(size)] * len(counts) if isinstance(size, int) else [max(1, int(round(size * n))) for n in counts]
    for c, (want, have) in enumerate(zip(sizes, counts)):
        if have < 2 or want >= have:
            asked = f"{want}" if isinstance(size, int) else f"{size:g} of it ({want})"
            hint = (
                f"lower data.{key}, e.g. a fraction such as 0.2"
                if isinstance(size, int) and have >= 2
                else "add images to that class or remove its folder"
            )
            raise GanaugError(
                f"data.{key}: class '{classes[c]}' has {have} {what}; {asked} for {key.split('_')[0]} "
                f"would leave none to train on ({hint})"
            )
    return sizes


def split_indices(
    labels: np.ndarray, is_test: np.ndarray | None, classes: list[str], params, is_val: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Indices of test, val and train. Test: the official (or user-given) split, or ``test_per_class`` of each
    class; val: the user-given split, or ``val_per_class`` of each class of the rest; train: ``per_class``
    (x imbalance) of what remains."""
    rng = np.random.default_rng(params.seed)
    n_classes = len(classes)
    all_idx = np.arange(len(labels))
    given_val = all_idx[is_val] if is_val is not None else all_idx[:0]
    if is_test is None:
        pool = np.setdiff1d(all_idx, given_val)
        counts = np.bincount(labels[pool], minlength=n_classes)
        test = stratified_take(
            labels, pool, split_sizes(params.test_per_class, counts, classes, "test_per_class", "images"), rng
        )
    else:
        test = all_idx[is_test]
    rest = np.setdiff1d(all_idx, test)
    if is_val is None:
        rest_counts = np.bincount(labels[rest], minlength=n_classes)
        val_sizes = split_sizes(params.val_per_class, rest_counts, classes, "val_per_class", "non-test images")
        val = stratified_take(labels, rest, val_sizes, rng)
    else:
        val = given_val
        val_sizes = [int(n) for n in np.bincount(labels[val], minlength=n_classes)]
    rest = np.setdiff1d(rest, val)
    available = np.bincount(labels[rest], minlength=n_classes)
    counts = train_counts(
        available,
        params.per_class,
        imbalance_fractions(params.imbalance, n_classes),
        classes,
        val_sizes,
        val_given=is_val is not None,
    )
    train = stratified_take(labels, rest, counts, rng)
    return {"train": train, "val": val, "test": test}
