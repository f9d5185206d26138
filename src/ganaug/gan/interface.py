"""What a generator is to ganaug (an ``Arch``, one entry of ganaug.gan.archs.ARCHS), and what its stage functions
read (``Inputs``). The stages train_gan, generate and projection call these and never ask which generator it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Arch:
    name: str  # gan.arch
    build: Callable  # (num_classes, channels, image_size, gan params dict) -> (G, D)
    losses: tuple[
        Callable | None, Callable
    ]  # D's and G's, one train step's: (gan, draws, cfg) -> (loss, values to log)
    make_pool: Callable  # (G, out_dir, Inputs) -> (Pool, how it was made, in words): stage generate
    sample_grid: Callable  # (G, Inputs, title, png path): stage train_gan's reports/gan/samples.png
    # (G, projection params) -> (the space DAPPER projects into and perturbs in, decoded like G; its name);
    # None: no latent space (a translation generator), so no projection
    latent_space: Callable | None = None
    # (space, images, labels, projection params, feature_fn or None, seed) -> (latents, reconstruction errors)
    project: Callable | None = None
    directions: Callable | None = (
        None  # (space, k) -> k unsupervised directions (SeFa); None: method directions refused
    )
    # gan params only this architecture reads: left out of what identifies another one's trained GAN (its
    # checkpoint fingerprint and models/gan/config.json), so a knob of one never invalidates the other
    only: tuple[str, ...] = ()
    # False: trained on the unlabelled images (data.unlabelled), labels ignored; its samples are labelled by the scorer
    conditional: bool = True
    adversarial: bool = True  # False: no discriminator step (its loss is None), only the generator's loss
    # True: ``build`` starts from the local weights folder gan.pretrained when one is given (and ``only`` lists
    # "pretrained"). Then gan.steps 0 uses the networks as loaded, and models/gan saves only a reference to that
    # folder and its md5 (ganaug.gan.export), never a copy of its weights
    # (G, Inputs, labels, seed) -> uint8 images of those labels: how train_gan's FID draws a generator that is not
    # run as G(z, labels) (sd); None: from seeded latents, as the pool's samples are
    sample: Callable | None = None
    loads_weights: bool = False
    trainable: bool = True  # False: never trained here (its losses are never called); gan.steps must be 0


@dataclass
class Inputs:
    """What a generator's make_pool and sample_grid read besides the generator: the params, the classes, the real
    training split, the device, and the scorer (loaded on first use) with its class for each uint8 image."""

    params: object  # ganaug.params.Params
    arch: str
    classes: list[str]
    train: object  # ganaug.data.store.Split
    device: object  # torch.device
    scorer: Callable[[], object]  # -> the scorer's feature extractor
    label: Callable[[np.ndarray], np.ndarray]  # uint8 N x H x W x C -> the scorer's class of each
    about: dict = field(default_factory=dict)  # what a pool's meta records of the generator

    def features(self):
        """The feature loss's function for projection (None when projection.feature_weight is 0)."""
        return self.scorer().to(self.device).features if self.params.projection.feature_weight > 0 else None
