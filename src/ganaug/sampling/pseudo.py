"""Pseudo-labelling, the fair baseline for unlabelled images (data.unlabelled): the scorer (the real-only
classifier) labels each unlabelled image with its prediction, and the images become a pool like the GAN's.
The ``pseudo-label`` sampler then keeps the most confident ones of each class (a per-class confidence
threshold), as many as the mode asks for, so it trains at the same step budget as every synthetic row and a
gain from a generator that learned from the same unlabelled images can be told from a gain from seeing more
images (Lee 2013, "Pseudo-Label"; the baseline Diffusion Inversion and DAPPER are to be measured against)."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm


def predict(images: np.ndarray, extractor, device, batch_size: int, progress: bool = True) -> np.ndarray:
    """The scorer's predicted class of each uint8 N x H x W x C image."""
    import torch

    extractor.to(device).eval()
    out = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(images), batch_size), desc="pseudo-label", unit="batch", disable=not progress):
            raw = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(device)
            out.append(extractor.features_and_logits(raw.permute(0, 3, 1, 2))[1].argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)
