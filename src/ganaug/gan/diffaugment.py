"""DiffAugment (Zhao et al., NeurIPS 2020): differentiable augmentations applied to real and fake
images in both D and G steps, so D cannot memorise a small training set.
Policy: 'color' (brightness, saturation, contrast; brightness/contrast only for 1 channel),
'translation' (shift by up to 1/8 of the size, zero-padded), 'cutout' (a zeroed square of half the size).
Follows the authors' reference implementation (BSD-2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def brightness(x):
    return x + (torch.rand(x.size(0), 1, 1, 1, device=x.device) - 0.5)


def saturation(x):
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, device=x.device) * 2) + mean


def contrast(x):
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(x.size(0), 1, 1, 1, device=x.device) + 0.5) + mean


def translation(x, ratio: float = 0.125):
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, size=(b, 1, 1), device=x.device)
    ty = torch.randint(-sw, sw + 1, size=(b, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return padded.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)


def cutout(x, ratio: float = 0.5):
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), size=(b, 1, 1), device=x.device)
    oy = torch.randint(0, w + (1 - cw % 2), size=(b, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(ch, device=x.device),
        torch.arange(cw, device=x.device),
        indexing="ij",
    )
    gx = torch.clamp(gx + ox - ch // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + oy - cw // 2, min=0, max=w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """Apply the comma-separated ``policy`` (e.g. 'color,translation,cutout'); '' is identity."""
    for part in filter(None, (p.strip() for p in policy.split(","))):
        if part == "color":
            ops = [brightness, contrast] if x.size(1) == 1 else [brightness, saturation, contrast]
        elif part == "translation":
            ops = [translation]
        elif part == "cutout":
            ops = [cutout]
        else:
            raise ValueError(f"gan.diffaugment: unknown policy part '{part}' (expected color, translation, cutout)")
        for op in ops:
            x = op(x)
    return x.contiguous()
