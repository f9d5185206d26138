"""A small style-based generator (gan.arch: style), the kind paper 003 (DAPPER) projects into: unconditional,
pre-trained on unlabelled images (data.unlabelled), so it can know more than the small labelled set.

After StyleGAN2 (Karras et al. 2020), shrunk for 16-256 px on a CPU:
- a mapping network z -> w (``gan.mapping_layers`` equalised-lr linear layers, lr x 0.01 as in StyleGAN);
- a learned constant at the base resolution, then per block a 2x bilinear upsample and two modulated /
  demodulated 3 x 3 convolutions, each with per-pixel noise (a learned strength per layer) and its own w;
- skip-connected 1 x 1 toRGB outputs summed across resolutions, then tanh (StyleGAN has none; here it halved the
  FID after 400 steps); widths as the cGAN's (4 x g_width, halving).
Noise is fresh in training and a fixed buffer in eval mode, so sampling, projection and decoding a latent twice
give the same image. The discriminator is the cGAN's spectral-norm trunk with one realism head, no labels;
the losses are the cGAN's hinge + DiffAugment (ganaug.gan.cgan), whose labels this pair ignores.
No path-length or R1 regulariser: not tried at this scale (spectral norm and DiffAugment keep D in check).

``WSpace`` is the latent space projection works in: w (or W+, one w per layer), standardised by the mean and
spread of mapped latents, so a step of 1 is one typical spread of w in every coordinate and the random and
predictor perturbations keep the scale they have for a cGAN's z."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

from ganaug.gan.networks import TrunkDiscriminator, _resized, layout

LRELU_GAIN = math.sqrt(2)
# Every generator parameter is stored divided by this and multiplied back when used (StyleGAN's equalised learning
# rate, with a multiplier): Adam then moves each by ~gan.lr_g x LR_MUL relative to its scale, StyleGAN2's 0.0025
# at the project's lr_g of 2e-4 (the discriminator, spectral-normed, keeps plain lr_d). Without it the generator
# learned ~10x slower than the cGAN: FID 333 after 400 steps on Fashion-MNIST, against the cGAN's 89 (190 with
# it; 105 with the tanh below, 93 with 2 mapping layers; lr x 25: 118, lr x 5: 209; one seed each, 400 steps).
LR_MUL = 12.5
MAPPING_LR_MUL = 0.01  # StyleGAN's: the mapping network learns 100x slower than the synthesis


class EqualLinear(nn.Module):
    """A linear layer with StyleGAN's equalised learning rate: weights stored at N(0, 1 / lr_mul), scaled when
    used, so Adam's steps are the same size for every layer (and lr_mul slower for the mapping network)."""

    def __init__(self, cin: int, cout: int, bias_init: float = 0.0, lr_mul: float = LR_MUL):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul = lr_mul / math.sqrt(cin), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, layers: int):
        super().__init__()
        self.layers = nn.ModuleList(EqualLinear(z_dim, z_dim, lr_mul=MAPPING_LR_MUL * LR_MUL) for _ in range(layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * z.pow(2).mean(1, keepdim=True).add(1e-8).rsqrt()  # the 2nd-moment normalisation of z
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2) * LRELU_GAIN
        return x


class ModulatedConv(nn.Module):
    """A convolution whose input channels are scaled by a style from w, then (demodulate) its output channels
    renormalised to unit expected variance. Computed as scale-input, shared conv, scale-output (StyleGAN2's
    non-fused form): the same result as per-sample weights, at the cost of one ordinary convolution."""

    def __init__(self, cin: int, cout: int, kernel: int, w_dim: int, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel) / LR_MUL)
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.scale, self.demodulate, self.padding = LR_MUL / math.sqrt(cin * kernel**2), demodulate, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w)  # B x cin
        weight = self.weight * self.scale
        x = F.conv2d(x * style[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:
            # sum over (cin, kernel) of (weight x style)^2 = style^2 @ (weight^2 summed over the kernel): B x cout
            d = (style.pow(2) @ weight.pow(2).sum((2, 3)).T).add(1e-8).rsqrt()
            x = x * d[:, :, None, None]
        return x


class SynthesisLayer(nn.Module):
    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, up: bool):
        super().__init__()
        self.up = up
        self.conv = ModulatedConv(cin, cout, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.conv(x, w)
        noise = torch.randn_like(x[:, :1]) if self.training else self.noise_const
        x = x + LR_MUL * (noise * self.noise_strength + self.bias[None, :, None, None])
        return F.leaky_relu(x, 0.2) * LRELU_GAIN


class ToRGB(nn.Module):
    def __init__(self, cin: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv(cin, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + LR_MUL * self.bias[None, :, None, None]


class StyleGenerator(nn.Module):
    """G(z, labels) -> images in [-1, 1] (labels ignored: unconditional); ``synthesis(ws)`` from B x num_ws x w_dim."""

    takes = "latent"
    conditional = False

    def __init__(
        self,
        num_classes: int,
        channels: int,
        image_size: int,
        z_dim: int,
        width: int,
        min_width: int,
        mapping_layers: int,
    ):
        super().__init__()
        self.num_classes, self.channels, self.image_size, self.z_dim = num_classes, channels, image_size, z_dim
        self.base, blocks = layout(image_size)
        widths = [max(4 * width // 2**i, min_width) for i in range(blocks + 1)]
        self.mapping = MappingNetwork(z_dim, mapping_layers)
        self.const = nn.Parameter(torch.randn(1, widths[0], self.base, self.base) / LR_MUL)
        self.layers = nn.ModuleList([SynthesisLayer(widths[0], widths[0], z_dim, self.base, up=False)])
        self.to_rgb = nn.ModuleList([ToRGB(widths[0], channels, z_dim)])
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]), start=1):
            resolution = self.base * 2**i
            self.layers.extend(
                [SynthesisLayer(a, b, z_dim, resolution, up=True), SynthesisLayer(b, b, z_dim, resolution, up=False)]
            )
            self.to_rgb.append(ToRGB(b, channels, z_dim))
        self.num_ws = len(self.layers) + 1  # one w per convolution, and the last toRGB's

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """Images from per-layer latents ws (B x num_ws x w_dim), or one w per image (B x w_dim) for every layer."""
        if ws.ndim == 2:
            ws = ws[:, None].expand(-1, self.num_ws, -1)
        x = (LR_MUL * self.const).expand(len(ws), -1, -1, -1)
        x = self.layers[0](x, ws[:, 0])
        rgb = self.to_rgb[0](x, ws[:, 1])
        for i in range(1, len(self.to_rgb)):
            x = self.layers[2 * i - 1](x, ws[:, 2 * i - 1])
            x = self.layers[2 * i](x, ws[:, 2 * i])
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + self.to_rgb[i](
                x, ws[:, 2 * i + 1]
            )
        return _resized(torch.tanh(rgb), self.image_size)  # bounded like the real images (unbounded: FID 190 vs 105)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.synthesis(self.mapping(z))


class WSpace(nn.Module):
    """The generator seen from its (standardised) W or W+ space: ``forward(u, labels)`` decodes latents
    u = (w - mean) / spread (B x w_dim, or B x num_ws * w_dim for W+), so that projection, perturbation and the pool
    code, written for a cGAN's G(z, y), work on w unchanged. The mean and spread come from ``samples`` mapped
    normal latents (seeded)."""

    takes = "latent"

    def __init__(self, G: StyleGenerator, plus: bool = False, samples: int = 4096, seed: int = 0):
        super().__init__()
        self.G, self.plus = G.eval().requires_grad_(False), plus
        self.image_size, self.channels, self.num_classes = G.image_size, G.channels, G.num_classes
        self.z_dim = G.z_dim * (G.num_ws if plus else 1)  # the latent's length, as projection reads it
        device = next(G.parameters()).device
        with torch.no_grad():
            z = torch.randn(samples, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
            w = G.mapping(z)
        self.register_buffer("mean", w.mean(0))
        self.register_buffer("spread", w.std(0).clamp_min(1e-6))

    def ws(self, u: torch.Tensor) -> torch.Tensor:
        if self.plus:
            return self.mean + self.spread * u.view(len(u), self.G.num_ws, -1)
        return self.mean + self.spread * u

    def forward(self, u: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.G.synthesis(self.ws(u))

    def sample_latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Standardised w of ``n`` fresh normal z (CPU), repeated per layer for W+."""
        z = torch.randn(n, self.G.z_dim, generator=generator)
        with torch.no_grad():
            u = ((self.G.mapping(z.to(self.mean.device)) - self.mean) / self.spread).cpu()
        return u.repeat(1, self.G.num_ws) if self.plus else u


def w_space(G: StyleGenerator, cfg) -> tuple[WSpace, str]:
    """The style GAN's latent space for DAPPER (projection params ``cfg``): W, or W+ with w_plus."""
    return WSpace(G, cfg.w_plus, seed=cfg.seed), "w+" if cfg.w_plus else "w"


class UnconditionalDiscriminator(TrunkDiscriminator):
    """The spectral-norm trunk and one realism head; labels, where the losses and scoring pass them, are ignored."""

    def __init__(self, num_classes: int, channels: int, image_size: int, width: int, min_width: int):
        super().__init__(num_classes, channels, image_size, width, min_width)
        self.linear = spectral_norm(nn.Linear(self.features, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.trunk(x)).squeeze(1)

    def judge(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return self(x), None
