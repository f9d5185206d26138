"""The diffusion model (gan.arch: ddpm) for Diffusion Inversion: training lowers its denoising loss, DDIM inversion
reconstructs a training image better than a random latent does, its realism judge prefers real images, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganaug.gan.diffusion import DiffusionSpace
from ganaug.gan.export import load_gan, save_gan
from ganaug.gan.pixels import from_uint8
from ganaug.gan.projection import inverted, perturb
from ganaug.gan.train import best_networks, train_gan
from tests.conftest import params_with


def ddpm_params(**kw):
    base = {"arch": "ddpm", "steps": 6, "batch_size": 16, "unet_width": 8, "sample_steps": 10, "lr_g": 1e-3}
    return params_with({"gan": {**base, "ckpt_every": 3, "eval_every": 3, "eval_samples": 20, **kw}}).gan


def fixed_denoising_loss(G, images) -> float:
    """The training loss on fixed images, timesteps and noise: comparable before and after training."""
    gen = torch.Generator().manual_seed(0)
    x0 = from_uint8(images)
    t = torch.randint(1000, (len(x0),), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    with torch.no_grad():
        return float(G.denoising_error(x0, t, noise).mean())


@pytest.fixture(scope="module")
def trained(digits16, tmp_path_factory):
    images, _ = digits16
    torch.manual_seed(0)
    cfg = ddpm_params(steps=150, ema_decay=0.0, eval_every=1000, ckpt_every=1000)
    folder = tmp_path_factory.mktemp("ddpm")
    from ganaug.gan.archs import build_networks

    before = build_networks(10, 1, 16, cfg.model_dump())[0].eval()
    gan = train_gan(images, np.zeros(len(images), np.int64), 10, cfg, torch.device("cpu"), folder)
    return before, gan, images


def test_training_lowers_the_denoising_loss(trained):
    before, gan, images = trained
    start, end = fixed_denoising_loss(before, images[:64]), fixed_denoising_loss(gan.G.eval(), images[:64])
    assert end < 0.5 * start, (start, end)
    assert [set(row) for row in gan.losses[:1]] == [{"step", "g_loss"}]  # no discriminator, no d_loss column


def test_inversion_reconstructs_a_training_image_better_than_a_random_latent(trained):
    _, gan, images = trained
    space = DiffusionSpace(gan.G.eval())
    real = images[:8]
    latents, errors = inverted(space, real, batch_size=8)
    assert latents.shape == (8, 256)
    with torch.no_grad():
        random = space(space.sample_latents(8, torch.Generator().manual_seed(1)))
    random_error = float(((random - from_uint8(real)) / 2).pow(2).mean())
    assert errors.mean() < 0.25 * random_error, (errors.mean(), random_error)
    # a perturbed latent decodes to an image near its source (closer than a random draw), not to the source itself
    moved, source = perturb(latents, 2, "random", 0.3, None, [], seed=0)
    with torch.no_grad():
        variants = space(torch.from_numpy(moved))
    spread = ((variants - from_uint8(real)[source]) / 2).pow(2).mean((1, 2, 3))
    assert (spread > torch.from_numpy(errors[source])).float().mean() > 0.5 and spread.mean() < random_error


def test_the_judge_scores_real_digits_above_noise_and_round_trips_through_models_gan(trained, tmp_path):
    _, gan, images = trained
    G, D = best_networks(gan, ddpm_params())
    noise = torch.rand(16, 1, 16, 16) * 2 - 1
    real = from_uint8(images[:16])
    assert float(D.judge(real)[0].mean()) > float(D.judge(noise)[0].mean())
    assert torch.equal(D.judge(real)[0], D.judge(real)[0])  # fixed noise: a score depends on the image alone
    config = {"classes": list("0123456789"), "channels": 1, "image_size": 16, "gan": ddpm_params().model_dump()}
    save_gan(tmp_path, G, D, config)
    G2, D2, _ = load_gan(tmp_path)
    z = torch.randn(3, 256, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(G(z), G2(z)) and torch.equal(G(z), G(z))  # deterministic DDIM
    assert torch.equal(D.judge(real)[0], D2.judge(real)[0])


def test_an_image_size_its_unet_cannot_halve_is_named():
    from ganaug.errors import GanaugError
    from ganaug.gan.archs import build_networks

    with pytest.raises(GanaugError, match="gan.arch ddpm needs a multiple of 4"):
        build_networks(10, 1, 30, ddpm_params().model_dump())
