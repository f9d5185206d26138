"""Per-channel normalisation fitted on a classifier's real training images, stored with its weights:
uint8 images in, the float tensor the network reads out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganaug.device import memory_format


@dataclass
class Normalizer:
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, images: np.ndarray) -> Normalizer:
        x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
        return cls(x.mean(0).tolist(), np.maximum(x.std(0), 1e-3).tolist())

    def to_input(self, images: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
        """uint8 B x H x W x C (numpy, or a tensor: pinned, from the loader) -> normalised float B x C x H x W
        on ``device``; from pinned memory the copy is asynchronous."""
        x = torch.as_tensor(images).to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, -1, 1, 1)
        return ((x - mean) / std).contiguous(memory_format=memory_format(device))
