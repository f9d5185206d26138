"""Training augmentation through albumentations, configured by ``train.augment``:
horizontal flip, pad-and-random-crop (the papers' crop style), rotation up to N degrees."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np


def build_augment(cfg, image_size: int, seed: int) -> A.Compose | None:
    """None when every augmentation is off, so the training loop skips the per-image pass."""
    ops = []
    if cfg.hflip:
        ops.append(A.HorizontalFlip(p=0.5))
    if cfg.crop_padding > 0:
        padded = image_size + 2 * cfg.crop_padding
        ops.append(A.PadIfNeeded(padded, padded, border_mode=cv2.BORDER_CONSTANT, fill=0))
        ops.append(A.RandomCrop(image_size, image_size))
    if cfg.rotate_degrees > 0:
        ops.append(A.Rotate(limit=cfg.rotate_degrees, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0))
    return A.Compose(ops, seed=seed) if ops else None


def augment_batch(pipeline: A.Compose | None, images: np.ndarray) -> np.ndarray:
    """uint8 B x H x W x C in, same shape out."""
    if pipeline is None:
        return images
    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = pipeline(image=img)["image"].reshape(img.shape)
    return out
