"""The in-memory form every source loads into."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RawDataset:
    images: np.ndarray  # uint8, N x H x W x C
    labels: np.ndarray  # int64, N
    ids: np.ndarray  # str, N: stable across runs (archive + index, or relative file path)
    classes: list[str]
    is_test: np.ndarray | None = None  # bool, N: the official (or user-given) test split, None when there is none
    is_val: np.ndarray | None = None  # bool, N: a user-given validation split, None when there is none
    skipped: int = 0  # corrupt files skipped (data.skip_corrupt)
    converted: int = 0  # images converted to the common mode (gray <-> RGB)
    gray_kept: bool = False  # every image gray (R = G = B) though some files store colour: one channel kept

    def __post_init__(self):
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 N x H x W x C, got {self.images.dtype} {self.images.shape}")
        if (
            len(self.labels) != n
            or len(self.ids) != n
            or any(given is not None and len(given) != n for given in (self.is_test, self.is_val))
        ):
            raise ValueError("images, labels, ids, is_test and is_val must have the same length")
