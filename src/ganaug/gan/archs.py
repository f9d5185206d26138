"""The generator architectures (``gan.arch``), one ``Arch`` entry each in ARCHS: the networks it builds from
the gan params, its losses, and which params only it reads. Adding an architecture is a module with its
networks and losses (as ganaug.gan.stargan) and an entry here; its name goes into ganaug.params.ARCH_NAMES,
which a test checks against ARCHS. Its generator declares ``takes`` (what it makes an image from besides a
label) and its discriminator ``judge`` (realism and, if it has one, a class head), which is all the pool,
the projection and the scores ask of a GAN.

  cgan     class-conditional GAN from noise: G(z, label) (BigGAN-style, ganaug.gan.networks, ganaug.gan.cgan)
  stargan  translation GAN, paper 000: G(real image, target label) (ganaug.gan.stargan)
  style    unconditional style-based GAN pre-trained on the unlabelled images, paper 003's: G(z) through w
           (ganaug.gan.style); its pool is labelled by the scorer, its projection is in W
  ddpm     unconditional diffusion model pre-trained on the unlabelled images (Diffusion Inversion): G(z) is DDIM
           from the noise latent z; projection inverts DDIM (ganaug.gan.diffusion)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ganaug.gan import cgan, diffusion, stargan
from ganaug.gan.networks import Discriminator, Generator
from ganaug.gan.stargan import TranslationDiscriminator, TranslationGenerator
from ganaug.gan.style import StyleGenerator, UnconditionalDiscriminator


def build_cgan(num_classes: int, channels: int, image_size: int, gan: dict):
    # GANs saved before min_width existed: the generator had a floor of 8 channels, the discriminator none
    return (
        Generator(num_classes, channels, image_size, gan["z_dim"], gan["g_width"], gan.get("min_width", 8)),
        Discriminator(num_classes, channels, image_size, gan["d_width"], gan.get("min_width", 1)),
    )


def build_stargan(num_classes: int, channels: int, image_size: int, gan: dict):
    return (
        TranslationGenerator(num_classes, channels, image_size, gan["g_width"], gan["res_blocks"], gan["min_width"]),
        TranslationDiscriminator(num_classes, channels, image_size, gan["d_width"], gan["min_width"]),
    )


def build_style(num_classes: int, channels: int, image_size: int, gan: dict):
    return (
        StyleGenerator(
            num_classes, channels, image_size, gan["z_dim"], gan["g_width"], gan["min_width"], gan["mapping_layers"]
        ),
        UnconditionalDiscriminator(num_classes, channels, image_size, gan["d_width"], gan["min_width"]),
    )


def build_ddpm(num_classes: int, channels: int, image_size: int, gan: dict):
    G = diffusion.DiffusionGenerator(num_classes, channels, image_size, gan["unet_width"], gan["sample_steps"])
    return G, diffusion.DenoisingJudge(num_classes, channels, image_size).bind(G)


@dataclass(frozen=True)
class Arch:
    name: str  # gan.arch
    build: Callable  # (num_classes, channels, image_size, gan params dict) -> (G, D)
    losses: tuple[Callable, Callable]  # D's and G's: (gan, draws, cfg) -> (loss, values to log)
    # gan params only this architecture reads: left out of what identifies another one's trained GAN (its
    # checkpoint fingerprint and models/gan/config.json), so a knob of one never invalidates the other
    only: tuple[str, ...] = ()
    # False: trained on the unlabelled images (data.unlabelled), labels ignored; its samples are labelled by the scorer
    conditional: bool = True
    adversarial: bool = True  # False: no discriminator step (its loss is None), only the generator's loss


ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch("cgan", build_cgan, (cgan.d_loss, cgan.g_loss), only=("z_dim",)),
        Arch(
            "stargan", build_stargan, (stargan.d_loss, stargan.g_loss), only=("res_blocks", "lambda_cls", "lambda_rec")
        ),
        # the cGAN's hinge + DiffAugment losses: the style pair ignores the labels they pass
        Arch("style", build_style, (cgan.d_loss, cgan.g_loss), only=("z_dim", "mapping_layers"), conditional=False),
        Arch(
            "ddpm",
            build_ddpm,
            (None, diffusion.g_loss),
            only=("unet_width", "sample_steps"),
            conditional=False,
            adversarial=False,
        ),
    )
}


def relevant_config(gan: dict) -> dict:
    """The gan params that define a GAN of ``gan['arch']``. A cGAN's omits ``arch`` itself: GANs saved
    before architectures existed are cGANs, and their configs stay byte-identical."""
    arch = gan.get("arch", "cgan")
    other = {k for a in ARCHS.values() if a.name != arch for k in a.only} - set(ARCHS[arch].only)
    return {k: v for k, v in gan.items() if k not in other and not (k == "arch" and arch == "cgan")}


def build_networks(num_classes: int, channels: int, image_size: int, gan: dict):
    """(G, D) of the architecture ``gan['arch']`` (default cgan), from a gan params dict."""
    return ARCHS[gan.get("arch", "cgan")].build(num_classes, channels, image_size, gan)
