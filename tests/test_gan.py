"""The conditional GAN: shapes, DiffAugment, learning, checkpoints and resume, the pool on disk."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from ganaug.errors import GanaugError
from ganaug.gan.archs import ARCHS
from ganaug.gan.cgan import hinge_d_loss
from ganaug.gan.diffaugment import diff_augment
from ganaug.gan.export import load_gan, save_gan
from ganaug.gan.networks import Discriminator, Generator, layout, native_size
from ganaug.gan.pool import write_pool
from ganaug.gan.pool_format import open_pool
from ganaug.gan.train import batch_drawers, best_networks, build_gan, train_gan
from tests.conftest import params_with


def gan_params(**kw):
    base = {
        "steps": 6,
        "batch_size": 16,
        "g_width": 8,
        "d_width": 8,
        "ckpt_every": 3,
        "eval_every": 3,
        "eval_samples": 20,
    }
    return params_with({"gan": {**base, **kw}}).gan


@pytest.mark.parametrize("channels, size", [(1, 16), (3, 16), (1, 28), (3, 32)])
def test_shapes_and_gradients_for_gray_and_rgb(channels, size):
    G = Generator(5, channels, size, z_dim=16, width=8, min_width=32)
    D = Discriminator(5, channels, size, width=8, min_width=32)
    y = torch.tensor([0, 1, 4])
    x = G(torch.randn(3, 16), y)
    assert x.shape == (3, channels, size, size) and x.min() >= -1 and x.max() <= 1
    score = D(x, y)
    assert score.shape == (3,)
    score.sum().backward()
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad)


def test_any_size_works_at_the_nearest_native_size_and_comes_out_at_its_own():
    assert layout(32) == (4, 3) and layout(28) == (7, 2) and layout(16) == (4, 2)
    assert [native_size(s) for s in (30, 100, 150, 17, 256)] == [32, 96, 160, 16, 256]  # ties go up: 30 -> 32, not 28
    with pytest.raises(GanaugError, match="data.image_size"):
        native_size(4)
    for size in (30, 100):  # off the native grid: G resizes its output, D its input
        G, D = Generator(3, 3, size, z_dim=8, width=8, min_width=8), Discriminator(3, 3, size, width=8, min_width=8)
        x = G(torch.randn(2, 8), torch.tensor([0, 2]))
        assert x.shape == (2, 3, size, size) and D(x, torch.tensor([0, 2])).shape == (2,)


def test_no_block_under_min_width_channels_at_any_resolution():
    def widths(net):
        return [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels > 3]

    for size in (32, 64, 128):
        G, D = (
            Generator(10, 3, size, z_dim=128, width=48, min_width=32),
            Discriminator(10, 3, size, width=32, min_width=32),
        )
        assert min(widths(G)) == 32 and min(widths(D)) == 32, size  # 48 halved per block would give 12 at 64 px
    assert min(widths(Generator(10, 3, 64, z_dim=128, width=48, min_width=8))) == 12  # the old floor, for comparison


@pytest.mark.parametrize("channels", [1, 3])
def test_diffaugment_keeps_shape_and_is_differentiable(channels):
    x = torch.rand(4, channels, 16, 16, requires_grad=True)
    out = diff_augment(x, "color,translation,cutout")
    assert out.shape == x.shape and not torch.equal(out, x)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(diff_augment(x, ""), x)


def test_discriminator_learns_on_digits(digits16):
    images, labels = digits16
    torch.manual_seed(0)
    cfg = gan_params(diffaugment="")
    gan = build_gan(10, 1, 16, cfg, torch.device("cpu"))
    real = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(labels)

    def d_loss():
        with torch.no_grad():
            fake = gan.G(torch.randn(64, cfg.z_dim), y[:64])
            return hinge_d_loss(gan, real[:64], y[:64], fake, y[:64], cfg)[0].item()

    start = d_loss()
    for _ in range(30):
        idx = torch.randint(len(real), (32,))
        with torch.no_grad():
            fake = gan.G(torch.randn(32, cfg.z_dim), y[idx])
        loss, _ = hinge_d_loss(gan, real[idx], y[idx], fake, y[idx], cfg)
        gan.opt_d.zero_grad()
        loss.backward()
        gan.opt_d.step()
    assert d_loss() < start - 0.2


def fake_fid(images, labels):
    """A deterministic stand-in for FID in these tests: distance of the mean image from mid-grey."""
    return {"fid": float(abs(images.mean() - 127.5)), "kid": 0.0, "diversity_ratio": 1.0, "label_agreement": 0.0}


def kill_at(step: int):
    """An on_log callback that interrupts training once the loss row of ``step`` is made: a kill, as Ctrl-C gives."""

    def on_log(row):
        if row["step"] >= step:
            raise KeyboardInterrupt(f"killed at step {row['step']}")

    return on_log


# each generator's small params for the resume test, beside gan_params' base; an ARCHS entry without one fails it
SMALL = {
    "cgan": {},
    "stargan": {"arch": "stargan", "min_width": 8, "res_blocks": 1},
    "style": {"arch": "style", "z_dim": 32},
    "ddpm": {"arch": "ddpm", "unet_width": 8, "sample_steps": 10, "lr_g": 1e-3},
    "sd": None,  # used as it is, never trained: the train_gan stage refuses steps > 0 (test_latent_diffusion runs it)
}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_a_killed_run_resumes_to_the_same_weights(arch, tmp_path, digits16):
    """Train straight through; train again, killed after step 4 (checkpoints every 3), then resumed: the same
    generator weights, loss rows and best FID, for every generator (that trains)."""
    images, labels = digits16
    if SMALL[arch] is None:  # the train_gan stage checks the params before it builds anything
        from ganaug.gan.archs import check_weights

        with pytest.raises(GanaugError, match=f"^gan.steps: gan.arch {arch} .*set gan.steps: 0$"):
            check_weights(gan_params(arch=arch, pretrained="weights/some-pipeline").model_dump())
        return
    cfg = gan_params(**SMALL[arch])
    labels = labels if ARCHS[arch].conditional else np.zeros(len(images), np.int64)

    def run(out, **kw):
        return train_gan(images, labels, 10, cfg, torch.device("cpu"), out, evaluate=fake_fid, log_every=2, **kw)

    straight = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", on_log=kill_at(4))
    assert json.loads((tmp_path / "b" / "meta.json").read_text())["step"] == 3  # the last checkpoint before the kill
    resumed = run(tmp_path / "b")
    assert resumed.step == straight.step == cfg.steps
    for (k, a), b in zip(straight.G.state_dict().items(), resumed.G.state_dict().values()):
        assert torch.equal(a, b), k
    assert resumed.losses == straight.losses and resumed.best == straight.best


def test_more_steps_continue_from_the_checkpoint(tmp_path, digits16):
    images, labels = digits16
    train_gan(images, labels, 10, gan_params(steps=3), torch.device("cpu"), tmp_path, log_every=1)
    more = train_gan(images, labels, 10, gan_params(steps=5), torch.device("cpu"), tmp_path, log_every=1)
    assert [r["step"] for r in more.losses] == [1, 2, 3, 4, 5]


def test_corrupt_or_mismatched_checkpoint_is_an_error_and_kept(tmp_path, digits16):
    images, labels = digits16
    train_gan(images, labels, 10, gan_params(steps=3), torch.device("cpu"), tmp_path / "ck")
    with pytest.raises(GanaugError, match="does not match the networks"):
        train_gan(images, labels, 10, gan_params(steps=4, g_width=16), torch.device("cpu"), tmp_path / "ck")
    (tmp_path / "ck" / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(GanaugError, match="GAN checkpoint is unreadable"):
        train_gan(images, labels, 10, gan_params(steps=4), torch.device("cpu"), tmp_path / "ck")
    assert (tmp_path / "ck" / "weights.safetensors").read_bytes() == b"garbage"  # not overwritten


def test_best_generator_is_kept_not_the_last(tmp_path, digits16):
    images, labels = digits16
    fids = iter([5.0, 1.0, 3.0])
    gan = train_gan(
        images,
        labels,
        10,
        gan_params(steps=9),
        torch.device("cpu"),
        tmp_path,
        evaluate=lambda im, lb: {**fake_fid(im, lb), "fid": next(fids)},
    )
    assert gan.best == {"fid": 1.0, "step": 6}
    G, D = best_networks(gan, gan_params(steps=9))
    last = gan.sampler.state_dict()
    assert any(not torch.equal(v, last[k]) for k, v in G.state_dict().items())
    save_gan(
        tmp_path / "out",
        G,
        D,
        {"classes": list("0123456789"), "channels": 1, "image_size": 16, "gan": gan_params().model_dump()},
    )
    G2, _, _ = load_gan(tmp_path / "out")
    z, y = torch.randn(4, 128), torch.arange(4)
    assert torch.equal(G(z, y), G2(z, y))


def test_pool_round_trip_is_memory_mapped_and_seeded(tmp_path):
    G = Generator(3, 1, 16, z_dim=8, width=8, min_width=32)
    pool = write_pool(tmp_path / "a", G, per_class=7, num_classes=3, seed=1, truncation=None, batch_size=4)
    assert len(pool) == 21 and isinstance(pool.images, np.memmap) and pool.images.shape == (21, 16, 16, 1)
    assert np.bincount(pool.labels).tolist() == [7, 7, 7] and pool.latents.shape == (21, 8)
    again = write_pool(tmp_path / "b", G, per_class=7, num_classes=3, seed=1, truncation=None, batch_size=10)
    assert np.array_equal(pool.images, again.images) and np.array_equal(pool.latents, again.latents)
    with torch.no_grad():
        direct = G.eval()(torch.from_numpy(np.array(pool.latents[:2])), torch.tensor([0, 1]))
    assert np.abs(((direct + 1) * 127.5).round().permute(0, 2, 3, 1).numpy() - pool.images[:2]).max() <= 1
    truncated = write_pool(tmp_path / "c", G, per_class=7, num_classes=3, seed=1, truncation=0.5, batch_size=1000)
    assert np.abs(truncated.latents).max() <= 0.5


def test_pool_with_files_of_different_lengths_is_refused(tmp_path):
    G = Generator(2, 1, 8, z_dim=4, width=8, min_width=32)
    write_pool(tmp_path, G, per_class=3, num_classes=2, seed=0, truncation=None, batch_size=1000)
    np.save(tmp_path / "labels.npy", np.zeros(5, np.int64))
    with pytest.raises(GanaugError, match="pool files disagree in length .*labels.npy 5"):
        open_pool(tmp_path)
    shutil.rmtree(tmp_path)
    with pytest.raises(GanaugError, match="images.npy: not found"):
        open_pool(tmp_path)


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"n_dis": 0}, "gan.n_dis"),
        ({"diffaugment": "color,blur"}, "gan.diffaugment"),
        ({"ema_decay": 1.0}, "gan.ema_decay"),
        ({"eval_samples": 5}, "gan.eval_samples"),
    ],
)
def test_gan_params_out_of_range_are_named(raw, key):
    with pytest.raises(GanaugError, match=key):
        params_with({"gan": raw})


def test_projection_recovers_an_image_the_generator_can_make():
    from ganaug.gan.projection import latent_directions, perturb, project

    torch.manual_seed(0)
    G = Generator(3, 1, 16, z_dim=8, width=8, min_width=32).eval()
    z_true = torch.randn(6, 8)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        target = ((G(z_true, y) + 1) * 127.5).round().permute(0, 2, 3, 1).to(torch.uint8).numpy()
        start_error = ((G(torch.zeros(6, 8), y) - G(z_true, y)) / 2).pow(2).mean().item()
    z, errors = project(G, target, y.numpy(), steps=150, lr=0.05, batch_size=3, seed=0)
    assert z.shape == (6, 8) and errors.shape == (6,)
    assert errors.max() < 1e-3 and errors.mean() < start_error / 10

    dirs = latent_directions(G, 2)
    assert torch.allclose(dirs @ dirs.T, torch.eye(2), atol=1e-5)
    moved, source = perturb(z, 4, "directions", 0.5, dirs, [-1.0, 1.0], seed=0)
    assert moved.shape == (24, 8) and source.tolist() == [i for i in range(6) for _ in range(4)]
    assert np.allclose(moved[0] - z[0], -dirs[0].numpy(), atol=1e-6) and np.allclose(
        moved[3] - z[0], dirs[1].numpy(), atol=1e-6
    )
    noisy, _ = perturb(z, 2, "random", 0.5, None, [], seed=0)
    assert 0.2 < np.std(noisy - np.repeat(z, 2, axis=0)) < 0.8


def test_perturb_uses_every_configured_direction_and_coefficient():
    from ganaug.gan.projection import perturb

    # the defaults' shape: 5 directions, 4 coefficients, 4 variants per image. It used to cycle the pairs
    # direction-first within an image, so every variant moved along direction 0 only.
    dirs = torch.eye(8)[:5]
    z = np.zeros((10, 8), np.float32)
    moved, source = perturb(z, 4, "directions", 0.5, dirs, [-3.0, -1.5, 1.5, 3.0], seed=0)
    steps = moved - z[source]
    used = {(int(np.abs(s).argmax()), float(s[np.abs(s).argmax()])) for s in steps}
    assert {d for d, _ in used} == {0, 1, 2, 3, 4} and {c for _, c in used} == {-3.0, -1.5, 1.5, 3.0}
    assert len(used) == 20  # 40 rows cover all 20 (direction, coefficient) pairs, each twice
    assert all((np.count_nonzero(s) == 1) for s in steps)
    # per-class directions (the linear predictor's): a latent of label y moves along directions[y]
    per_class = torch.stack([torch.eye(8)[[c]] for c in range(3)])  # 3 classes x 1 direction
    moved, source = perturb(
        np.zeros((3, 8), np.float32), 2, "predictor", 0.5, per_class, [1.0, 2.0], seed=0, labels=np.array([2, 0, 1])
    )
    assert [int(np.abs(m).argmax()) for m in moved] == [2, 2, 0, 0, 1, 1] and moved[1, 2] == 2.0


def test_predictor_direction_raises_the_score_it_was_fitted_on():
    from ganaug.gan.projection import predictor_directions

    torch.manual_seed(0)
    G = Generator(3, 1, 16, z_dim=8, width=8, min_width=32).eval()

    def brightness(x, y):  # a score of the image: its mean intensity
        return x.mean((1, 2, 3))

    dirs, r2 = predictor_directions(G, brightness, 3, samples_per_class=300, seed=0)
    assert dirs.shape == (3, 1, 8) and torch.allclose(dirs.norm(dim=-1), torch.ones(3, 1))
    assert (r2 > 0.3).all()  # the score is largely linear in z for a small generator
    z = torch.randn(200, 8, generator=torch.Generator().manual_seed(1))
    for c in range(3):
        y = torch.full((200,), c)
        with torch.no_grad():
            up, down = brightness(G(z + 2 * dirs[c, 0], y), y), brightness(G(z - 2 * dirs[c, 0], y), y)
        assert (up > down).float().mean() > 0.9


@pytest.mark.parametrize("raw", [{"method": "predictor"}, {"method": "directions", "directions": 2, "variants": 9}])
def test_more_variants_than_distinct_perturbations_is_refused(raw):
    with pytest.raises(GanaugError, match="lower projection.variants or add projection.coefficients"):
        params_with({"projection": raw})
    params_with({"projection": {**raw, "variants": 4}})  # 4 coefficients: enough distinct steps


def test_class_balanced_draws_give_a_rare_class_its_share_of_updates():
    torch.manual_seed(0)
    labels = torch.tensor([0] * 180 + [1] * 20 + [2] * 0)  # a long tail; class 2 has no real image at all
    real, fake = batch_drawers(labels, 3, 4000, balance=True)
    assert np.bincount(labels[real()].numpy(), minlength=3)[:2] / 4000 == pytest.approx([0.5, 0.5], abs=0.03)
    assert np.bincount(fake().numpy(), minlength=3).tolist()[2] == 0  # never asked to draw a class it never saw
    assert np.bincount(fake().numpy(), minlength=3)[:2] / 4000 == pytest.approx([0.5, 0.5], abs=0.03)
    real, fake = batch_drawers(labels, 3, 4000, balance=False)  # by frequency: 90% / 10%
    assert np.bincount(labels[real()].numpy(), minlength=3)[:2] / 4000 == pytest.approx([0.9, 0.1], abs=0.03)
    assert np.bincount(fake().numpy(), minlength=3)[:2] / 4000 == pytest.approx([0.9, 0.1], abs=0.03)
