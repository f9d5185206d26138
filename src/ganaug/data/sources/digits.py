"""scikit-learn's bundled 8x8 digits (1,797 images, pixel values 0..16): no network at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ganaug.data.download import verify
from ganaug.data.sources.base import RawDataset

CLASSES = [str(d) for d in range(10)]
ARCHIVE = "digits.csv.gz"
SHA256 = "sha256:09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"  # as shipped by scikit-learn


def _bundled() -> Path:
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent / "data" / ARCHIVE


def fetch(raw_dir: Path, params) -> Path:
    verify(_bundled(), SHA256)
    raw_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_bundled(), raw_dir / ARCHIVE)
    return raw_dir / ARCHIVE


def load(raw_dir: Path, params) -> RawDataset:
    path = raw_dir / ARCHIVE
    verify(path, SHA256)
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    images = np.rint(table[:, :64] * (255 / 16)).astype(np.uint8).reshape(-1, 8, 8, 1)
    labels = table[:, 64].astype(np.int64)
    ids = np.array([f"digits-{i:04d}" for i in range(len(labels))])
    return RawDataset(images, labels, ids, CLASSES)
