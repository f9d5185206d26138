"""The report's figures (PNG): accuracy vs ratio, replacement and low-data curves, loss curves,
per-class score histograms (paper 000 Fig. 4), highest/lowest-scored images (paper 000 Fig. 5)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ganaug.plots import image_grid  # noqa: E402
from ganaug.report.tables import best_real_only_row, real_only_row  # noqa: E402


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def ci_error(rows) -> np.ndarray:
    """95% CI half-widths in points (0 where n = 1: there is no interval to draw)."""
    return 100 * np.nan_to_num(np.asarray(rows["ci_high"], np.float64) - np.asarray(rows["mean"], np.float64))


def accuracy_vs_ratio(table: pd.DataFrame, path: Path) -> None:
    """One line per sampler, x = synthetic images / real images (0 = real only), error bars = 95% CIs over seeds."""
    aug, base = table[table["mode"] == "augment"], real_only_row(table)
    fig, ax = plt.subplots(figsize=(6, 4))
    for sampler, rows in aug.groupby("method", sort=True):
        rows = pd.concat([base.to_frame().T, rows]) if base is not None else rows
        # x: the ratio actually added (a top-up row adds what the data needs)
        rows = rows.assign(x=rows["n_synthetic"].astype(float) / rows["n_real"].astype(float)).sort_values("x")
        ax.errorbar(
            rows["x"], 100 * rows["mean"].astype(float), yerr=ci_error(rows), marker="o", capsize=3, label=sampler
        )
    if base is not None:
        ax.axhline(100 * base["mean"], color="gray", ls="--", lw=1, label="real only")
        best = best_real_only_row(table, base["steps"])
        if best is not None and best["method"] != "real":  # a long tail's stronger real-only baseline
            ax.axhline(
                100 * best["mean"],
                color="black",
                ls=":",
                lw=1,
                label=f"{best['row']} (the best real-only baseline)",
            )
    n = int(table["n"].min()) if len(table) else 0
    ax.set(
        xlabel="synthetic images (x the real set)",
        ylabel="test accuracy (%)",
        title=f"Augmentation: accuracy vs ratio (95% CI, {n} seeds)"
        if n > 1
        else "Augmentation: accuracy vs ratio (1 seed, no CI)",
    )
    ax.legend(fontsize=8)
    _save(fig, path)


def curve(table: pd.DataFrame, mode: str, path: Path, xlabel: str, title: str) -> bool:
    """Accuracy vs amount for one mode (replacement fraction, fixed count), 95% CIs; False if no such runs."""
    rows = table[table["mode"] == mode]
    if rows.empty:
        return False
    rows = rows.assign(x=rows["amount"].astype(float)).sort_values("x")
    base = real_only_row(table)
    if base is not None:
        rows = pd.concat([base.to_frame().T.assign(x=0.0), rows])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(
        rows["x"].astype(float),
        100 * rows["mean"].astype(float),
        yerr=ci_error(rows),
        marker="o",
        capsize=3,
        label=table.loc[table["mode"] == mode, "method"].iloc[0],
    )
    ax.set(xlabel=xlabel, ylabel="test accuracy (%) (95% CI)", title=title)
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def loss_curves(run_dirs: dict[str, Path], path: Path) -> None:
    """Train and validation loss per epoch for the named runs (paper 004 Fig. 6)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for name, run_dir in run_dirs.items():
        hist = pd.read_csv(run_dir / "summary.csv")
        axes[0].plot(hist["epoch"], hist["train_loss"], label=name)
        axes[1].plot(hist["epoch"], hist["val_loss"], label=name)
    axes[0].set(title="train loss (real + synthetic)", xlabel="epoch", ylabel="cross-entropy")
    axes[1].set(title="validation loss (real)", xlabel="epoch")
    axes[1].legend(fontsize=8)
    _save(fig, path)


def score_histograms(scores: pd.DataFrame, column: str, classes: list[str], path: Path, bins: int = 20) -> None:
    """Per-class distribution of a score over the pool, in % of the class (paper 000 Fig. 4)."""
    cols = min(5, len(classes))
    rows = int(np.ceil(len(classes) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.0 * rows), squeeze=False, sharex=True)
    values = scores[column].to_numpy(np.float64)
    edges = np.linspace(values.min(), values.max(), bins + 1) if len(values) else np.linspace(0, 1, bins + 1)
    for c, name in enumerate(classes):
        ax = axes[c // cols][c % cols]
        v = values[scores["label"].to_numpy() == c]
        ax.hist(v, bins=edges, weights=np.full(len(v), 100 / max(len(v), 1)), color="tab:blue")
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
    for k in range(len(classes), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(f"{column} of the synthetic pool, per class (% of the class)", fontsize=9)
    _save(fig, path)


def extremes_grid(
    images: np.ndarray, scores: pd.DataFrame, column: str, classes: list[str], path: Path, n: int = 8
) -> None:
    """Per class: the ``n`` highest-scored images, then the ``n`` lowest (paper 000 Fig. 5)."""
    picked, labels = [], []
    for c in range(len(classes)):
        rows = scores[scores["label"] == c].sort_values([column, "id"], ascending=[False, True])
        ids = np.concatenate([rows["id"].to_numpy()[:n], rows["id"].to_numpy()[::-1][:n][::-1]]) if len(rows) else []
        picked.extend(ids)
        labels.extend([c] * len(ids))
    picked = np.asarray(picked, np.int64)
    image_grid(
        np.asarray(images[picked]),
        np.asarray(labels),
        classes,
        path,
        per_class=2 * n,
        title=f"{column}: {n} highest (left) | {n} lowest (right) per class",
    )
