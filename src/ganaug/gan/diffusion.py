"""A small diffusion model (gan.arch: ddpm) for Diffusion Inversion (Zhou, Sahak & Ba 2023, "Training on Thin
Air"): pre-trained on the unlabelled images like the style GAN, each labelled image is inverted to its noise
latent, the latent is perturbed, and the perturbed latents are decoded into variants that keep the image's label.

- The network is diffusers' ``UNet2DModel`` (channels w, 2w, 2w with ``gan.unet_width`` = w; 32 gives 1.1M
  parameters, attention at the lowest resolution), trained as a DDPM (Ho et al. 2020): predict the noise added at
  a random one of 1,000 linear-schedule timesteps, mean squared error; the project's loop, EMA, checkpoints and
  best-by-FID (ganaug.gan.train) with no discriminator step.
- Sampling and inversion are deterministic DDIM (Song et al. 2021, eta 0) over ``gan.sample_steps`` steps,
  diffusers' DDIMScheduler and DDIMInverseScheduler: the latent of an image is where DDIM, run backwards, takes
  it; decoding runs forwards from there. ``G(z)`` decodes a latent, so the pool, the scores and the projection
  code written for a GAN work unchanged, and ``DiffusionSpace.invert`` stands in for projection's optimisation.
- There is no discriminator: ``DenoisingJudge`` scores an image's realism as minus the model's error at
  predicting the noise added to it at a fixed mid timestep (a one-term estimate of the model's likelihood), with
  fixed noise, so cr-sam and the RL sampler still have a realism to read.

From pretrained weights (``gan.pretrained``: a diffusers UNet2DModel folder or a DDPM/DDIM pipeline folder, local,
never downloaded): the UNet and the folder's noise schedule are loaded instead (``gan.unet_width`` unused), and G
works at the model's native size and channels, converting at its edges: images in are resized to the model's size
(gray repeated to RGB, RGB averaged to gray), images out are resized back to ``data.image_size`` and the data's
channels. Everything that reads G (pools, inversion, the judge, scoring) sees the data's images, as before.

Cost: on this project's 2-core CPU machines the 1.1M-parameter UNet trains at ~2.4 steps/s at batch 64, 32 px,
and sampling is ``sample_steps`` network passes per image (10,000 images x 50 DDIM steps took ~70 min), so the
CPU default samples and inverts with 20 steps.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganaug.errors import GanaugError
from ganaug.weights import local_folder

TIMESTEPS = 1000
SCHEDULE = {"num_train_timesteps": TIMESTEPS, "beta_schedule": "linear", "clip_sample": False}
JUDGE_LEVEL = 0.25  # the noise level the realism score measures the denoising error at: timestep 250 of 1,000
PRETRAINED = ("gan.pretrained", "a diffusers UNet2DModel or DDPM pipeline folder")  # what a bad folder is named by


def unet(channels: int, image_size: int, width: int):
    from diffusers import UNet2DModel

    if image_size % 4:
        raise GanaugError(
            f"data.image_size: gan.arch ddpm needs a multiple of 4 (its UNet halves twice), got {image_size}"
        )
    return UNet2DModel(
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=1,
        block_out_channels=(width, 2 * width, 2 * width),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=min(16, width),
    )


def pretrained(path: str | Path):
    """(the UNet2DModel, its noise schedule) of a local folder: a UNet saved with ``save_pretrained`` (config.json +
    weights), or a DDPM/DDIM pipeline (unet/ and scheduler/, or those files flat beside model_index.json). The
    schedule is the folder's scheduler config, else SCHEDULE. A missing or wrong folder is one line naming it."""
    from diffusers import UNet2DModel

    key, expected = PRETRAINED
    folder = local_folder(path, key, expected)
    nested = (folder / "unet").is_dir()
    unet_dir = local_folder(folder / "unet" if nested else folder, key, expected, "config.json")
    try:
        config = json.loads((unet_dir / "config.json").read_text())
    except ValueError as err:
        raise GanaugError(f"{key}: {unet_dir / 'config.json'}: not valid JSON ({err}; expected {expected})") from None
    kind = config.get("_class_name") or (config.get("architectures") or [None])[0] or config.get("model_type")
    if kind != "UNet2DModel":
        raise GanaugError(
            f"{key}: {unet_dir / 'config.json'}: describes {kind or 'no diffusers model'}, not a UNet2DModel "
            f"(expected {expected}, saved with save_pretrained)"
        )
    try:
        net = UNet2DModel.from_pretrained(unet_dir, local_files_only=True, low_cpu_mem_usage=False)  # no accelerate
    except Exception as err:  # missing or mismatched weights: diffusers raises several types, each many lines long
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GanaugError(f"{key}: {unet_dir}: not loadable as a UNet2DModel ({message})") from None
    scheduler_config = folder / "scheduler" / "scheduler_config.json" if nested else folder / "scheduler_config.json"
    if not scheduler_config.is_file():
        return net, SCHEDULE
    return net, {k: v for k, v in json.loads(scheduler_config.read_text()).items() if not k.startswith("_")}


def scheduler_of(cls, schedule: dict):
    """A diffusers scheduler of class ``cls`` with the keys of ``schedule`` it takes (a DDPM folder's config has
    keys a DDIM scheduler has not, e.g. variance_type)."""
    takes = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in schedule.items() if k in takes})


def ddim(inverse: bool, steps: int, schedule: dict):
    from diffusers import DDIMInverseScheduler, DDIMScheduler

    scheduler = scheduler_of(DDIMInverseScheduler if inverse else DDIMScheduler, schedule)
    scheduler.set_timesteps(steps)
    return scheduler


def native_size(net) -> int:
    size = net.config.sample_size
    if isinstance(size, int):
        return size
    if len(size) == 2 and size[0] == size[1]:
        return int(size[0])
    raise GanaugError(f"{PRETRAINED[0]}: a UNet of sample_size {list(size)}; expected a square one")


def convert(x: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """Images in [-1, 1] (B x C x H x W) at ``channels`` x ``size`` x ``size``: gray repeated to RGB or RGB
    averaged to gray (as ganaug.data.prepare does), then antialiased bilinear resizing; unchanged when they fit."""
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True) if channels == 1 else x.expand(-1, channels, -1, -1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


class DiffusionGenerator(nn.Module):
    """G(z) -> images in [-1, 1] of the data's channels and size: DDIM from the noise latent z (B x the UNet's
    C*H*W); labels ignored (unconditional). ``net`` is the UNet2DModel, ``schedule`` its DDPM noise schedule."""

    takes = "latent"
    conditional = False

    def __init__(self, num_classes: int, channels: int, image_size: int, net, schedule: dict, sample_steps: int):
        super().__init__()
        self.num_classes, self.channels, self.image_size = num_classes, channels, image_size
        self.unet, self.schedule, self.sample_steps = net, schedule, sample_steps
        if net.config.in_channels != net.config.out_channels:
            raise GanaugError(
                f"{PRETRAINED[0]}: a UNet of {net.config.in_channels} channels in and {net.config.out_channels} out "
                "(a learned variance?); expected one that predicts as many channels as it takes"
            )
        self.model_shape = (net.config.in_channels, native_size(net), native_size(net))
        if self.model_shape[0] != channels and {self.model_shape[0], channels} != {1, 3}:
            raise GanaugError(
                f"{PRETRAINED[0]}: a UNet of {self.model_shape[0]} channels cannot take {channels}-channel images "
                "(expected 1 or 3)"
            )
        self.z_dim = self.model_shape[0] * self.model_shape[1] * self.model_shape[2]
        from diffusers import DDPMScheduler

        alphas = scheduler_of(DDPMScheduler, schedule).alphas_cumprod.float()
        self.register_buffer("alphas_cumprod", alphas, persistent=False)
        self.timesteps = len(alphas)

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Data images -> the UNet's channels and size."""
        return convert(x, self.model_shape[0], self.model_shape[1])

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """The UNet's images -> the data's channels and size."""
        return convert(x, self.channels, self.image_size)

    def noisy(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the UNet predicts, by the schedule's prediction_type: the noise (DDPM's), v, or the image."""
        kind = self.schedule.get("prediction_type", "epsilon")
        if kind == "epsilon":
            return noise
        if kind == "sample":
            return x0
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        return a.sqrt() * noise - (1 - a).sqrt() * x0  # v_prediction

    def denoising_error(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per image: the mean squared error of the UNet's prediction at timesteps ``t``; ``x0`` are data images,
        ``noise`` is of the UNet's shape."""
        x0 = self.to_model(x0)
        predicted = self.unet(self.noisy(x0, noise, t), t).sample
        return (predicted - self.target(x0, noise, t)).pow(2).mean((1, 2, 3))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        x = latents.view(len(latents), *self.model_shape)
        scheduler = ddim(inverse=False, steps=self.sample_steps, schedule=self.schedule)
        for t in scheduler.timesteps:
            x = scheduler.step(self.unet(x, t).sample, t, x, eta=0.0).prev_sample
        return self.from_model(x.clamp(-1, 1)).clamp(-1, 1)

    def invert(self, images: torch.Tensor) -> torch.Tensor:
        """The noise latents (B x the UNet's C*H*W) DDIM decodes back into ``images`` (B x C x H x W in [-1, 1]),
        approximately."""
        x = self.to_model(images)
        scheduler = ddim(inverse=True, steps=self.sample_steps, schedule=self.schedule)
        for t in scheduler.timesteps:
            x = scheduler.step(self.unet(x, t).sample, t, x).prev_sample
        return x.flatten(1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(z)


class DiffusionSpace(nn.Module):
    """The model seen from its noise latents, for projection: ``invert`` instead of an optimisation, and latents
    decoded at unit root-mean-square (a DDIM latent is a unit normal draw), so that a random perturbation z + sigma
    x noise decodes like the variance-preserving mix sqrt(1 - s^2) z + s noise rather than a louder latent."""

    takes = "latent"

    def __init__(self, G: DiffusionGenerator):
        super().__init__()
        self.G = G.eval().requires_grad_(False)
        self.image_size, self.channels, self.num_classes, self.z_dim = G.image_size, G.channels, G.num_classes, G.z_dim

    def forward(self, u: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.G.decode(u * u.pow(2).mean(1, keepdim=True).clamp_min(1e-12).rsqrt())

    @torch.no_grad()
    def invert(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.G.invert(images)

    def sample_latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=generator)


def noise_space(G: DiffusionGenerator, cfg) -> tuple[DiffusionSpace, str]:
    """The diffusion model's latent space for DAPPER: its DDIM noise latents (no projection params to read)."""
    return DiffusionSpace(G), "noise"


class DenoisingJudge(nn.Module):
    """The discriminator's place for a diffusion model: realism = minus the denoising error at JUDGE_LEVEL with
    fixed noise (seeded the same for every batch, so a score depends on the image alone). No parameters of its own:
    it reads the generator it is bound to (``bind``); labels are ignored."""

    def __init__(self, num_classes: int, channels: int, image_size: int):
        super().__init__()
        self._generator: list[DiffusionGenerator] = []  # a list: not a submodule, its weights are G's to save

    def bind(self, G: DiffusionGenerator) -> DenoisingJudge:
        self._generator[:] = [G]
        return self

    @torch.no_grad()
    def judge(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        if not self._generator:
            raise RuntimeError("DenoisingJudge: bind it to its generator first")
        G = self._generator[0].to(x.device)  # scoring moves the judge, whose weights are the generator's
        noise = torch.randn(G.model_shape, generator=torch.Generator().manual_seed(0)).to(x.device)
        t = torch.full((len(x),), round(JUDGE_LEVEL * G.timesteps), dtype=torch.long, device=x.device)
        return -G.denoising_error(x, t, noise.expand(len(x), -1, -1, -1)), None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.judge(x, labels)[0]


def denoising_loss(G: DiffusionGenerator, images: torch.Tensor) -> torch.Tensor:
    """DDPM's simple loss on data images: the noise added at a uniformly drawn timestep, predicted (or v, or the
    image, by the schedule's prediction_type); mean squared error."""
    x0 = G.to_model(images)
    t = torch.randint(G.timesteps, (len(x0),), device=x0.device)
    noise = torch.randn_like(x0)
    return F.mse_loss(G.unet(G.noisy(x0, noise, t), t).sample, G.target(x0, noise, t))


def g_loss(gan, draws, cfg) -> tuple[torch.Tensor, dict]:
    return denoising_loss(gan.G, draws.real()[0]), {}
