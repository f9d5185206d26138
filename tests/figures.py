"""What a figure test asks of a PNG: that something was drawn, not that a file of some size exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def assert_coloured_marks(path: Path, at_least: int = 200) -> None:
    """A plot's lines, points or bars: pixels of a clear colour (matplotlib's palette), not only the black and grey
    of empty axes and text."""
    img = pixels(path)
    saturated = int(((img.max(axis=2) - img.min(axis=2)) > 60).sum())
    assert saturated >= at_least, f"{path.name}: {saturated} coloured pixels, expected a drawn line or bar"


def assert_tiles_differ(path: Path) -> None:
    """An image grid: its content varies across the picture (tiles of different images), not one flat colour."""
    img = pixels(path).mean(axis=2)
    rows = np.array_split(img, 4, axis=0)
    assert np.ptp([r.mean() for r in rows]) > 1 or img.std() > 20, f"{path.name}: looks blank"
    assert len(np.unique(img.round())) > 50, f"{path.name}: too few distinct grey levels for a grid of images"
