"""The class-conditional GAN's losses (gan.arch cgan; its networks: ganaug.gan.networks): the hinge loss
with DiffAugment on real and fake, and the optional LeCam regulariser. ``draws`` hands out this step's
real images, labels and latents (ganaug.gan.train.Draws). The values a loss returns to log stay tensors on the
device: the loop reads them once per logging interval, not once per step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganaug.gan.diffaugment import diff_augment


def hinge_d_loss(gan, real, y_real, fake, y_fake, cfg) -> tuple[torch.Tensor, dict]:
    d_real = gan.D(diff_augment(real, cfg.diffaugment), y_real)
    d_fake = gan.D(diff_augment(fake, cfg.diffaugment), y_fake)
    loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    if cfg.lecam > 0:  # LeCam (Tseng et al. 2021): keep D's outputs near their running means
        gan.lecam_ema.mul_(0.99).add_(0.01 * torch.stack([d_real.mean(), d_fake.mean()]).detach())
        ema_real, ema_fake = gan.lecam_ema.clone()
        loss = loss + cfg.lecam * (F.relu(d_real - ema_fake).pow(2).mean() + F.relu(ema_real - d_fake).pow(2).mean())
    return loss, {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}


def z_space(G, cfg) -> tuple:
    """The cGAN's latent space for DAPPER: its own z (G decodes latents and labels as it is)."""
    return G, "z"


def d_loss(gan, draws, cfg) -> tuple[torch.Tensor, dict]:
    real, y_real = draws.real()
    y_fake = draws.labels()
    with torch.no_grad():
        fake = gan.G(draws.z(), y_fake)
    return hinge_d_loss(gan, real, y_real, fake, y_fake, cfg)


def g_loss(gan, draws, cfg) -> tuple[torch.Tensor, dict]:
    y_fake = draws.labels()
    fake = gan.G(draws.z(), y_fake)
    return -gan.D(diff_augment(fake, cfg.diffaugment), y_fake).mean(), {}
