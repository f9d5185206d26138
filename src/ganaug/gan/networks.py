"""A small BigGAN-style pair for 16-256 px images.

Generator: class-conditional BatchNorm (a class embedding gives each BN its gain and bias),
ResNet up-blocks. Discriminator: spectral-norm ResNet down-blocks, global sum pooling, and a
projection class term <embed(y), h> (Miyato & Koyama 2018). Depth follows the image size:
the networks work at the nearest ``native = base * 2**blocks`` with base in 4..7 (32 -> 4x4 and
3 blocks, 28 -> 7x7 and 2 blocks, 100 -> 96); at any other size the generator resizes its output
to the image size and the discriminator resizes its input to native, so pools, scores and every
downstream stage see image_size x image_size. No block has fewer than ``min_width`` channels:
halving per block would leave 12 at 64 px and 6 at 128 px, too few to draw RGB detail.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

from ganaug.errors import GanaugError


def native_size(image_size: int) -> int:
    """The supported size (base * 2**k, base in 4..7, k >= 1) nearest ``image_size`` (ties: the larger)."""
    if image_size < 8:
        raise GanaugError(f"data.image_size: the GAN needs at least 8 px, got {image_size}")
    supported = {base * 2**k for base in range(4, 8) for k in range(1, 8)}
    return min(supported, key=lambda s: (abs(s - image_size), -s))


def layout(image_size: int) -> tuple[int, int]:
    """(base resolution, number of 2x blocks) of the native size the networks use for ``image_size``."""
    native = native_size(image_size)
    blocks = max(1, int(math.floor(math.log2(native / 4))))
    return native // 2**blocks, blocks


def _resized(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class ConditionalBatchNorm2d(nn.Module):
    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.embed = nn.Embedding(num_classes, 2 * channels)
        nn.init.ones_(self.embed.weight[:, :channels])
        nn.init.zeros_(self.embed.weight[:, channels:])

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain, bias = self.embed(y).chunk(2, dim=1)
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: int):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, num_classes)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn2 = ConditionalBatchNorm2d(cout, num_classes)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x, y):
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class Generator(nn.Module):
    takes = "latent"  # what it makes an image from besides the label (a translation generator takes an image)

    def __init__(self, num_classes: int, channels: int, image_size: int, z_dim: int, width: int, min_width: int):
        super().__init__()
        self.num_classes, self.channels, self.image_size, self.z_dim = num_classes, channels, image_size, z_dim
        self.base, blocks = layout(image_size)
        # channels halve as resolution doubles (cost stays flat per block), down to min_width:
        # 256, 128, 64, 32 for width 64; 192, 96, 48, 32, 32 for width 48 at 64 px
        widths = [max(4 * width // 2**i, min_width) for i in range(blocks + 1)]
        self.linear = nn.Linear(z_dim, widths[0] * self.base**2)
        self.blocks = nn.ModuleList(GBlock(a, b, num_classes) for a, b in zip(widths[:-1], widths[1:]))
        self.out_bn = nn.BatchNorm2d(widths[-1])
        self.out_conv = nn.Conv2d(widths[-1], channels, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], B x C x H x W."""
        h = self.linear(z).view(len(z), -1, self.base, self.base)
        for block in self.blocks:
            h = block(h, y)
        return _resized(torch.tanh(self.out_conv(F.relu(self.out_bn(h)))), self.image_size)

    def sample_latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` latents from the prior (CPU)."""
        return torch.randn(n, self.z_dim, generator=generator)


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, first: bool):
        super().__init__()
        self.first = first
        self.conv1 = spectral_norm(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(cin, cout, 1))

    def forward(self, x):
        h = x if self.first else F.relu(x)
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        skip = self.skip(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.skip(x), 2)
        return h + skip


def d_trunk(channels: int, image_size: int, width: int, min_width: int) -> tuple[nn.Sequential, int]:
    """The spectral-norm ResNet down-blocks both discriminators share, and their output channels:
    width doubling up to 4x (e.g. 1 -> 64, 128, 256), never under ``min_width``."""
    _, blocks = layout(image_size)
    widths = [channels] + [max(width * 2 ** min(i, 2), min_width) for i in range(blocks)]
    trunk = nn.Sequential(*(DBlock(a, b, first=i == 0) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))))
    return trunk, widths[-1]


class TrunkDiscriminator(nn.Module):
    """The spectral-norm ResNet trunk every discriminator shares, summed over space; subclasses add heads
    and ``judge(x, y) -> (realism B, class logits B x classes or None)``, what scoring asks of any D."""

    def __init__(self, num_classes: int, channels: int, image_size: int, width: int, min_width: int):
        super().__init__()
        self.native = native_size(image_size)
        self.blocks, self.features = d_trunk(channels, image_size, width, min_width)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.blocks(_resized(x, self.native))).sum(dim=(2, 3))


class Discriminator(TrunkDiscriminator):
    """The cGAN's projection discriminator: one realism score for (image, label)."""

    def __init__(self, num_classes: int, channels: int, image_size: int, width: int, min_width: int):
        super().__init__(num_classes, channels, image_size, width, min_width)
        self.linear = spectral_norm(nn.Linear(self.features, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, self.features))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Realism score for (image, label), B; higher = more real."""
        h = self.trunk(x)
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)

    def judge(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self(x, y), None
