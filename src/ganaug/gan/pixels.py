"""The one conversion between stored images (uint8 N x H x W x C) and what the networks see
(float N x C x H x W in [-1, 1]), both ways."""

from __future__ import annotations

import numpy as np
import torch


def from_uint8(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W x C (an array, a memmap slice or a tensor on any device) -> float N x C x H x W in [-1, 1]."""
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images))  # a writable copy
    return x.permute(0, 3, 1, 2).float().div(127.5).sub(1)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] B x C x H x W -> uint8 B x H x W x C."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
