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


def wanted_per_class(per_class: int, fractions: np.ndarray) -> np.ndarray:
    """Training images per class for a number ``per_class``: that many x the class's imbalance fraction, at least 1."""
    return np.maximum(1, np.floor(per_class * fractions + 1e-9).astype(int))


def train_counts(
    available: np.ndarray, per_class, fractions: np.ndarray, classes: list[str], val_given: bool = False
) -> list[int]:
    """Training images per class after val is set aside; an error names a class that is too small (with val drawn
    here, room_for_val has checked it before the draw)."""
    if per_class == "all" and np.all(fractions == 1):
        wanted = available
    else:  # with 'all', the smallest class sets the scale of the profile
        base = int(available.min()) if per_class == "all" else per_class
        wanted = wanted_per_class(base, fractions)
        if np.ptp(fractions) > 0 and np.ptp(wanted) == 0:  # e.g. 1 per class: the long tail silently gone
            raise GanaugError(
                f"data.imbalance: at {base} training images per class (data.per_class: {per_class}) every class "
                f"gets {wanted[0]}, so no imbalance is left; raise data.per_class or set data.imbalance: null"
            )
    for c, (want, have) in enumerate(zip(wanted, available)):
        if want > have and val_given:
            raise GanaugError(
                f"data.per_class: class '{classes[c]}' has {have} training images (train/ less any test split), "
                f"but data.per_class asks for {want}"
            )
    return [int(w) for w in wanted]


def room_for_val(size, per_class, fractions: np.ndarray, counts: np.ndarray, classes: list[str]) -> None:
    """Validation is drawn from the non-test images that a class's training images leave: with a number of training
    images per class (1 in a few-shot sweep), a class whose ``counts`` cannot hold both is refused, naming both
    params and what they ask for. With per_class 'all', training takes what val leaves (split_sizes checks some
    remain)."""
    if per_class == "all":
        return
    for c, (want, val, have) in enumerate(
        zip(wanted_per_class(per_class, fractions), per_class_sizes(size, counts), counts)
    ):
        if want + val > have:
            asked = f"{val}" if isinstance(size, int) else f"{size:g} of them: {val}"
            raise GanaugError(
                f"data.val_per_class: class '{classes[c]}' has {have} images left after the test split, but "
                f"data.per_class ({want}) + data.val_per_class ({asked}) ask for {want + val}; validation is drawn "
                f"from what the training images leave ({max(have - want, 0)}): add images to that class or lower either"
            )


def per_class_sizes(size, counts: np.ndarray) -> list[int]:
    """A count per class, or a fraction of each class's ``counts`` (at least 1)."""
    return [int(size)] * len(counts) if isinstance(size, int) else [max(1, int(round(size * n))) for n in counts]


def split_sizes(size, counts: np.ndarray, classes: list[str], key: str, what: str) -> list[int]:
    """Per-class split sizes from a count or a fraction of each class's ``counts``; every class must
    keep at least one image for what comes after (an error names the class and its count)."""
    sizes = per_class_sizes(size, counts)
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
    fractions = imbalance_fractions(params.imbalance, n_classes)
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
        room_for_val(params.val_per_class, params.per_class, fractions, rest_counts, classes)
        val_sizes = split_sizes(params.val_per_class, rest_counts, classes, "val_per_class", "non-test images")
        val = stratified_take(labels, rest, val_sizes, rng)
    else:
        val = given_val
    rest = np.setdiff1d(rest, val)
    available = np.bincount(labels[rest], minlength=n_classes)
    counts = train_counts(available, params.per_class, fractions, classes, val_given=is_val is not None)
    train = stratified_take(labels, rest, counts, rng)
    return {"train": train, "val": val, "test": test}
