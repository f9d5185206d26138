"""The synthetic pool on disk: ``images.npy`` (uint8 N x H x W x C, memory-mapped), ``labels.npy``,
``latents.npy`` and ``meta.json``. Written batch by batch with sequential writes, so peak memory does not
grow with the pool size; read back memory-mapped; readers refuse a pool whose files disagree. No torch here:
a stage that only reads a pool, or writes an empty one, starts without it (ganaug.gan.pool generates)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganaug.errors import GanaugError

FILES = ("images.npy", "labels.npy", "latents.npy", "meta.json")


@dataclass
class Pool:
    images: np.ndarray  # uint8 N x H x W x C, memory-mapped read-only
    labels: np.ndarray  # int64 N
    latents: np.ndarray  # float32 N x z_dim, memory-mapped
    meta: dict

    def __len__(self) -> int:
        return len(self.labels)


class NpyWriter:
    """Appends rows to a .npy file of known shape with plain sequential writes: unlike a writable
    memory map, written pages do not stay in the process's resident memory."""

    def __init__(self, path: Path, dtype, shape: tuple[int, ...]):
        self.path, self.dtype, self.shape, self.rows = path, np.dtype(dtype), shape, 0
        self.file = open(path, "wb")
        np.lib.format.write_array_header_1_0(
            self.file, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        )

    def write(self, rows: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.rows += len(rows)

    def close(self) -> None:
        self.file.close()
        if self.rows != self.shape[0]:
            raise RuntimeError(f"{self.path}: wrote {self.rows} rows, expected {self.shape[0]}")


class PoolWriter:
    """The one writer of the pool format: ``count`` rows appended batch by batch (images, labels, latents and any
    ``extra`` per-row arrays, by name and dtype, saved as <name>.npy), then ``close(meta)`` writes meta.json last,
    so a pool with a meta.json is complete."""

    def __init__(
        self, out_dir: Path, count: int, image_shape: tuple[int, int, int], z_dim: int, extra: dict | None = None
    ):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir, self.count = out_dir, count
        self.columns = {
            "images": NpyWriter(out_dir / "images.npy", np.uint8, (count, *image_shape)),
            "labels": NpyWriter(out_dir / "labels.npy", np.int64, (count,)),
            "latents": NpyWriter(out_dir / "latents.npy", np.float32, (count, z_dim)),
            **{name: NpyWriter(out_dir / f"{name}.npy", dtype, (count,)) for name, dtype in (extra or {}).items()},
        }

    def write(self, images: np.ndarray, labels: np.ndarray, latents: np.ndarray, **extra: np.ndarray) -> None:
        for name, rows in {"images": images, "labels": labels, "latents": latents, **extra}.items():
            self.columns[name].write(rows)

    def close(self, meta: dict) -> Pool:
        for column in self.columns.values():
            column.close()
        (self.out_dir / "meta.json").write_text(json.dumps({"count": self.count, **meta}, indent=2) + "\n")
        return open_pool(self.out_dir)


def save_pool(
    out_dir: Path,
    images: np.ndarray,
    labels: np.ndarray,
    latents: np.ndarray,
    meta: dict,
    extra: dict[str, np.ndarray] | None = None,
) -> Pool:
    """An in-memory pool (small, e.g. the projection pool) in the same format; ``extra`` arrays (one row per image)
    are saved beside it as <name>.npy."""
    extra = extra or {}
    writer = PoolWriter(
        out_dir, len(labels), images.shape[1:], latents.shape[1], {k: v.dtype for k, v in extra.items()}
    )
    writer.write(images, labels, latents, **extra)
    return writer.close(meta)


def open_pool(pool_dir: Path) -> Pool:
    for name in FILES:
        if not (pool_dir / name).is_file():
            raise GanaugError(f"{pool_dir / name}: not found (run `dvc repro generate`)")
    try:
        images = np.load(pool_dir / "images.npy", mmap_mode="r")
        labels = np.load(pool_dir / "labels.npy")
        latents = np.load(pool_dir / "latents.npy", mmap_mode="r")
        meta = json.loads((pool_dir / "meta.json").read_text())
    except (ValueError, OSError) as err:
        raise GanaugError(f"{pool_dir}: unreadable pool file ({err})") from None
    lengths = {
        "images.npy": len(images),
        "labels.npy": len(labels),
        "latents.npy": len(latents),
        "meta.json count": meta.get("count"),
    }
    if len(set(lengths.values())) != 1:
        raise GanaugError(
            f"{pool_dir}: pool files disagree in length ({', '.join(f'{k} {v}' for k, v in lengths.items())})"
        )
    if images.dtype != np.uint8 or images.ndim != 4:
        raise GanaugError(f"{pool_dir / 'images.npy'}: expected uint8 N x H x W x C, got {images.dtype} {images.shape}")
    return Pool(images, labels, latents, meta)


def save_empty_pool(out_dir: Path, image_size: int, channels: int, meta: dict) -> Pool:
    """A pool of no images that says why in its meta (``skipped``): a sampler that reads it refuses in one line."""
    return save_pool(
        out_dir,
        np.zeros((0, image_size, image_size, channels), np.uint8),
        np.zeros(0, np.int64),
        np.zeros((0, 0), np.float32),
        meta,
    )
