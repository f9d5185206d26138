"""Exact duplicates: the same pixels twice, as decoded and resized to data.image_size (two photos that only
differ below that resolution are the same training image). A scraped folder often holds one image under two names;
if one copy landed in train and its twin in test, every test accuracy would be inflated. Prepare keeps one
copy of each image before splitting (the copy in a given test split, else in a given val split, else the
first by id), so no image can be on both sides; ``data.duplicates: drop`` removes every copy of an image
that a user-given split put on two sides instead. The same pixels under two classes are a labelling
conflict, refused in one line."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict

import numpy as np

from ganaug.data.sources.base import RawDataset
from ganaug.data.sources.folder import user_path
from ganaug.errors import GanaugError


def split_names(raw: RawDataset) -> np.ndarray:
    """Each image's given split: test, val, or '' (drawn later)."""
    names = np.full(len(raw.labels), "", object)
    if raw.is_val is not None:
        names[raw.is_val] = "val"
    if raw.is_test is not None:
        names[raw.is_test] = "test"
    return names


def deduplicate(raw: RawDataset, policy: str = "keep-one", root: str = "") -> tuple[RawDataset, dict[str, int]]:
    """``raw`` with one copy of each image; the counts of copies removed (empty when none were). ``root``: the
    folder the ids are paths in (data.root), to name an image where the user finds it."""
    groups: dict[bytes, list[int]] = defaultdict(list)
    for i, image in enumerate(raw.images):
        groups[hashlib.blake2b(image.tobytes(), digest_size=16).digest()].append(i)
    split = split_names(raw)
    side = {"test": 0, "val": 1, "": 2}  # the copy kept: the test split's, then val's, then the first
    keep = np.ones(len(raw.labels), bool)
    counts: dict[str, int] = {}
    for copies in (g for g in groups.values() if len(g) > 1):
        if len(labels := {int(raw.labels[i]) for i in copies}) > 1:
            a, b = (next(i for i in copies if raw.labels[i] == c) for c in sorted(labels)[:2])
            first, second = (user_path(root, raw.ids[i]) for i in (a, b))
            raise GanaugError(
                f"'{first}' and '{second}' are the same image under classes '{raw.classes[raw.labels[a]]}' "
                f"and '{raw.classes[raw.labels[b]]}' (a labelling conflict); remove or relabel one"
            )
        straddles = len({split[i] for i in copies}) > 1
        if straddles and policy == "drop":
            keep[copies] = False
            counts["dropped_across_splits"] = counts.get("dropped_across_splits", 0) + len(copies)
            continue
        kept = min(copies, key=lambda i: (side[split[i]], i))
        keep[[i for i in copies if i != kept]] = False
        what = "removed_across_splits" if straddles else "removed"
        counts[what] = counts.get(what, 0) + len(copies) - 1
    if not counts:
        return raw, counts

    def subset(a):
        return None if a is None else a[keep]

    return (
        dataclasses.replace(
            raw,
            images=raw.images[keep],
            labels=raw.labels[keep],
            ids=raw.ids[keep],
            is_test=subset(raw.is_test),
            is_val=subset(raw.is_val),
        ),
        counts,
    )
