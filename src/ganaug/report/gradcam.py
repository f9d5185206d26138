"""Grad-CAM (paper 003 Fig. 7) with the maintained ``grad-cam`` package: the same real test images
through two classifiers (real-only and augmented), heat maps side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def target_layer(model: nn.Module, x: torch.Tensor, min_size: int = 4) -> nn.Module:
    """The deepest ResNet stage (or conv layer) whose output is still at least ``min_size`` pixels
    wide for this input: at 32 px a ResNet's last stage is 1x1, where a CAM is one flat value."""
    candidates = [getattr(model, n)[-1] for n in ("layer4", "layer3", "layer2", "layer1") if hasattr(model, n)]
    candidates += [m for m in reversed(list(model.modules())) if isinstance(m, nn.Conv2d)]
    sizes = {}

    def record(module, _inputs, output):  # returns None: the output passes through unchanged
        sizes.setdefault(module, output.shape[-1])

    hooks = [m.register_forward_hook(record) for m in candidates]
    with torch.no_grad():
        model(x[:1])
    for h in hooks:
        h.remove()
    return next((m for m in candidates if sizes.get(m, 0) >= min_size), candidates[0])


def cam_maps(model: nn.Module, config: dict, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM for the true label of each uint8 image; returns (maps N x H x W in [0, 1], predictions)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = model.eval().float()
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255)
    x = (x - torch.tensor(config["mean"]).view(1, -1, 1, 1)) / torch.tensor(config["std"]).view(1, -1, 1, 1)
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
    with GradCAM(model=model, target_layers=[target_layer(model, x)]) as cam:
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(y)) for y in labels])
    return maps, pred


def gradcam_figure(
    images: np.ndarray, labels: np.ndarray, classes: list[str], models: dict[str, tuple[nn.Module, dict]], path: Path
) -> None:
    """Rows: test images; columns: the image, then each model's Grad-CAM overlay (title: its prediction)."""
    results = {name: cam_maps(m, cfg, images, labels) for name, (m, cfg) in models.items()}
    n, cols = len(images), 1 + len(models)
    fig, axes = plt.subplots(n, cols, figsize=(1.6 * cols, 1.6 * n), squeeze=False)
    for i in range(n):
        gray = images[i].mean(-1) if images.shape[-1] == 3 else images[i, ..., 0]
        axes[i][0].imshow(images[i].squeeze(-1) if images.shape[-1] == 1 else images[i], cmap="gray", vmin=0, vmax=255)
        axes[i][0].set_title(f"true: {classes[labels[i]]}", fontsize=6)
        for j, (name, (maps, pred)) in enumerate(results.items(), start=1):
            axes[i][j].imshow(gray, cmap="gray", vmin=0, vmax=255)
            axes[i][j].imshow(maps[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            mark = "" if pred[i] == labels[i] else " (wrong)"
            axes[i][j].set_title(f"{name}: {classes[pred[i]]}{mark}", fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
