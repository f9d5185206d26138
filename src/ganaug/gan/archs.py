"""The generators (``gan.arch``), one ``Arch`` entry each in ARCHS (ganaug.gan.interface says what an entry holds):
the networks it builds from the gan params, its losses, how it makes a pool and a sample grid, and its latent
space for DAPPER. Adding a generator is a module with its networks and losses (as ganaug.gan.stargan) and an
entry here (docs/development.md walks through one).

  cgan     class-conditional GAN from noise: G(z, label) (BigGAN-style, ganaug.gan.networks, ganaug.gan.cgan)
  stargan  translation GAN, paper 000: G(real image, target label) (ganaug.gan.stargan)
  style    unconditional style-based GAN pre-trained on the unlabelled images, paper 003's: G(z) through w
           (ganaug.gan.style); its pool is labelled by the scorer, its projection is in W
  ddpm     unconditional diffusion model pre-trained on the unlabelled images (Diffusion Inversion): G(z) is DDIM
           from the noise latent z; projection inverts DDIM (ganaug.gan.diffusion). With gan.pretrained, a
           diffusers UNet loaded from that folder instead, used as it is (gan.steps 0) or fine-tuned
  sd       a pretrained Stable Diffusion pipeline folder (gan.pretrained), used as it is: img2img from each real
           training image with its class prompt ("real guidance"), or txt2img (ganaug.gan.latent_diffusion)
"""

from __future__ import annotations

from ganaug import paths
from ganaug.errors import GanaugError
from ganaug.gan import cgan, diffusion, grids, latent_diffusion, pool, stargan, style
from ganaug.gan.interface import Arch
from ganaug.gan.networks import Discriminator, Generator
from ganaug.gan.projection import inverted, latent_directions, optimised
from ganaug.registry import lookup
from ganaug.weights import given, weights_md5


def build_cgan(num_classes: int, channels: int, image_size: int, gan: dict):
    return (
        Generator(num_classes, channels, image_size, gan["z_dim"], gan["g_width"], gan["min_width"]),
        Discriminator(num_classes, channels, image_size, gan["d_width"], gan["min_width"]),
    )


def build_stargan(num_classes: int, channels: int, image_size: int, gan: dict):
    return (
        stargan.TranslationGenerator(
            num_classes, channels, image_size, gan["g_width"], gan["res_blocks"], gan["min_width"]
        ),
        stargan.TranslationDiscriminator(num_classes, channels, image_size, gan["d_width"], gan["min_width"]),
    )


def build_style(num_classes: int, channels: int, image_size: int, gan: dict):
    return (
        style.StyleGenerator(
            num_classes, channels, image_size, gan["z_dim"], gan["g_width"], gan["min_width"], gan["mapping_layers"]
        ),
        style.UnconditionalDiscriminator(num_classes, channels, image_size, gan["d_width"], gan["min_width"]),
    )


def build_ddpm(num_classes: int, channels: int, image_size: int, gan: dict):
    if given(gan["pretrained"]):  # its UNet and noise schedule from the folder; gan.unet_width unused
        net, schedule = diffusion.pretrained(gan["pretrained"])
    else:
        net, schedule = diffusion.unet(channels, image_size, gan["unet_width"]), diffusion.SCHEDULE
    G = diffusion.DiffusionGenerator(num_classes, channels, image_size, net, schedule, gan["sample_steps"])
    return G, diffusion.DenoisingJudge(num_classes, channels, image_size).bind(G)


ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch(
            "cgan",
            build_cgan,
            (cgan.d_loss, cgan.g_loss),
            make_pool=pool.sampled_pool,
            sample_grid=grids.conditional_grid,
            latent_space=cgan.z_space,
            project=optimised,
            directions=latent_directions,
            only=("z_dim",),
        ),
        Arch(
            "stargan",
            build_stargan,
            (stargan.d_loss, stargan.g_loss),
            make_pool=pool.translation_pool,
            sample_grid=grids.translation_grid_of,
            only=("res_blocks", "lambda_cls", "lambda_rec"),
        ),
        Arch(
            "style",
            build_style,
            (cgan.d_loss, cgan.g_loss),  # the cGAN's hinge + DiffAugment losses: the style pair ignores the labels
            make_pool=pool.scorer_labelled_pool,
            sample_grid=grids.scorer_labelled_grid,
            latent_space=style.w_space,
            project=optimised,
            only=("z_dim", "mapping_layers"),
            conditional=False,
        ),
        Arch(
            "ddpm",
            build_ddpm,
            (None, diffusion.g_loss),
            make_pool=pool.scorer_labelled_pool,
            sample_grid=grids.scorer_labelled_grid,
            latent_space=diffusion.noise_space,
            project=inverted,
            only=("unet_width", "sample_steps", "pretrained"),
            conditional=False,
            adversarial=False,
            loads_weights=True,
        ),
        Arch(
            "sd",
            latent_diffusion.build,
            (None, latent_diffusion.no_training),
            make_pool=latent_diffusion.make_pool,
            sample_grid=latent_diffusion.sample_grid,
            sample=latent_diffusion.evaluation_images,
            only=("pretrained", "sd_mode", "strength", "guidance_scale", "sample_steps"),
            adversarial=False,
            loads_weights=True,
            trainable=False,
        ),
    )
}


def arch_of(gan: dict) -> Arch:
    """The Arch a gan params dict (or a saved GAN's config) names; an unknown name is refused in one line."""
    return lookup(ARCHS, gan["arch"], "gan.arch", "generator")


def relevant_config(gan: dict) -> dict:
    """The gan params that define a GAN of ``gan['arch']``: without the keys only other architectures read."""
    other = {k for a in ARCHS.values() if a.name != gan["arch"] for k in a.only} - set(arch_of(gan).only)
    return {k: v for k, v in gan.items() if k not in other}


def from_weights(gan: dict) -> bool:
    """Whether the generator starts from the weights folder gan.pretrained."""
    return arch_of(gan).loads_weights and given(gan["pretrained"])


def weights_record(gan: dict) -> dict:
    """What a saved generator and its checkpoint fingerprint record of its weights folder: the md5 DVC gives it
    (so changed weights never resume or load a stale generator); nothing for a generator trained from scratch."""
    return {"weights_md5": weights_md5(gan["pretrained"])} if from_weights(gan) else {}


def check_weights(gan: dict) -> None:
    """gan.pretrained and gan.steps as the architecture allows them, or one line saying what to set."""
    arch = arch_of(gan)
    if given(gan["pretrained"]) and not arch.loads_weights:
        takes = ", ".join(a.name for a in ARCHS.values() if a.loads_weights)
        raise GanaugError(
            f"gan.pretrained: gan.arch {arch.name} does not start from weights (those that do: {takes}); "
            f"set gan.pretrained: {paths.NO_WEIGHTS} (got {gan['pretrained']})"
        )
    if gan["steps"] == 0 and not from_weights(gan):
        raise GanaugError(
            f"gan.steps: 0 uses a generator as it is, so it needs weights to start from: set gan.pretrained to a "
            f"weights folder for a gan.arch that loads one, or gan.steps > 0 (got gan.arch {arch.name}, "
            f"gan.pretrained {gan['pretrained']})"
        )
    if gan["steps"] > 0 and not arch.trainable:
        raise GanaugError(f"gan.steps: gan.arch {arch.name} is used as it is, never trained here; set gan.steps: 0")


def build_networks(num_classes: int, channels: int, image_size: int, gan: dict):
    """(G, D) of the architecture ``gan['arch']``, from a gan params dict."""
    return arch_of(gan).build(num_classes, channels, image_size, gan)
