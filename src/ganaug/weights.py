"""Pretrained weights from a local folder (gan.pretrained, clip.path): never downloaded. A folder is checked before
a library reads it, so a missing or wrong one stops in one line naming it and what was expected, instead of a
hub lookup or a library's long traceback."""

from __future__ import annotations

import os
from pathlib import Path

from ganaug import paths
from ganaug.errors import GanaugError

# every Hugging Face library this process loads reads these, so nothing is fetched even by a default config
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def given(path: str | Path) -> bool:
    """Whether params name weights (anything but the placeholder paths.NO_WEIGHTS)."""
    return Path(path) != paths.NO_WEIGHTS


def local_folder(path: str | Path, key: str, expected: str, *marker: str) -> Path:
    """``path`` as a folder holding every file in ``marker`` (e.g. config.json), or one line naming ``key``, the
    folder and ``expected`` (what kind of folder it should be)."""
    folder = Path(path)
    if not folder.is_dir():
        raise GanaugError(f"{key}: {folder}: not a folder (expected {expected}, saved with save_pretrained)")
    missing = [m for m in marker if not (folder / m).exists()]
    if missing:
        raise GanaugError(f"{key}: {folder}: no {missing[0]} in it (expected {expected}, saved with save_pretrained)")
    return folder


def weights_md5(path: str | Path) -> str:
    """The md5 DVC records for the weights folder (what MLflow tags and saved configs name)."""
    from ganaug.digests import dvc_md5

    return dvc_md5(Path(path))
