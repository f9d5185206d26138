"""The ``prepare`` logic: raw dataset -> resized, split, low-data train/val/test arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganaug.data.duplicates import deduplicate
from ganaug.data.sources import get_source
from ganaug.data.splits import split_indices
from ganaug.data.store import Split, save_split
from ganaug.data.unlabelled import subset, without_overlap
from ganaug.errors import GanaugError


def resize(images: np.ndarray, size: int, channels: int | None) -> np.ndarray:
    """uint8 N x H x W x C -> uint8 N x size x size x channels (antialiased bilinear)."""
    if channels is not None and images.shape[-1] != channels:
        images = (
            images.mean(-1, keepdims=True).round().astype(np.uint8) if channels == 1 else np.repeat(images, 3, axis=-1)
        )
    if images.shape[1:3] == (size, size):
        return images
    out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
    for start in range(0, len(images), 4096):  # bounded memory for large sets
        x = torch.from_numpy(images[start : start + 4096]).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + 4096] = y.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


def prepare(raw_dir: Path, out_dir: Path, params) -> dict:
    """Write ``out_dir/{train,val,test}.npz`` and ``classes.json``; return the summary written there."""
    if not raw_dir.is_dir():
        raise GanaugError(f"{raw_dir}: raw data not found (run the fetch stage: `dvc repro fetch`)")
    raw = get_source(params.name).load(raw_dir, params)
    duplicates = {}
    if params.name == "folder":  # the benchmark datasets stay as published, so their numbers compare
        raw, duplicates = deduplicate(raw, params.duplicates, params.root)
    parts = split_indices(raw.labels, raw.is_test, raw.classes, params, raw.is_val)
    summary = {
        "dataset": params.name,
        "classes": raw.classes,
        "image_size": params.image_size,
        "channels": int(params.channels or raw.images.shape[-1]),
        "official_test_split": raw.is_test is not None,
        "skipped_corrupt": raw.skipped,
        "converted_images": raw.converted,  # made to share one mode (gray <-> RGB, CMYK, transparency flattened)
        **({"gray_kept": len(raw.labels)} if raw.gray_kept else {}),  # all these images gray: 1 channel kept
        **(
            {"given_splits": [s for s, g in (("val", raw.is_val), ("test", raw.is_test)) if g is not None]}
            if params.name == "folder"
            else {}
        ),
        **({"duplicates": duplicates} if duplicates else {}),  # copies removed (ganaug.data.duplicates)
        "counts": {},
    }
    written = {}
    for name, idx in parts.items():
        split = Split(resize(raw.images[idx], params.image_size, params.channels), raw.labels[idx], raw.ids[idx])
        save_split(out_dir / f"{name}.npz", split)
        written[name] = split.images
        summary["counts"][name] = {
            c: int(n) for c, n in zip(raw.classes, np.bincount(split.labels, minlength=len(raw.classes)))
        }
    if params.unlabelled is not None:
        summary["unlabelled"] = write_unlabelled(out_dir, raw, parts, written, params, summary["channels"])
    (out_dir / "classes.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def write_unlabelled(out_dir: Path, raw, parts: dict, labelled: dict, params, channels: int) -> dict:
    """``out_dir/unlabelled.npz`` (ganaug.data.unlabelled); returns its summary for classes.json."""
    if params.unlabelled == "rest":
        rest = np.setdiff1d(np.arange(len(raw.labels)), np.concatenate(list(parts.values())))
        images, ids, skipped, ignored = resize(raw.images[rest], params.image_size, channels), raw.ids[rest], 0, {}
    else:
        from ganaug.data.sources.folder import load_unlabelled

        images, ids, skipped, ignored = load_unlabelled(params.unlabelled_root, params, channels)
    split, dropped = without_overlap(images, ids, labelled)
    split = subset(split, params.unlabelled_max, params.seed)
    if not len(split):
        raise GanaugError(
            f"data.unlabelled: {params.unlabelled}: no image left once those equal to a labelled image were dropped "
            f"({sum(dropped.values())} dropped); add unlabelled images or set data.unlabelled: null"
        )
    save_split(out_dir / "unlabelled.npz", split)
    return {
        "source": params.unlabelled if params.unlabelled == "rest" else params.unlabelled_root,
        "images": len(split),
        **({"dropped": dropped} if dropped else {}),
        **({"skipped_corrupt": skipped} if skipped else {}),
        **({"ignored": dict(sorted(ignored.items()))} if ignored else {}),
    }
