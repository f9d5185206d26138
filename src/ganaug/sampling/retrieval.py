"""Retrieval, the baseline synthetic images have to beat (Geng et al. 2024, "The Unmet Promise of Synthetic Training
Images"): instead of generating images of a class, take the real unlabelled images (data.unlabelled) that look most
like the class's training images. Each unlabelled image gets the class of its nearest training image by cosine
similarity, in CLIP's image features when clip.path is given (as the paper retrieves with CLIP) or else in the
scorer's penultimate features, and that similarity as its score; the ``retrieval`` sampler keeps the most similar
images of each class, as many as the mode asks for, at the same step budget as every other row."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

CHUNK = 4096  # unlabelled images compared at once: a CHUNK x training-set similarity matrix in memory


def nearest(
    query: np.ndarray, reference: np.ndarray, reference_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``query``, the label of its most cosine-similar row of ``reference``, that similarity, and
    that row's index (ties to the lower index). Features need not be normalised."""
    q, r = _unit(query), _unit(reference)
    index = np.zeros(len(q), np.int64)
    similarity = np.zeros(len(q), np.float32)
    for start in range(0, len(q), CHUNK):
        sims = q[start : start + CHUNK] @ r.T
        index[start : start + CHUNK] = sims.argmax(1)
        similarity[start : start + CHUNK] = sims.max(1)
    return np.asarray(reference_labels, np.int64)[index], similarity, index


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def scorer_features(images: np.ndarray, extractor, device, batch_size: int, desc: str = "features") -> np.ndarray:
    """The scorer's penultimate features (float32) of uint8 N x H x W x C images."""
    import torch

    extractor.to(device).eval()
    out = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch"):
            raw = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(device)
            out.append(extractor.features(raw.permute(0, 3, 1, 2)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, extractor.num_features), np.float32)
