"""A generator's sample grid (reports/gan/samples.png): each ``*_grid(G, inputs, title, path)`` is an Arch's
``sample_grid`` (ganaug.gan.archs). Seeded by gan.seed, so a grid is the same for the same generator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ganaug.gan.pool import generate, translate_to_every_class
from ganaug.plots import image_grid, translation_grid

if TYPE_CHECKING:
    from ganaug.gan.interface import Inputs

PER_CLASS = 10  # samples per class in a grid


def latents(G, inputs: Inputs) -> torch.Tensor:
    n = PER_CLASS * len(inputs.classes)
    return torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(inputs.params.gan.seed))


def conditional_grid(G, inputs: Inputs, title: str, path: Path) -> None:
    """A conditional generator's samples, a row per class."""
    z = latents(G, inputs)
    labels = torch.arange(len(z)) % len(inputs.classes)
    image_grid(generate(G, z, labels), labels.numpy(), inputs.classes, path, title=title)


def scorer_labelled_grid(G, inputs: Inputs, title: str, path: Path) -> None:
    """An unconditional generator's samples, grouped by the class the scorer sees in them."""
    z = latents(G, inputs)
    samples = generate(G, z, torch.zeros(len(z), dtype=torch.long))
    seen = inputs.label(samples)
    order = np.argsort(seen, kind="stable")
    image_grid(samples[order], seen[order], inputs.classes, path, title=title)


def translation_grid_of(G, inputs: Inputs, title: str, path: Path) -> None:
    """A translation generator: one real image per class (left), translated into every class."""
    train = inputs.train
    show = np.array([np.flatnonzero(train.labels == c)[0] for c in np.unique(train.labels)])
    translation_grid(
        train.images[show],
        translate_to_every_class(G, train.images[show], len(inputs.classes)),
        [inputs.classes[y] for y in train.labels[show]],
        inputs.classes,
        path,
        title,
    )
