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

Cost: on this project's 2-core CPU machines the 1.1M-parameter UNet trains at ~2.4 steps/s at batch 64, 32 px,
and sampling is ``sample_steps`` network passes per image (10,000 images x 50 DDIM steps took ~70 min), so the
CPU default samples and inverts with 20 steps.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganaug.errors import GanaugError

TIMESTEPS = 1000
SCHEDULE = {"num_train_timesteps": TIMESTEPS, "beta_schedule": "linear", "clip_sample": False}
JUDGE_TIMESTEP = 250  # the noise level the realism score measures the denoising error at


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


def ddim(inverse: bool, steps: int):
    from diffusers import DDIMInverseScheduler, DDIMScheduler

    scheduler = (DDIMInverseScheduler if inverse else DDIMScheduler)(**SCHEDULE)
    scheduler.set_timesteps(steps)
    return scheduler


class DiffusionGenerator(nn.Module):
    """G(z) -> images in [-1, 1]: DDIM from the noise latent z (B x C*H*W); labels ignored (unconditional)."""

    takes = "latent"
    conditional = False

    def __init__(self, num_classes: int, channels: int, image_size: int, width: int, sample_steps: int):
        super().__init__()
        self.num_classes, self.channels, self.image_size = num_classes, channels, image_size
        self.z_dim, self.sample_steps = channels * image_size**2, sample_steps
        self.unet = unet(channels, image_size, width)
        from diffusers import DDPMScheduler

        self.register_buffer("alphas_cumprod", DDPMScheduler(**SCHEDULE).alphas_cumprod.float(), persistent=False)

    def noisy(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def denoising_error(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per image: the mean squared error of the predicted noise at timesteps ``t``."""
        predicted = self.unet(self.noisy(x0, noise, t), t).sample
        return (predicted - noise).pow(2).mean((1, 2, 3))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        x = latents.view(len(latents), self.channels, self.image_size, self.image_size)
        scheduler = ddim(inverse=False, steps=self.sample_steps)
        for t in scheduler.timesteps:
            x = scheduler.step(self.unet(x, t).sample, t, x, eta=0.0).prev_sample
        return x.clamp(-1, 1)

    def invert(self, images: torch.Tensor) -> torch.Tensor:
        """The noise latents (B x C*H*W) DDIM decodes back into ``images`` (B x C x H x W in [-1, 1]), approximately."""
        x = images
        scheduler = ddim(inverse=True, steps=self.sample_steps)
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
    """The discriminator's place for a diffusion model: realism = minus the denoising error at JUDGE_TIMESTEP with
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
        noise = torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(0)).to(x.device).expand_as(x)
        t = torch.full((len(x),), JUDGE_TIMESTEP, dtype=torch.long, device=x.device)
        return -G.denoising_error(x, t, noise), None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.judge(x, labels)[0]


def g_loss(gan, draws, cfg) -> tuple[torch.Tensor, dict]:
    """DDPM's simple loss: the noise added at a uniformly drawn timestep, predicted; mean squared error."""
    x0, _ = draws.real()
    t = torch.randint(TIMESTEPS, (len(x0),), device=x0.device)
    noise = torch.randn_like(x0)
    return F.mse_loss(gan.G.unet(gan.G.noisy(x0, noise, t), t).sample, noise), {}
