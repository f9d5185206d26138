"""Figures a person would rather look at than numbers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on the project's machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    h, w, c = images.shape[1:]
    canvas = np.zeros((n_classes * (h + 2), per_class * (w + 2), c), np.uint8)
    for row, _ in enumerate(classes):
        for col, i in enumerate(np.flatnonzero(labels == row)[:per_class]):
            canvas[row * (h + 2) + 1 : row * (h + 2) + 1 + h, col * (w + 2) + 1 : col * (w + 2) + 1 + w] = images[i]
    scale = max(1.0, 28 / h)
    fig, ax = plt.subplots(figsize=(0.3 * scale * per_class + 1.6, 0.3 * scale * n_classes + (0.4 if title else 0.1)))
    ax.imshow(canvas.squeeze(-1) if c == 1 else canvas, cmap="gray" if c == 1 else None, vmin=0, vmax=255)
    ax.set_yticks([r * (h + 2) + h / 2 for r in range(n_classes)], classes, fontsize=7)
    ax.set_xticks([])
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def projection_grid(
    originals: np.ndarray, reconstructions: np.ndarray, variants: np.ndarray, row_names: list[str], path: Path
) -> None:
    """Rows: original | reconstruction | variants (uint8 N x H x W x C; variants N x V x H x W x C)."""
    n, v = variants.shape[:2]
    h, w, c = originals.shape[1:]
    cols = 2 + v
    canvas = np.full((n * (h + 2), cols * (w + 2) + 8, c), 255, np.uint8)
    for r in range(n):
        tiles = [originals[r], reconstructions[r], *variants[r]]
        for col, tile in enumerate(tiles):
            x0 = col * (w + 2) + 1 + (4 if col >= 1 else 0) + (4 if col >= 2 else 0)  # gaps after real, projected
            canvas[r * (h + 2) + 1 : r * (h + 2) + 1 + h, x0 : x0 + w] = tile
    fig, ax = plt.subplots(figsize=(0.35 * cols + 1.8, 0.35 * n + 0.5))
    ax.imshow(canvas.squeeze(-1) if c == 1 else canvas, cmap="gray" if c == 1 else None, vmin=0, vmax=255)
    ax.set_yticks([r * (h + 2) + h / 2 for r in range(n)], row_names, fontsize=7)
    ax.set_xticks([w / 2, 1.5 * (w + 2) + 4, (2 + v / 2) * (w + 2) + 8], ["real", "projected", "perturbed"], fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
    h, w, c = sources.shape[1:]
    canvas = np.full((n * (h + 2), (k + 1) * (w + 2) + 6, c), 255, np.uint8)
    for r in range(n):
        for col, tile in enumerate([sources[r], *translated[r]]):
            x0 = col * (w + 2) + 1 + (6 if col else 0)  # a gap after the real image
            canvas[r * (h + 2) + 1 : r * (h + 2) + 1 + h, x0 : x0 + w] = tile
    scale = max(1.0, 28 / h)
    fig, ax = plt.subplots(figsize=(0.3 * scale * (k + 1) + 1.8, 0.3 * scale * n + 1.2))
    ax.imshow(canvas.squeeze(-1) if c == 1 else canvas, cmap="gray" if c == 1 else None, vmin=0, vmax=255)
    ax.set_yticks([r * (h + 2) + h / 2 for r in range(n)], row_names, fontsize=7)
    ax.set_xticks(
        [w / 2] + [(col + 0.5) * (w + 2) + 6 for col in range(1, k + 1)],
        ["real"] + list(classes),
        rotation=45,
        ha="right",
        fontsize=7,
    )
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def message_png(text: str, path: Path) -> None:
    """A figure that only says why there is no figure (an output DVC expects must still exist)."""
    fig, ax = plt.subplots(figsize=(6, 1))
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, wrap=True)
    ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
