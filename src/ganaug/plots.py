"""Figures a person would rather look at than numbers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on the project's machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig, path: Path, tight: bool = True) -> None:
    if tight:
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def tile(
    rows: list[list[np.ndarray]], shape: tuple, n_cols: int, fill: int, gaps: dict[int, int] | None = None
) -> np.ndarray:
    """Tiles (uint8, ``shape`` H x W x C) on one canvas, row by row, 1 px of ``fill`` around each; ``gaps[col]``:
    extra pixels before column ``col`` (to set a real image apart from what was made from it)."""
    gaps = gaps or {}
    h, w, c = shape
    canvas = np.full((len(rows) * (h + 2), n_cols * (w + 2) + sum(gaps.values()), c), fill, np.uint8)
    for r, tiles in enumerate(rows):
        for col, t in enumerate(tiles):
            x0 = col * (w + 2) + 1 + sum(g for k, g in gaps.items() if k <= col)
            canvas[r * (h + 2) + 1 : r * (h + 2) + 1 + h, x0 : x0 + w] = t
    return canvas


def show(canvas: np.ndarray, figsize: tuple[float, float], row_names: list[str], tile_height: int):
    """The canvas in a new figure (grey for one channel), one y tick per row of tiles; returns (fig, ax)."""
    fig, ax = plt.subplots(figsize=figsize)
    one_channel = canvas.shape[-1] == 1
    ax.imshow(canvas.squeeze(-1) if one_channel else canvas, cmap="gray" if one_channel else None, vmin=0, vmax=255)
    ax.set_yticks([r * (tile_height + 2) + tile_height / 2 for r in range(len(row_names))], row_names, fontsize=7)
    return fig, ax


def confusion_matrix_png(confusion: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with the count-based accuracy in each cell."""
    rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if confusion[i, j]:
                ax.text(
                    j,
                    i,
                    f"{rates[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    save(fig, path)


def image_grid(
    images: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    path: Path,
    per_class: int = 10,
    title: str | None = None,
) -> None:
    """One row per class (first ``per_class`` images of each), uint8 N x H x W x C in."""
    n_classes = len(classes)
    h = images.shape[1]
    rows = [list(images[np.flatnonzero(labels == row)[:per_class]]) for row in range(n_classes)]
    canvas = tile(rows, images.shape[1:], per_class, 0)
    scale = max(1.0, 28 / h)
    figsize = (0.3 * scale * per_class + 1.6, 0.3 * scale * n_classes + (0.4 if title else 0.1))
    fig, ax = show(canvas, figsize, classes, h)
    ax.set_xticks([])
    if title:
        ax.set_title(title, fontsize=8)
    save(fig, path)


def projection_grid(
    originals: np.ndarray, reconstructions: np.ndarray, variants: np.ndarray, row_names: list[str], path: Path
) -> None:
    """Rows: original | reconstruction | variants (uint8 N x H x W x C; variants N x V x H x W x C)."""
    n, v = variants.shape[:2]
    h, w = originals.shape[1:3]
    cols = 2 + v
    rows = [[originals[r], reconstructions[r], *variants[r]] for r in range(n)]
    # gaps after the real image and after the projected one
    canvas = tile(rows, originals.shape[1:], cols, 255, gaps={1: 4, 2: 4})
    fig, ax = show(canvas, (0.35 * cols + 1.8, 0.35 * n + 0.5), row_names, h)
    ax.set_xticks([w / 2, 1.5 * (w + 2) + 4, (2 + v / 2) * (w + 2) + 8], ["real", "projected", "perturbed"], fontsize=7)
    save(fig, path)


def translation_grid(
    sources: np.ndarray,
    translated: np.ndarray,
    row_names: list[str],
    classes: list[str],
    path: Path,
    title: str | None = None,
) -> None:
    """Rows: a real image, then it translated into each class (uint8 N x H x W x C; translated N x K x H x W x C)."""
    n, k = translated.shape[:2]
    h, w = sources.shape[1:3]
    rows = [[sources[r], *translated[r]] for r in range(n)]
    canvas = tile(rows, sources.shape[1:], k + 1, 255, gaps={1: 6})  # a gap after the real image
    scale = max(1.0, 28 / h)
    fig, ax = show(canvas, (0.3 * scale * (k + 1) + 1.8, 0.3 * scale * n + 1.2), row_names, h)
    ax.set_xticks(
        [w / 2] + [(col + 0.5) * (w + 2) + 6 for col in range(1, k + 1)],
        ["real"] + list(classes),
        rotation=45,
        ha="right",
        fontsize=7,
    )
    if title:
        ax.set_title(title, fontsize=8)
    save(fig, path)
