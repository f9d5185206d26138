"""CIFAR-10 (papers 001 and 004): the official binary archive, parsed from its byte layout.

``cifar-10-binary.tar.gz`` holds ``cifar-10-batches-bin/data_batch_{1..5}.bin`` (50,000 training
images) and ``test_batch.bin`` (10,000, the official test split). Each record is 3,073 bytes: the
label, then 1,024 red, 1,024 green and 1,024 blue bytes of a 32 x 32 image, row by row. The
Python-pickle version of the archive is never used: unpickling runs code from the file.
Not fetched in this project's own environment (no route to the host): tested on small archives
in the same format.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from ganaug.data.download import download_url, is_verified
from ganaug.data.sources.base import RawDataset
from ganaug.errors import GanaugError

URLS = ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]
ARCHIVE = "cifar-10-binary.tar.gz"
MD5 = "md5:c32a1d4ab5d03f1284b67883e8d87530"  # as published with the archive
URL_TIMEOUT_S = 10.0
FOLDER = "cifar-10-batches-bin"
TRAIN_BATCHES = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST_BATCH = "test_batch.bin"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
RECORD = 1 + 3 * 32 * 32


def fetch(raw_dir: Path, params) -> Path:
    archive = raw_dir / ARCHIVE
    if is_verified(archive, MD5):
        return archive
    tried = []
    for url in URLS:
        try:
            return download_url(url, archive, MD5, timeout=URL_TIMEOUT_S)
        except OSError as err:  # unreachable: the next URL (a checksum mismatch is not caught)
            tried.append(f"{url} ({type(err).__name__}: {err})")
    raise GanaugError(
        f"cifar10: no source could be reached; tried: {'; '.join(tried)} "
        f"(or place {ARCHIVE} with MD5 {MD5.split(':')[1]} in {raw_dir})"
    )


def parse_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch -> images N x 32 x 32 x 3 (uint8, RGB) and labels N."""
    if len(data) % RECORD:
        raise GanaugError(f"{ARCHIVE}: {name}: {len(data)} bytes is not a whole number of {RECORD}-byte records")
    records = np.frombuffer(data, np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if len(labels) and labels.max() >= len(CLASSES):
        raise GanaugError(f"{ARCHIVE}: {name}: label {labels.max()} outside 0..{len(CLASSES) - 1}")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def load(raw_dir: Path, params) -> RawDataset:
    archive = raw_dir / ARCHIVE
    if not archive.is_file():
        raise GanaugError(f"{archive}: not found (run the fetch stage: `dvc repro fetch`)")
    images, labels, ids, is_test = [], [], [], []
    with tarfile.open(archive) as tar:
        for name in [*TRAIN_BATCHES, TEST_BATCH]:
            member = tar.extractfile(f"{FOLDER}/{name}") if f"{FOLDER}/{name}" in tar.getnames() else None
            if member is None:
                raise GanaugError(f"{archive}: {FOLDER}/{name} missing (expected the official binary archive)")
            x, y = parse_batch(member.read(), name)
            images.append(x)
            labels.append(y)
            ids.extend(f"{name.removesuffix('.bin')}-{i:05d}" for i in range(len(y)))
            is_test.append(np.full(len(y), name == TEST_BATCH))
    return RawDataset(np.concatenate(images), np.concatenate(labels), np.array(ids), CLASSES, np.concatenate(is_test))
