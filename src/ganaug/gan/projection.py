"""DAPPER (paper 003): project real images into the generator's latent space, then perturb. The latent space is
the generator's (its Arch's ``latent_space``): a cGAN's z, or, as the paper does it, a style GAN's W (or W+) space
(ganaug.gan.style.WSpace), or a diffusion model's noise latent, reached by DDIM inversion instead
(ganaug.gan.diffusion.DiffusionSpace). ``dapper`` is the whole method, for any generator.

Projection: with the generator frozen and the label fixed, optimise a latent so that G(z, y)
reconstructs the image -- pixel loss plus a feature loss in the real-only classifier's space, and a
small pull towards the prior so z stays where the generator was trained. Perturbation: randomly
(z + sigma * noise; the paper's reported gains use this), or along directions stepped by the given
coefficients (the paper's -30..30 sweep, on the scale of a N(0, I) latent): unsupervised ones, the
top right-singular vectors of the generator's first layer (closed-form factorisation, "SeFa", Shen
& Zhou 2021 -- the principal directions of that layer's activations), or supervised ones as the
paper learns them, the weights of a linear predictor fitted on latents against an attribute -- here
a score we have: the scorer's logit for the class, or the discriminator's realism."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganaug.errors import GanaugError
from ganaug.gan.networks import Generator
from ganaug.gan.pixels import from_uint8
from ganaug.gan.pool import generate


def latent_directions(G: Generator, k: int) -> torch.Tensor:
    """k unit directions in z-space, most influential first (SVD of the first linear layer)."""
    _, _, vh = torch.linalg.svd(G.linear.weight.detach().float().cpu(), full_matrices=False)
    return vh[:k]


def project(
    G: Generator,
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    lr: float,
    feature_fn=None,
    feature_weight: float = 0.0,
    prior_weight: float = 1e-3,
    batch_size: int = 250,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Latents (float32 N x z_dim) reconstructing ``images`` (uint8 N x H x W x C) and the per-image
    reconstruction error (mean squared error on [0, 1] pixels)."""
    G.eval().requires_grad_(False)
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    latents, errors = [], []
    for start in tqdm(range(0, len(images), batch_size), desc="project", unit="batch"):
        x = from_uint8(images[start : start + batch_size]).to(device)
        y = torch.from_numpy(labels[start : start + batch_size]).to(device)
        # start from the best of a few random draws: projection is non-convex
        candidates = fresh_latents(G, 8 * len(x), gen).view(8, len(x), G.z_dim).to(device)
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


def optimised(space, images: np.ndarray, labels: np.ndarray, cfg, feature_fn, seed: int):
    """An Arch's ``project`` by optimisation (``project`` with the projection params)."""
    return project(space, images, labels, cfg.steps, cfg.lr, feature_fn, cfg.feature_weight, seed=seed)


def inverted(space, images: np.ndarray, labels=None, cfg=None, feature_fn=None, seed: int = 0, batch_size: int = 250):
    """An Arch's ``project`` for a diffusion model: its latents of ``images`` by DDIM inversion (no optimisation, so
    labels, params, features and seed go unused) and the error of decoding them back."""
    space.eval().requires_grad_(False)
    device = next(space.parameters()).device
    latents, errors = [], []
    for start in tqdm(range(0, len(images), batch_size), desc="invert", unit="batch"):
        x = from_uint8(images[start : start + batch_size]).to(device)
        z = space.invert(x)
        with torch.no_grad():
            errors.append((to_unit(space(z)) - to_unit(x)).pow(2).mean((1, 2, 3)).cpu())
        latents.append(z.cpu())
    return torch.cat(latents).numpy().astype(np.float32), torch.cat(errors).numpy()


def fresh_latents(G, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` latents from the space's prior (CPU): normal z for a cGAN, mapped and standardised w for a style GAN."""
    return G.sample_latents(n, generator)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


@torch.no_grad()
def predictor_directions(
    G: Generator, score_fn, num_classes: int, samples_per_class: int = 500, ridge: float = 1.0, seed: int = 0
) -> tuple[torch.Tensor, np.ndarray]:
    """One unit direction per class (num_classes x 1 x z_dim): the weights of a ridge regression from
    the latent to ``score_fn(images in [-1, 1], labels)`` over ``samples_per_class`` fresh latents of
    that class -- the direction along which the score rises fastest, to first order. Also returns
    each class's R^2, how much of the score the linear predictor explains."""
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    dirs, r2 = [], []
    for c in range(num_classes):
        z = fresh_latents(G, samples_per_class, gen)
        y = torch.full((samples_per_class,), c, dtype=torch.long)
        t = torch.cat(
            [
                score_fn(G(z[s : s + 250].to(device), y[s : s + 250].to(device)), y[s : s + 250].to(device))
                .float()
                .cpu()
                for s in range(0, samples_per_class, 250)
            ]
        ).double()
        zc, tc = (z - z.mean(0)).double(), t - t.mean()
        w = torch.linalg.solve(zc.T @ zc + ridge * torch.eye(G.z_dim, dtype=torch.float64), zc.T @ tc)
        r2.append(float(1 - ((tc - zc @ w) ** 2).sum() / (tc**2).sum().clamp_min(1e-12)))
        dirs.append((w / w.norm().clamp_min(1e-12)).float()[None])
    return torch.stack(dirs), np.asarray(r2)


def perturb(
    latents: np.ndarray,
    variants: int,
    method: str,
    sigma: float,
    directions: torch.Tensor | None,
    coefficients: list[float],
    seed: int,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``variants`` perturbed copies of each latent: (N * variants) x z_dim, and for each row the
    index of its source latent. 'random': z + sigma * noise. Otherwise z + c * d over (direction,
    coefficient) pairs taken in turn across all rows, directions changing fastest, so every
    direction and every coefficient is used (evenly) whatever ``variants`` is. ``directions``: K x
    z_dim shared by all latents, or C x K x z_dim per class (a latent of label y uses directions[y])."""
    n = len(latents)
    source = np.repeat(np.arange(n), variants)
    z = torch.from_numpy(latents).repeat_interleave(variants, dim=0)
    if method == "random":
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed))
        return (z + sigma * noise).numpy(), source
    per_class = directions.ndim == 3
    if per_class and labels is None:
        raise ValueError("per-class directions need the latents' labels")
    k = directions.shape[-2]
    pair = np.arange(n * variants) % (k * len(coefficients))
    which, coef = pair % k, torch.tensor(coefficients, dtype=z.dtype)[pair // k]
    d = (
        directions[torch.from_numpy(np.asarray(labels)[source]), torch.from_numpy(which)]
        if per_class
        else directions[torch.from_numpy(which)]
    )
    return (z + coef[:, None] * d).numpy(), source


def predictor_score(target: str, extractor, D):
    """images in [-1, 1], labels -> the score the predictor's direction should raise."""
    if target == "realism":
        return lambda x, y: D(x, y)
    return lambda x, y: extractor.features_and_logits(to_unit(x))[1].gather(1, y[:, None]).squeeze(1)


@dataclass
class Projected:
    space: str  # the latent space's name: z, w, w+, noise
    latents: np.ndarray  # N x z_dim, one per projected image
    errors: np.ndarray  # N reconstruction errors
    reconstructions: np.ndarray  # uint8 N x H x W x C
    variant_latents: np.ndarray  # M x z_dim, the pool's rows
    source: np.ndarray  # M: each row's projected image
    variant: np.ndarray  # M: 0 the reconstruction, 1.. the variants
    images: np.ndarray  # uint8 M x H x W x C
    fit_r2: np.ndarray | None  # method predictor: how much of the target its linear predictor explains, per class


def dapper(arch, G, D, extractor, images: np.ndarray, labels: np.ndarray, cfg, num_classes: int) -> Projected:
    """DAPPER with the projection params ``cfg``: ``images`` projected into ``arch``'s latent space, perturbed there
    (``cfg.variants`` each, plus the reconstruction with include_reconstruction) and decoded."""
    space, name = arch.latent_space(G, cfg)
    feature_fn = extractor.features if cfg.feature_weight > 0 else None
    z, errors = arch.project(space, images, labels, cfg, feature_fn, cfg.seed)
    dirs, fit_r2 = None, None
    if cfg.method == "directions":
        if arch.directions is None:
            raise GanaugError(
                "projection.method: directions (SeFa) needs the cGAN's first linear layer; use random or predictor"
            )
        dirs = arch.directions(space, cfg.directions)
    elif cfg.method == "predictor":
        score = predictor_score(cfg.predictor_target, extractor, D)
        dirs, fit_r2 = predictor_directions(space, score, num_classes, cfg.predictor_samples, seed=cfg.seed)
    z_var, source = perturb(z, cfg.variants, cfg.method, cfg.sigma, dirs, cfg.coefficients, cfg.seed, labels=labels)
    variant = np.tile(np.arange(1, cfg.variants + 1), len(z))
    if cfg.include_reconstruction:
        z_var, source = np.concatenate([z, z_var]), np.concatenate([np.arange(len(z)), source])
        variant = np.concatenate([np.zeros(len(z), np.int64), variant])
    decoded = generate(space, torch.from_numpy(z_var), torch.from_numpy(labels[source]))
    recon = generate(space, torch.from_numpy(z), torch.from_numpy(labels))
    return Projected(name, z, errors, recon, z_var, source, variant, decoded, fit_r2)
