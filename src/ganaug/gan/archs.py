"""The generator architectures (``gan.arch``): which networks each builds from the gan params, and
which params only it reads. Its losses sit beside its networks (ganaug.gan.train for the cGAN,
ganaug.gan.stargan for the translation GAN); adding an architecture is a module and an entry here
and in ganaug.gan.train.LOSSES.

  cgan     class-conditional GAN from noise: G(z, label) (BigGAN-style, ganaug.gan.networks)
  stargan  translation GAN, paper 000: G(real image, target label) (ganaug.gan.stargan)
"""

from __future__ import annotations

from ganaug.gan.networks import Discriminator, Generator
from ganaug.gan.stargan import TranslationDiscriminator, TranslationGenerator

ARCHS = ("cgan", "stargan")
# gan params only one architecture reads; the others' are left out of what identifies a trained GAN
# (its checkpoint fingerprint and models/gan/config.json), so a knob of one never invalidates the other
ONLY = {"cgan": ("z_dim",), "stargan": ("res_blocks", "lambda_cls", "lambda_rec")}


def relevant_config(gan: dict) -> dict:
    """The gan params that define a GAN of ``gan['arch']``. A cGAN's omits ``arch`` itself: GANs saved
    before architectures existed are cGANs, and their configs stay byte-identical."""
    arch = gan.get("arch", "cgan")
    other = {k for a, keys in ONLY.items() if a != arch for k in keys}
    return {k: v for k, v in gan.items() if k not in other and not (k == "arch" and arch == "cgan")}


def build_networks(num_classes: int, channels: int, image_size: int, gan: dict):
    """(G, D) of the architecture ``gan['arch']`` (default cgan), from a gan params dict."""
    if gan.get("arch", "cgan") == "stargan":
        return (
            TranslationGenerator(
                num_classes, channels, image_size, gan["g_width"], gan["res_blocks"], gan["min_width"]
            ),
            TranslationDiscriminator(num_classes, channels, image_size, gan["d_width"], gan["min_width"]),
        )
    # GANs saved before min_width existed: the generator had a floor of 8 channels, the discriminator none
    return (
        Generator(num_classes, channels, image_size, gan["z_dim"], gan["g_width"], gan.get("min_width", 8)),
        Discriminator(num_classes, channels, image_size, gan["d_width"], gan.get("min_width", 1)),
    )
