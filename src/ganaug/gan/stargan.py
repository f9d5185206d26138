"""Paper 000's translation GAN (StarGAN, Choi et al. 2018): a real image re-rendered under another
label, so every synthetic image inherits a real image's detail.

Generator: the image with the target label's one-hot maps concatenated as extra channels, an
encoder (7x7 conv, two stride-2 convs), residual blocks, a decoder (two transposed convs, 7x7 conv,
tanh); instance norm throughout, as in StarGAN. Discriminator: the cGAN's spectral-norm ResNet
trunk with two heads, an unconditional realism score (paper 000's "real or fake" confidence, what
cr-sam ranks by) and a domain classifier over the labels.

Losses (``d_loss`` / ``g_loss``, called by ganaug.gan.train's loop): our hinge adversarial loss with
DiffAugment on both sides (StarGAN used WGAN-GP), domain classification of real images (D) and of
translated ones (G), and the cycle reconstruction |G(G(x, t), s) - x|_1.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

from ganaug.gan.diffaugment import diff_augment
from ganaug.gan.networks import TrunkDiscriminator, _resized


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x):
        return x + self.body(x)


def _norm_act(channels: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(channels, affine=True), nn.ReLU()]


class TranslationGenerator(nn.Module):
    """G(image in [-1, 1], target label) -> image in [-1, 1] of the same size."""

    takes = "image"  # what it makes an image from besides the label: a real image (the cGAN takes latents)

    def __init__(
        self,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int,
        res_blocks: int,
        min_width: int,
    ):
        super().__init__()
        self.num_classes, self.channels, self.image_size = num_classes, channels, image_size
        self.work = max(8, 4 * round(image_size / 4))  # two stride-2 convs need a multiple of 4
        w1, w2, w3 = (max(width * m, min_width) for m in (1, 2, 4))
        self.net = nn.Sequential(
            nn.Conv2d(channels + num_classes, w1, 7, padding=3, bias=False),
            *_norm_act(w1),
            nn.Conv2d(w1, w2, 4, stride=2, padding=1, bias=False),
            *_norm_act(w2),
            nn.Conv2d(w2, w3, 4, stride=2, padding=1, bias=False),
            *_norm_act(w3),
            *(ResidualBlock(w3) for _ in range(res_blocks)),
            nn.ConvTranspose2d(w3, w2, 4, stride=2, padding=1, bias=False),
            *_norm_act(w2),
            nn.ConvTranspose2d(w2, w1, 4, stride=2, padding=1, bias=False),
            *_norm_act(w1),
            nn.Conv2d(w1, channels, 7, padding=3),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = _resized(x, self.work)
        maps = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return _resized(self.net(torch.cat([x, maps], dim=1)), self.image_size)


class TranslationDiscriminator(TrunkDiscriminator):
    """The shared trunk with two heads: ``forward`` is the unconditional realism score (the label is
    accepted and ignored, so code calls it like the cGAN's D), ``classify`` the domain logits."""

    def __init__(self, num_classes: int, channels: int, image_size: int, width: int, min_width: int):
        super().__init__(num_classes, channels, image_size, width, min_width)
        self.realism = spectral_norm(nn.Linear(self.features, 1))
        # no spectral norm on the class head: it must fit a cross-entropy, not bound a critic
        self.classifier = nn.Linear(self.features, num_classes)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(realism B, class logits B x classes)."""
        h = self.trunk(x)
        return self.realism(h).squeeze(1), self.classifier(h)

    def judge(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.heads(x)[0]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(x)[1]


def d_loss(gan, draws, cfg) -> tuple[torch.Tensor, dict]:
    """Hinge on realism (real vs translated) + lambda_cls x domain classification of real images."""
    real, y_real = draws.real()
    y_target = draws.labels()
    with torch.no_grad():
        fake = gan.G(real, y_target)
    src_real, cls_real = gan.D.heads(diff_augment(real, cfg.diffaugment))
    src_fake, _ = gan.D.heads(diff_augment(fake, cfg.diffaugment))
    cls = F.cross_entropy(cls_real, y_real)
    loss = F.relu(1 - src_real).mean() + F.relu(1 + src_fake).mean() + cfg.lambda_cls * cls
    return loss, {"d_real": src_real.mean().detach(), "d_fake": src_fake.mean().detach(), "d_cls": cls.detach()}


def g_loss(gan, draws, cfg) -> tuple[torch.Tensor, dict]:
    """Fool the realism head, be classified as the target label, and translate back to the source (cycle)."""
    real, y_real = draws.real()
    y_target = draws.labels()
    fake = gan.G(real, y_target)
    src_fake, cls_fake = gan.D.heads(diff_augment(fake, cfg.diffaugment))
    cls = F.cross_entropy(cls_fake, y_target)
    cycle = (gan.G(fake, y_real) - real).abs().mean()
    loss = -src_fake.mean() + cfg.lambda_cls * cls + cfg.lambda_rec * cycle
    return loss, {"g_cls": cls.detach(), "cycle": cycle.detach()}
