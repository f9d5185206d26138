"""Generating a synthetic pool: a conditional generator's samples, an unconditional one's labelled by the scorer,
translations of real images. The files they write are ganaug.gan.pool_format's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ganaug.device import ShrinkOnOutOfMemory
from ganaug.gan.pixels import from_uint8, to_uint8
from ganaug.gan.pool_format import NpyWriter, Pool, open_pool, save_pool


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
    truncation: float | None = None,
    batch_size: int = 1000,
    extra_meta: dict | None = None,
) -> Pool:
    """``per_class`` images of each class, classes interleaved (label i % C), seeded."""
    n = per_class * num_classes
    out_dir.mkdir(parents=True, exist_ok=True)
    device = next(G.parameters()).device
    shape = (n, G.image_size, G.image_size, G.channels)
    images = NpyWriter(out_dir / "images.npy", np.uint8, shape)
    latents = NpyWriter(out_dir / "latents.npy", np.float32, (n, G.z_dim))
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
            images.write(np.concatenate(pieces))
            latents.write(z.numpy())
    images.close()
    latents.close()
    np.save(out_dir / "labels.npy", labels)
    meta = {
        "count": n,
        "per_class": per_class,
        "num_classes": num_classes,
        "shape": list(shape[1:]),
        "z_dim": G.z_dim,
        "seed": seed,
        "truncation": truncation,
        **(extra_meta or {}),
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return open_pool(out_dir)


def write_labelled_pool(
    out_dir: Path,
    G,
    label_fn,
    per_class: int,
    num_classes: int,
    seed: int,
    truncation: float | None = None,
    batch_size: int = 1000,
    extra_meta: dict | None = None,
    max_draws: int = 20,
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
    inputs: torch.Tensor,
    labels: np.ndarray,
    ids: np.ndarray,
    num_classes: int,
    include_own: bool = False,
    batch_size: int = 1000,
    extra_meta: dict | None = None,
) -> Pool:
    """A pool of translations (paper 000): every real training image into every other class (and its
    own with ``include_own``), with ``source_ids.npy`` and ``source_labels.npy`` beside it (one row per
    image). ``inputs`` holds what G takes for each real image: the image in [-1, 1] for a translation
    generator, or its projected latent for the cGAN (decoded under another label; latents.npy then
    holds each row's latent, otherwise it has zero columns). Deterministic: no noise is drawn."""
    source, target = translation_rows(labels, num_classes, include_own)
    n = len(source)
    takes_latents = G.takes == "latent"
    out_dir.mkdir(parents=True, exist_ok=True)
    device = next(G.parameters()).device
    shape = (n, G.image_size, G.image_size, G.channels)
    out = NpyWriter(out_dir / "images.npy", np.uint8, shape)
    latents = NpyWriter(out_dir / "latents.npy", np.float32, (n, inputs.shape[1] if takes_latents else 0))
    G.eval()
    with torch.inference_mode():
        for start in tqdm(range(0, n, batch_size), total=math.ceil(n / batch_size), desc="translate", unit="batch"):
            rows = slice(start, min(start + batch_size, n))
            x = inputs[torch.from_numpy(source[rows])]
            out.write(to_uint8(G(x.to(device), torch.from_numpy(target[rows]).to(device))))
            latents.write(x.numpy() if takes_latents else np.zeros((len(x), 0), np.float32))
    out.close()
    latents.close()
    np.save(out_dir / "labels.npy", target.astype(np.int64))
    np.save(out_dir / "source_ids.npy", np.asarray(ids)[source])
    np.save(out_dir / "source_labels.npy", labels[source].astype(np.int64))
    meta = {
        "count": n,
        "kind": "translation",
        "num_classes": num_classes,
        "shape": list(shape[1:]),
        "z_dim": inputs.shape[1] if takes_latents else 0,
        "sources": len(labels),
        "include_own": include_own,
        **(extra_meta or {}),
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return open_pool(out_dir)
