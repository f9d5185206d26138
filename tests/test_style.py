"""The style-based generator (gan.arch: style): shapes, fixed noise when sampling, learning on unlabelled digits,
projection into W / W+ (DAPPER as paper 003 does it), resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganaug.gan.archs import build_networks
from ganaug.gan.pixels import from_uint8, to_uint8
from ganaug.gan.projection import perturb, predictor_directions, project
from ganaug.gan.style import StyleGenerator, UnconditionalDiscriminator, WSpace
from ganaug.gan.train import train_gan
from tests.conftest import params_with


def style_params(**kw):
    base = {"arch": "style", "steps": 6, "batch_size": 16, "g_width": 8, "d_width": 8, "z_dim": 32}
    return params_with({"gan": {**base, "ckpt_every": 3, "eval_every": 3, "eval_samples": 20, **kw}}).gan


@pytest.mark.parametrize("channels, size", [(1, 16), (3, 32), (1, 28)])
def test_shapes_gradients_and_labels_ignored(channels, size):
    G = StyleGenerator(10, channels, size, z_dim=16, width=8, min_width=8, mapping_layers=2)
    D = UnconditionalDiscriminator(10, channels, size, width=8, min_width=8)
    z = torch.randn(3, 16)
    x = G(z, torch.tensor([0, 1, 9]))
    assert x.shape == (3, channels, size, size)
    assert G.num_ws == len(G.layers) + 1
    assert D(x, torch.tensor([0, 1, 9])).shape == (3,) and D.judge(x, None)[1] is None
    D(x).sum().backward()
    assert all(p.grad is not None for p in G.parameters())
    G.eval()
    with torch.no_grad():
        assert torch.equal(G(z, torch.tensor([0, 1, 9])), G(z, torch.tensor([5, 5, 5])))  # unconditional


def test_noise_is_fresh_in_training_and_fixed_when_sampling():
    torch.manual_seed(0)
    G = StyleGenerator(2, 1, 16, z_dim=16, width=8, min_width=8, mapping_layers=2)
    for layer in G.layers:
        layer.noise_strength.data.fill_(0.5)
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert not torch.equal(G.train()(z), G(z))
        assert torch.equal(G.eval()(z), G(z))


@pytest.fixture(scope="module")
def trained(digits16, tmp_path_factory):
    """A style GAN trained on the digits as unlabelled images (labels all 0: it never sees a class)."""
    images, _ = digits16
    torch.manual_seed(0)
    cfg = style_params(steps=150, g_width=16, d_width=16, ema_decay=0.99, eval_every=1000, ckpt_every=1000)
    before = build_networks(10, 1, 16, cfg.model_dump())[0].eval()
    gan = train_gan(
        images, np.zeros(len(images), np.int64), 10, cfg, torch.device("cpu"), tmp_path_factory.mktemp("style")
    )
    return before, gan.sampler.eval(), images


def nearest_real_distance(fake: np.ndarray, real: np.ndarray) -> float:
    """Mean over generated images of the RMS pixel distance (0..1) to the nearest real image."""
    f = fake.reshape(len(fake), -1).astype(np.float64) / 255
    r = real.reshape(len(real), -1).astype(np.float64) / 255
    d = ((f**2).sum(1)[:, None] + (r**2).sum(1)[None] - 2 * f @ r.T).clip(0) / f.shape[1]
    return float(np.sqrt(d.min(1)).mean())


def test_training_on_unlabelled_digits_moves_samples_towards_real_ones(trained):
    before, after, images = trained
    z = torch.randn(100, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        start, end = (nearest_real_distance(to_uint8(G(z)), images) for G in (before, after))
    assert end < 0.6 * start, (start, end)


def test_projection_into_w_reconstructs_a_real_image_better_than_a_random_w(trained):
    _, G, images = trained
    real = images[:6]
    labels = np.zeros(6, np.int64)
    errors = {}
    for plus in (False, True):
        space = WSpace(G, plus=plus, seed=0)
        assert space.z_dim == 32 * (G.num_ws if plus else 1)
        latents, err = project(space, real, labels, steps=150, lr=0.05, batch_size=6, seed=0)
        with torch.no_grad():  # the image decoded from the latent found is the reconstruction measured
            decoded = space(torch.from_numpy(latents))
        assert np.allclose(err, ((decoded - from_uint8(real)) / 2).pow(2).mean((1, 2, 3)).numpy(), atol=1e-5)
        errors[plus] = err.mean()
    space = WSpace(G, seed=0)
    with torch.no_grad():
        random_w = space(space.sample_latents(60, torch.Generator().manual_seed(2)))
    target = from_uint8(np.repeat(real, 10, axis=0))
    random_error = float(((random_w - target) / 2).pow(2).mean())
    assert errors[False] < 0.5 * random_error, (errors, random_error)
    assert errors[True] <= errors[False] * 1.05  # W+ has every layer's w to fit with: never clearly worse


def test_w_space_is_standardised_and_perturbations_keep_the_label_free_scale(trained):
    _, G, _ = trained
    space = WSpace(G, seed=0)
    u = space.sample_latents(2000, torch.Generator().manual_seed(3))
    assert abs(float(u.mean())) < 0.1 and 0.8 < float(u.std()) < 1.2
    moved, source = perturb(u[:5].numpy(), 3, "random", 0.5, None, [], seed=0)
    assert moved.shape == (15, 32) and 0.3 < np.std(moved - u[:5].numpy()[source]) < 0.7


def test_predictor_direction_in_w_raises_the_score_it_was_fitted_on(trained):
    """As paper 003 fits its pose direction: a linear predictor on W samples; here the score is the mean brightness."""
    _, G, _ = trained
    space = WSpace(G, seed=0)

    def brightness(images, labels):
        return images.mean((1, 2, 3))

    dirs, r2 = predictor_directions(space, brightness, 1, samples_per_class=300, seed=0)
    u = space.sample_latents(50, torch.Generator().manual_seed(4))
    with torch.no_grad():
        up, down = (brightness(space(u + c * dirs[0, 0]), None) for c in (1.5, -1.5))
    assert (up > down).float().mean() >= 0.8 and float(up.mean() - down.mean()) > 0.05 and r2[0] > 0.3


class _BrightnessGenerator(torch.nn.Module):
    """An unconditional generator whose image brightness is its first latent: the label_fn below reads the class
    off the brightness, so the top class (z > 2, ~2 % of draws) is rare, as a weak generator's rare classes are."""

    z_dim = 4

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # something to read the device from

    def forward(self, z):
        return torch.tanh(z[:, :1, None, None] / 3).expand(-1, 1, 4, 4)


def _class_of_brightness(images):
    z = 3 * np.arctanh(np.clip(images[:, 0, 0, 0] / 127.5 - 1, -0.999, 0.999))
    return np.digitize(z, [-0.5, 0.5, 2.0])  # classes 0-3; 3 is rare


def test_a_labelled_pool_fills_its_classes_in_interleaved_order_and_stops_drawing_at_max_draws(tmp_path):
    from ganaug.gan.pool import write_labelled_pool
    from ganaug.gan.pool_format import open_pool

    G = _BrightnessGenerator()
    filled = write_labelled_pool(
        tmp_path / "filled",
        G,
        _class_of_brightness,
        5,
        4,
        seed=0,
        truncation=None,
        batch_size=100,
        extra_meta={},
        max_draws=20,
    )
    assert "short" not in filled.meta and filled.meta["drawn"] < 20 * 20  # full before the cap
    assert list(np.asarray(open_pool(tmp_path / "filled").labels[:8])) == [0, 1, 2, 3] * 2  # any prefix balanced

    # the rare class needs ~50 draws per image: 40 of them cannot be filled from 2.5 x 160 draws
    short = write_labelled_pool(
        tmp_path / "short",
        G,
        _class_of_brightness,
        40,
        4,
        seed=0,
        truncation=None,
        batch_size=100,
        extra_meta={},
        max_draws=2.5,
    )
    assert short.meta["drawn"] == 400  # the cap, 2.5 x 160, reached at a batch's end: no batch more
    rare = int(short.meta["short"]["3"])
    assert 0 < rare < 40 and set(short.meta["short"]) == {"3"}
    labels = np.asarray(short.labels)
    assert len(labels) == 160 - rare and (np.bincount(labels, minlength=4)[:3] == 40).all()
    # each image keeps its own label, and its own latent: the generator redraws it from that latent
    assert (_class_of_brightness(np.asarray(short.images)) == labels).all()
    assert (to_uint8(G(torch.from_numpy(np.array(short.latents)))) == np.asarray(short.images)).all()
