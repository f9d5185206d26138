"""Generating a synthetic pool: a conditional generator's samples, an unconditional one's labelled by the scorer,
translations of real images. Each ``*_pool(G, out_dir, inputs)`` is a generator's ``make_pool`` (ganaug.gan.archs);
the files they write are ganaug.gan.pool_format's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from ganaug.device import ShrinkOnOutOfMemory
from ganaug.errors import GanaugError
from ganaug.gan.pixels import from_uint8, to_uint8
from ganaug.gan.pool_format import Pool, PoolWriter, save_pool

if TYPE_CHECKING:
    from ganaug.gan.interface import Inputs


@torch.no_grad()
def generate(G, z: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """uint8 N x H x W x C images for ``labels`` from ``z``: latents, or source images in [-1, 1] for a translation
    generator (on G's device)."""
    G.eval()
    device = next(G.parameters()).device
    fit = ShrinkOnOutOfMemory("generate", "generate.batch_size")
    out = [
        piece
        for i in range(0, len(z), batch_size)
        for piece in fit.run(
            lambda a, b: to_uint8(G(z[i + a : i + b].to(device), labels[i + a : i + b].to(device))),  # noqa: B023
            min(batch_size, len(z) - i),
        )
    ]
    return np.concatenate(out) if out else np.empty((0, G.image_size, G.image_size, G.channels), np.uint8)


def per_class_count(inputs: Inputs) -> int:
    """generate.pool_multiple x the real training set, per class."""
    return math.ceil(inputs.params.generate.pool_multiple * len(inputs.train) / len(inputs.classes))


def sampled_pool(G, out_dir: Path, inputs: Inputs) -> tuple[Pool, str]:
    """A class-conditional generator's pool: samples from noise, balanced per class; with generate.translate, every
    real training image projected into the latent space (the DAPPER code) and decoded under the other labels."""
    cfg = inputs.params.generate
    if cfg.translate:
        from ganaug.gan.projection import optimised

        z, errors = optimised(
            G, inputs.train.images, inputs.train.labels, inputs.params.projection, inputs.features(), cfg.seed
        )
        return translations(
            G, out_dir, inputs, torch.from_numpy(z), {"projection_mse_mean": round(float(errors.mean()), 5)}
        )
    per_class = per_class_count(inputs)
    pool = write_pool(
        out_dir, G, per_class, len(inputs.classes), cfg.seed, cfg.truncation, cfg.batch_size, inputs.about
    )
    return pool, f"{per_class} per class"


def translation_pool(G, out_dir: Path, inputs: Inputs) -> tuple[Pool, str]:
    """A translation generator's pool: every real training image into every other class."""
    return translations(G, out_dir, inputs, from_uint8(inputs.train.images), {})


def translations(G, out_dir: Path, inputs: Inputs, sources: torch.Tensor, more: dict) -> tuple[Pool, str]:
    cfg, train = inputs.params.generate, inputs.train
    pool = write_translation_pool(
        out_dir,
        G,
        sources,
        train.labels,
        train.ids,
        len(inputs.classes),
        cfg.include_own,
        cfg.batch_size,
        {"arch": inputs.arch, **inputs.about, **more},
    )
    return pool, f"{len(train)} real images translated into {'every' if cfg.include_own else 'every other'} class"


def scorer_labelled_pool(G, out_dir: Path, inputs: Inputs) -> tuple[Pool, str]:
    """An unconditional generator's pool: its samples labelled by the scorer, balanced per class as far as the
    generator draws every class."""
    cfg = inputs.params.generate
    if cfg.translate:
        raise GanaugError(
            f"generate.translate: gan.arch {inputs.arch} is unconditional, it cannot decode under another label"
        )
    per_class = per_class_count(inputs)
    pool = write_labelled_pool(
        out_dir,
        G,
        inputs.label,
        per_class,
        len(inputs.classes),
        cfg.seed,
        cfg.truncation,
        cfg.batch_size,
        inputs.about,
        max_draws=cfg.max_draws,
    )
    short = f", short: {pool.meta['short']}" if "short" in pool.meta else ""
    return pool, f"up to {per_class} per class as the scorer labels them, {pool.meta['drawn']} drawn{short}"


def sample_latents(n: int, z_dim: int, truncation: float | None, generator: torch.Generator) -> torch.Tensor:
    z = torch.empty(n, z_dim)
    if truncation:  # the truncation trick: a normal cut at +-truncation (fidelity over variety)
        return torch.nn.init.trunc_normal_(z, a=-truncation, b=truncation, generator=generator)
    return z.normal_(generator=generator)


def write_pool(
    out_dir: Path,
    G,
    per_class: int,
    num_classes: int,
    seed: int,
    truncation: float | None,
    batch_size: int,
    extra_meta: dict | None = None,
) -> Pool:
    """``per_class`` images of each class, classes interleaved (label i % C), seeded."""
    n = per_class * num_classes
    device = next(G.parameters()).device
    writer = PoolWriter(out_dir, n, (G.image_size, G.image_size, G.channels), G.z_dim)
    labels = np.arange(n, dtype=np.int64) % num_classes
    gen = torch.Generator().manual_seed(seed)
    G.eval()
    fit = ShrinkOnOutOfMemory("generate", "generate.batch_size")
    with torch.inference_mode():
        for start in tqdm(range(0, n, batch_size), total=math.ceil(n / batch_size), desc="generate", unit="batch"):
            stop = min(start + batch_size, n)
            z = sample_latents(stop - start, G.z_dim, truncation, gen)
            y = torch.from_numpy(labels[start:stop])
            pieces = fit.run(lambda a, b: to_uint8(G(z[a:b].to(device), y[a:b].to(device))), len(z))  # noqa: B023
            writer.write(np.concatenate(pieces), labels[start:stop], z.numpy())
    meta = {
        "per_class": per_class,
        "num_classes": num_classes,
        "shape": [G.image_size, G.image_size, G.channels],
        "z_dim": G.z_dim,
        "seed": seed,
        "truncation": truncation,
        **(extra_meta or {}),
    }
    return writer.close(meta)


def write_labelled_pool(
    out_dir: Path,
    G,
    label_fn,
    per_class: int,
    num_classes: int,
    seed: int,
    truncation: float | None,
    batch_size: int,
    extra_meta: dict | None,
    max_draws: float,
) -> Pool:
    """An unconditional generator's pool: samples labelled by ``label_fn`` (uint8 images -> classes, the scorer),
    up to ``per_class`` of each class, drawn in seeded batches until every class is full or ``max_draws`` x the
    pool size have been drawn (a class the generator rarely draws then stays short, and the meta says so)."""
    n = per_class * num_classes
    gen = torch.Generator().manual_seed(seed)
    G.eval()
    device = next(G.parameters()).device
    fit = ShrinkOnOutOfMemory("generate", "generate.batch_size")
    kept_images, kept_labels, kept_latents = [], [], []
    have = np.zeros(num_classes, np.int64)
    drawn = 0
    with tqdm(total=n, desc="generate (labelled by the scorer)", unit="image") as bar:
        while have.sum() < n and drawn < max_draws * n:
            z = sample_latents(batch_size, G.z_dim, truncation, gen)
            with torch.inference_mode():
                images = np.concatenate(fit.run(lambda a, b: to_uint8(G(z[a:b].to(device))), len(z)))  # noqa: B023
            labels = np.asarray(label_fn(images), np.int64)
            drawn += len(z)
            for c in range(num_classes):
                rows = np.flatnonzero(labels == c)[: per_class - have[c]]
                kept_images.append(images[rows]), kept_labels.append(labels[rows]), kept_latents.append(z.numpy()[rows])
                have[c] += len(rows)
            bar.update(int(have.sum()) - bar.n)
    # classes interleaved, as a conditional pool's, so any prefix is balanced
    images, labels, latents = (np.concatenate(parts) for parts in (kept_images, kept_labels, kept_latents))
    order = np.lexsort((np.arange(len(labels)), labels))
    rank = np.empty(len(labels), np.int64)
    rank[order] = np.concatenate([np.arange(k) for k in have])
    order = np.lexsort((labels, rank))
    meta = {
        "kind": "labelled-by-scorer",
        "per_class": per_class,
        "num_classes": num_classes,
        "shape": list(images.shape[1:]),
        "z_dim": G.z_dim,
        "seed": seed,
        "truncation": truncation,
        "drawn": drawn,
        **(
            {"short": {str(c): int(per_class - k) for c, k in enumerate(have) if k < per_class}}
            if (have < per_class).any()
            else {}
        ),
        **(extra_meta or {}),
    }
    return save_pool(out_dir, images[order], labels[order], latents[order], meta)


@torch.inference_mode()
def translate_to_every_class(G, images: np.ndarray, num_classes: int) -> np.ndarray:
    """Each real image (uint8 N x H x W x C) translated into every class: uint8 N x classes x H x W x C."""
    G.eval()
    device = next(G.parameters()).device
    x = from_uint8(images).repeat_interleave(num_classes, dim=0).to(device)
    y = torch.arange(num_classes).repeat(len(images)).to(device)
    return to_uint8(G(x, y)).reshape(len(images), num_classes, *images.shape[1:])


def translation_rows(labels: np.ndarray, num_classes: int, include_own: bool) -> tuple[np.ndarray, np.ndarray]:
    """(source row, target label) of every translation: each real image into every other class
    (and its own with ``include_own``), source by source, targets in class order."""
    source = np.repeat(np.arange(len(labels)), num_classes)
    target = np.tile(np.arange(num_classes), len(labels))
    keep = np.ones(len(source), bool) if include_own else target != labels[source]
    return source[keep], target[keep]


def write_translation_pool(
    out_dir: Path,
    G,
    sources: torch.Tensor,
    labels: np.ndarray,
    ids: np.ndarray,
    num_classes: int,
    include_own: bool,
    batch_size: int,
    extra_meta: dict | None = None,
) -> Pool:
    """A pool of translations (paper 000): every real training image into every other class (and its
    own with ``include_own``), with ``source_ids.npy`` and ``source_labels.npy`` beside it (one row per
    image). ``sources`` holds what G takes for each real image: the image in [-1, 1] for a translation
    generator, or its projected latent for the cGAN (decoded under another label; latents.npy then
    holds each row's latent, otherwise it has zero columns). Deterministic: no noise is drawn."""
    source, target = translation_rows(labels, num_classes, include_own)
    n = len(source)
    z_dim = sources.shape[1] if sources.ndim == 2 else 0  # latents, not images
    ids = np.asarray(ids)
    device = next(G.parameters()).device
    writer = PoolWriter(
        out_dir,
        n,
        (G.image_size, G.image_size, G.channels),
        z_dim,
        {"source_ids": ids.dtype, "source_labels": np.int64},
    )
    G.eval()
    with torch.inference_mode():
        for start in tqdm(range(0, n, batch_size), total=math.ceil(n / batch_size), desc="translate", unit="batch"):
            rows = slice(start, min(start + batch_size, n))
            x = sources[torch.from_numpy(source[rows])]
            writer.write(
                to_uint8(G(x.to(device), torch.from_numpy(target[rows]).to(device))),
                target[rows],
                x.numpy() if z_dim else np.zeros((len(x), 0), np.float32),
                source_ids=ids[source[rows]],
                source_labels=labels[source[rows]],
            )
    meta = {
        "kind": "translation",
        "num_classes": num_classes,
        "shape": [G.image_size, G.image_size, G.channels],
        "z_dim": z_dim,
        "sources": len(labels),
        "include_own": include_own,
        **(extra_meta or {}),
    }
    return writer.close(meta)
