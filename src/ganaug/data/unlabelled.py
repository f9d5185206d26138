"""Unlabelled images beside the labelled set (``data.unlabelled``): what a generator can learn from that the small
labelled set does not hold (paper 003's setting, a generator pre-trained on an unlabelled source), and what
pseudo-labelling, the fair baseline for them, labels with the scorer.

  rest    the source's own training images that were not drawn as train or val (Fashion-MNIST at 100 per class:
          ~58,500), labels dropped; never test images, whose split is drawn first
  folder  every image under ``data.unlabelled_root``, at any depth, read like the labelled folder

Either way an unlabelled image whose pixels (at data.image_size) equal a test image is dropped, so nothing
learned from it can inflate a test accuracy; one equal to a labelled train or val image is dropped too (it is
already labelled), and copies within the unlabelled set are kept once. Each count goes in prepare's notes.
Written as ``data/prepared/unlabelled.npz`` (labels all -1), after the other splits."""

from __future__ import annotations

import hashlib

import numpy as np

from ganaug.data.store import Split

NO_LABEL = -1


def pixel_digests(images: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in images]


def without_overlap(images: np.ndarray, ids: np.ndarray, labelled: dict[str, np.ndarray]) -> tuple[Split, dict]:
    """``images`` less those equal to an image of a labelled split (``{split name: uint8 images}``) and less
    repeats among themselves; the counts of what was dropped, by reason."""
    seen_in = {}
    for name in ("train", "val", "test"):  # a test twin is named as such whatever else it equals
        for digest in pixel_digests(labelled.get(name, images[:0])):
            seen_in[digest] = name
    keep = np.ones(len(images), bool)
    counts: dict[str, int] = {}
    for i, digest in enumerate(pixel_digests(images)):
        where = seen_in.get(digest)
        if where is None:
            seen_in[digest] = "unlabelled"
            continue
        keep[i] = False
        reason = {"test": "same_as_test", "unlabelled": "repeated"}.get(where, "same_as_labelled")
        counts[reason] = counts.get(reason, 0) + 1
    return Split(images[keep], np.full(int(keep.sum()), NO_LABEL, np.int64), ids[keep]), counts


def subset(split: Split, at_most, seed: int) -> Split:
    """At most ``at_most`` images ('all': every one), a seeded draw kept in the original order."""
    if at_most == "all" or len(split) <= at_most:
        return split
    keep = np.sort(np.random.default_rng([seed, 1]).choice(len(split), size=at_most, replace=False))
    return Split(split.images[keep], split.labels[keep], split.ids[keep])
