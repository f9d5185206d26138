"""A user's image folder: ``<root>/<class_name>/*.{png,jpg,jpeg,bmp}``, any size, gray or RGB.

``fetch`` copies the images into ``data/raw/folder/`` so DVC versions exactly what was used;
after changing the folder, run ``dvc repro -f -s fetch``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganaug.data.sources.base import RawDataset
from ganaug.errors import GanaugError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp"}


def _class_images(root: Path) -> dict[str, list[Path]]:
    if not root.is_dir():
        raise GanaugError(f"data.root: image folder '{root}' not found (expected <root>/<class_name>/*.png)")
    classes = {
        d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in EXTENSIONS)
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    classes = {name: files for name, files in classes.items() if files}
    if len(classes) < 2:
        raise GanaugError(f"data.root: '{root}' has {len(classes)} class folder(s) with images; expected at least 2")
    return classes


def fetch(raw_dir: Path, params) -> Path:
    for name, files in _class_images(Path(params.root)).items():
        (raw_dir / name).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copyfile(f, raw_dir / name / f.name)
    return raw_dir


def _read(path: Path, size: int, mode: str) -> np.ndarray:
    with Image.open(path) as im:
        im.load()  # decode now, so a truncated file fails here
        im = im.convert(mode)
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8).reshape(size, size, -1)


def _mode(files: list[Path], channels: int | None) -> str:
    if channels is not None:
        return "L" if channels == 1 else "RGB"
    for f in files:
        try:
            with Image.open(f) as im:
                if im.mode not in ("L", "1", "I", "I;16", "LA"):
                    return "RGB"
        except (UnidentifiedImageError, OSError):
            continue
    return "L"


def load(raw_dir: Path, params) -> RawDataset:
    classes = _class_images(raw_dir)
    mode = _mode([f for files in classes.values() for f in files], params.channels)
    images, labels, ids, skipped = [], [], [], 0
    for label, (name, files) in enumerate(classes.items()):
        for f in files:
            try:
                images.append(_read(f, params.image_size, mode))
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
                if not params.skip_corrupt:
                    raise GanaugError(
                        f"{f}: unreadable or corrupt image ({type(err).__name__}); fix or remove it, "
                        "or set data.skip_corrupt: true to skip such files"
                    ) from None
                skipped += 1
                continue
            labels.append(label)
            ids.append(f"{name}/{f.name}")
    return RawDataset(np.stack(images), np.array(labels, np.int64), np.array(ids), list(classes), skipped=skipped)
