"""DAPPER (paper 003): project real images into the generator's latent space, then perturb.

Projection: with the generator frozen and the label fixed, optimise a latent so that G(z, y)
reconstructs the image -- pixel loss plus a feature loss in the real-only classifier's space, and a
small pull towards the prior so z stays where the generator was trained. Perturbation: randomly
(z + sigma * noise), or along directions found without labels: the top right-singular vectors of
the generator's first layer (closed-form factorisation, "SeFa", Shen & Zhou 2021 -- the principal
directions of that layer's activations), stepped by the given coefficients (the paper's -30..30
sweep, on the scale of a N(0, I) latent)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganaug.gan.networks import Generator


def latent_directions(G: Generator, k: int) -> torch.Tensor:
    """k unit directions in z-space, most influential first (SVD of the first linear layer)."""
    _, _, vh = torch.linalg.svd(G.linear.weight.detach().float().cpu(), full_matrices=False)
    return vh[:k]


def project(G: Generator, images: np.ndarray, labels: np.ndarray, steps: int = 200, lr: float = 0.05,
            feature_fn=None, feature_weight: float = 0.1, prior_weight: float = 1e-3, batch_size: int = 250,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Latents (float32 N x z_dim) reconstructing ``images`` (uint8 N x H x W x C) and the per-image
    reconstruction error (mean squared error on [0, 1] pixels)."""
    G.eval().requires_grad_(False)
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    latents, errors = [], []
    for start in tqdm(range(0, len(images), batch_size), desc="project", unit="batch"):
        x = torch.from_numpy(images[start : start + batch_size]).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
        y = torch.from_numpy(labels[start : start + batch_size]).to(device)
        # start from the best of a few random draws: projection is non-convex
        candidates = torch.randn(8, len(x), G.z_dim, generator=gen).to(device)
        with torch.no_grad():
            err = torch.stack([(G(c, y) - x).pow(2).mean((1, 2, 3)) for c in candidates])
        z = candidates[err.argmin(0), torch.arange(len(x), device=device)].clone().requires_grad_(True)
        target_feats = feature_fn(to_unit(x)) if feature_fn is not None else None
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            out = G(z, y)
            loss = F.mse_loss(out, x)
            if feature_fn is not None:
                loss = loss + feature_weight * F.mse_loss(feature_fn(to_unit(out)), target_feats)
            loss = loss + prior_weight * z.pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            errors.append((to_unit(G(z, y)) - to_unit(x)).pow(2).mean((1, 2, 3)).cpu())
        latents.append(z.detach().cpu())
    return torch.cat(latents).numpy().astype(np.float32), torch.cat(errors).numpy()


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


def perturb(latents: np.ndarray, variants: int, method: str, sigma: float, directions: torch.Tensor | None,
            coefficients: list[float], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``variants`` perturbed copies of each latent: (N * variants) x z_dim, and for each row the
    index of its source latent. 'random': z + sigma * noise; 'directions': z + c * d, cycling
    through (direction, coefficient) pairs."""
    n = len(latents)
    source = np.repeat(np.arange(n), variants)
    z = torch.from_numpy(latents).repeat_interleave(variants, dim=0)
    if method == "random":
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed))
        return (z + sigma * noise).numpy(), source
    pairs = [(d, c) for d in range(len(directions)) for c in coefficients]
    steps = torch.stack([coefficients_dir * directions[d] for d, coefficients_dir in (pairs[j % len(pairs)] for j in range(variants))])
    return (z + steps.repeat(n, 1)).numpy(), source
