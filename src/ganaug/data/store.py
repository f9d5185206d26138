"""The prepared-array store: ``{train,val,test}.npz`` (uint8 images, int64 labels, str ids).

Written byte-for-byte deterministically (fixed zip timestamps), so re-running ``prepare`` with
the same params gives the same DVC hash and nothing downstream re-runs.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganaug.errors import GanaugError

SPLITS = ("train", "val", "test")
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass
class Split:
    images: np.ndarray  # uint8 N x H x W x C
    labels: np.ndarray  # int64 N
    ids: np.ndarray  # str N

    def __len__(self) -> int:
        return len(self.labels)


def ids_digest(ids) -> str:
    """md5 of the sorted image ids: which real images a model was trained on, in one comparable string."""
    import hashlib

    return hashlib.md5("\n".join(sorted(map(str, ids))).encode("utf-8")).hexdigest()


def save_split(path: Path, split: Split) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for key, arr in (("images", split.images), ("labels", split.labels), ("ids", split.ids)):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=_EPOCH), buf.getvalue())
    tmp.replace(path)  # never a half-written file under the real name


def load_split(path: Path) -> Split:
    if not path.is_file():
        raise GanaugError(f"{path}: prepared split not found (run `dvc repro prepare`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            split = Split(z["images"], z["labels"].astype(np.int64), z["ids"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise GanaugError(f"{path}: not a readable prepared split with images/labels/ids ({err})") from None
    if split.images.dtype != np.uint8 or split.images.ndim != 4 or len(split.images) != len(split.labels):
        raise GanaugError(
            f"{path}: expected uint8 N x H x W x C images and N labels, got {split.images.shape} / {split.labels.shape}"
        )
    return split


def load_classes(prepared_dir: Path) -> dict:
    """``classes.json``: class names, channels, image size, per-split counts."""
    path = prepared_dir / "classes.json"
    if not path.is_file():
        raise GanaugError(f"{path}: not found (run `dvc repro prepare`)")
    return json.loads(path.read_text())
