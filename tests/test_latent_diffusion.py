"""The pretrained text-to-image generator (gan.arch: sd) on a tiny Stable Diffusion pipeline trained here on digits
(ganaug.tiny.sd) and saved with save_pretrained: img2img stays near its source at low strength, pools are labelled
with their sources' / prompts' classes (a digits classifier agrees), same seed -> same bytes at any batch size,
offline loading, one-line refusals, the data's size and channels, and a deterministic realism judge."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from ganaug.data.prepare import resize
from ganaug.data.store import Split
from ganaug.errors import GanaugError
from ganaug.gan.archs import ARCHS
from ganaug.gan.interface import Inputs
from ganaug.gan.pixels import from_uint8
from tests.conftest import params_with

CLASSES = [str(d) for d in range(10)]
TEMPLATE = "a photo of a {class}"


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    """The tiny pipeline folder, trained once on 300 digits (16 px), with the prompts of TEMPLATE."""
    from sklearn.datasets import load_digits

    from ganaug.tiny.sd import train_tiny_sd

    d = load_digits()
    images = resize(np.rint(d.images * 255 / 16).astype(np.uint8)[..., None], 16, None)
    folder = tmp_path_factory.mktemp("tiny-sd") / "pipeline"
    prompts = [TEMPLATE.replace("{class}", c) for c in CLASSES]
    train_tiny_sd(images[:300], d.target[:300], prompts, folder)
    return folder, images, d.target.astype(np.int64)


@pytest.fixture(scope="module")
def digit_classifier(tiny_sd):
    """A nearest-neighbour classifier on the digits the pipeline never saw: which digit a 16 px gray image shows."""
    from sklearn.neighbors import KNeighborsClassifier

    _, images, labels = tiny_sd
    return KNeighborsClassifier(5).fit(images[300:].reshape(-1, 256) / 255, labels[300:])


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with the prompts file (load_prompts reads ./prompts.yaml)."""
    (tmp_path / "prompts.yaml").write_text(f'template: "{TEMPLATE}"\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train_split(tiny_sd, per_class: int, size: int = 16, channels: int = 1) -> Split:
    """``per_class`` training digits of each class (from the 300 the pipeline learned), at ``size`` px."""
    _, images, labels = tiny_sd
    rows = np.concatenate([np.flatnonzero(labels[:300] == c)[:per_class] for c in range(10)])
    return Split(resize(images[rows], size, channels), labels[rows], np.array([f"digits-{i:04d}" for i in rows]))


def sd_inputs(tiny_sd, train: Split, gan: dict | None = None, generate: dict | None = None):
    """(the sd generator and judge built through the Arch entry, Inputs for its pool and grid)."""
    folder = tiny_sd[0]
    gan = {"arch": "sd", "pretrained": str(folder), "sample_steps": 10, "guidance_scale": 3.0, **(gan or {})}
    gan_params = {"steps": 0, **gan}  # "used as it is": what an sd run sets
    params = params_with({"gan": gan_params, "generate": {"pool_multiple": 1, "batch_size": 8, **(generate or {})}})
    G, D = ARCHS["sd"].build(10, train.images.shape[-1], train.images.shape[1], params.gan.model_dump())
    inputs = Inputs(params, "sd", CLASSES, train, torch.device("cpu"), lambda: None, lambda images: None)
    return G, D, inputs


def pool_of(tiny_sd, train, out, gan=None, generate=None):
    G, _, inputs = sd_inputs(tiny_sd, train, gan, generate)
    return ARCHS["sd"].make_pool(G, out, inputs)[0]


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_img2img_stays_near_its_source_at_low_strength_and_keeps_its_label(tiny_sd, digit_classifier, project):
    train = train_split(tiny_sd, 2)
    near = pool_of(tiny_sd, train, project / "near", {"strength": 0.1})
    far = pool_of(tiny_sd, train, project / "far", {"strength": 0.9})
    row = {image_id: i for i, image_id in enumerate(train.ids)}
    for pool, name in ((near, "near"), (far, "far")):
        source = np.array([row[i] for i in np.load(project / name / "source_ids.npy")])
        # labelled with the source's class, balanced: every source used, classes interleaved
        assert (pool.labels == train.labels[source]).all() and (pool.labels == np.arange(len(pool)) % 10).all()
        assert (np.load(project / name / "source_labels.npy") == pool.labels).all()
        assert sorted(set(source)) == list(range(len(train)))
    d_near, d_far = distance(near.images, train.images[source]), distance(far.images, train.images[source])
    assert d_near < 0.5 * d_far, (d_near, d_far)
    # strength 0.9 redraws most of the image, from the class prompt: a digits classifier still sees the label
    seen = digit_classifier.predict(np.asarray(far.images).reshape(len(far), -1) / 255)
    assert (seen == far.labels).mean() > 0.5, (seen, far.labels)
    assert far.meta["kind"] == "translation" and far.meta["strength"] == 0.9 and far.meta["sd_mode"] == "img2img"
    assert far.meta["prompts"][3] == "a photo of a 3" and far.meta["pretrained"] == str(tiny_sd[0])


def test_txt2img_draws_the_prompts_class(tiny_sd, digit_classifier, project):
    train = train_split(tiny_sd, 2)
    pool = pool_of(
        tiny_sd, train, project / "pool", {"sd_mode": "txt2img", "guidance_scale": 7.5}, {"pool_multiple": 3}
    )
    assert len(pool) == 60 and (pool.labels == np.arange(60) % 10).all()
    assert not (project / "pool" / "source_ids.npy").exists() and "kind" not in pool.meta
    seen = digit_classifier.predict(np.asarray(pool.images).reshape(len(pool), -1) / 255)
    # the prompt's class, far above chance (0.1) and above the same images read as the next class (measured: 0.7
    # and 0.02)
    assert (seen == pool.labels).mean() > 0.4 > (seen == (pool.labels + 1) % 10).mean(), seen


def test_the_same_seed_gives_the_same_pool_bytes_at_any_batch_size(tiny_sd, project):
    train = train_split(tiny_sd, 1)
    folders = {}
    for name, generate in (("a", {"batch_size": 3}), ("b", {"batch_size": 8}), ("c", {"batch_size": 8, "seed": 1})):
        folders[name] = project / name
        pool_of(tiny_sd, train, folders[name], {"strength": 0.6}, {**generate, "pool_multiple": 2})
    for file in ("images.npy", "labels.npy", "latents.npy", "source_ids.npy", "source_labels.npy"):
        assert (folders["a"] / file).read_bytes() == (folders["b"] / file).read_bytes(), file
    assert (folders["a"] / "images.npy").read_bytes() != (folders["c"] / "images.npy").read_bytes()


def test_output_has_the_datas_size_and_channels_and_the_grid_is_drawn(tiny_sd, project):
    train = train_split(tiny_sd, 1, size=24, channels=3)
    G, _, inputs = sd_inputs(tiny_sd, train, {"strength": 0.5})
    pool, how = ARCHS["sd"].make_pool(G, project / "pool", inputs)
    assert pool.images.shape == (10, 24, 24, 3) and G.native == 16 and "img2img" in how
    ARCHS["sd"].sample_grid(G, inputs, "sd", project / "samples.png")
    assert (project / "samples.png").stat().st_size > 1000


def test_loads_offline_with_no_network(tiny_sd, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    G, D, _ = sd_inputs(tiny_sd, train_split(tiny_sd, 1))
    assert G.unet.config.cross_attention_dim == G.text_encoder.config.hidden_size and D._generator == [G]


def test_a_missing_wrong_or_placeholder_folder_and_training_steps_are_refused_in_one_line(tiny_sd, tmp_path):
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    from ganaug.gan.latent_diffusion import build

    gan = {**params_with({"gan": {"arch": "sd"}}).gan.model_dump(), "steps": 0}
    unet = UNet2DModel(
        sample_size=8,
        block_out_channels=(8, 8),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        layers_per_block=1,
    )
    unet.save_pretrained(tmp_path / "a-unet")
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(tmp_path / "ddpm")
    cases = {
        str(tmp_path / "nowhere"): "not a folder",
        str(tmp_path / "a-unet"): "no model_index.json in it",
        str(tmp_path / "ddpm"): "model_index.json names no vae",
        "weights/none": "no-weights placeholder",
    }
    for folder, why in cases.items():
        with pytest.raises(GanaugError) as err:
            build(10, 1, 16, {**gan, "pretrained": folder})
        message = str(err.value)
        assert "\n" not in message and message.startswith("gan.pretrained:") and why in message, message
        assert folder in message and "Stable Diffusion pipeline folder" in message, message
    from ganaug.gan.archs import check_weights  # what train_gan checks before building anything

    with pytest.raises(
        GanaugError, match=r"^gan.steps: gan.arch sd is used as it is, never trained here; set gan.steps: 0$"
    ):
        check_weights({**gan, "pretrained": str(tiny_sd[0]), "steps": 800})


def test_the_judge_is_deterministic_and_scores_real_digits_above_noise(tiny_sd):
    _, D, _ = sd_inputs(tiny_sd, train_split(tiny_sd, 1))
    _, images, _ = tiny_sd
    real = from_uint8(images[300:340])
    noise = torch.rand(40, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    realism, logits = D.judge(real)
    assert logits is None and realism.shape == (40,)
    assert torch.equal(realism, D.judge(real)[0]) and torch.equal(realism[5:9], D.judge(real[5:9])[0])
    assert float(realism.mean()) > float(D.judge(noise)[0].mean())


def test_train_gan_keeps_sd_by_reference_and_its_fid_images_are_drawn_as_the_pool_is(tiny_sd, project):
    """train_gan at steps 0 draws its FID images through Arch.sample (sd has no G(z, labels)): the pool's own draw
    for those labels; the kept generator is its config alone, and load_gan's rebuild makes the same pool bytes."""
    import json

    from ganaug.gan.archs import relevant_config, weights_record
    from ganaug.gan.export import load_gan, provenance, save_gan
    from ganaug.gan.train import best_networks, train_gan

    train = train_split(tiny_sd, 2)
    G, D, inputs = sd_inputs(tiny_sd, train)
    cfg = inputs.params.gan.model_copy(update={"eval_samples": 20})
    seen = []

    def evaluate(images, labels):
        seen.append((images, labels))
        return {"fid": 1.0, "kid": 0.0, "diversity_ratio": 1.0, "label_agreement": 1.0}

    def sample(G, wanted):
        return ARCHS["sd"].sample(G, inputs, wanted.numpy(), cfg.seed + 1)

    gan = train_gan(train.images, train.labels, 10, cfg, torch.device("cpu"), project / "ckpt", evaluate, sample=sample)
    assert gan.step == 0 and len(seen) == 1 and not (project / "ckpt").exists()
    images, labels = seen[0]
    assert images.shape == (20, 16, 16, 1) and (labels == np.arange(20) % 10).all()
    # the same images the pool's draw gives for those labels and that seed
    from ganaug.gan.latent_diffusion import draw

    assert np.array_equal(images, draw(G, inputs, labels, cfg.seed + 1))

    kept, judge = best_networks(gan, cfg)
    config = {"classes": CLASSES, "channels": 1, "image_size": 16, "gan": relevant_config(cfg.model_dump())}
    record = weights_record(cfg.model_dump())
    save_gan(project / "gan", kept, judge, {**config, **record}, by_reference=True)
    assert sorted(p.name for p in (project / "gan").iterdir()) == ["config.json"]
    G2, _, loaded = load_gan(project / "gan")
    assert json.loads((project / "gan/config.json").read_text())["weights_md5"] == record["weights_md5"]
    assert provenance(project / "gan", loaded) == record  # its md5 once
    first = ARCHS["sd"].make_pool(kept, project / "a", inputs)[0]
    again = ARCHS["sd"].make_pool(G2, project / "b", inputs)[0]
    assert np.array_equal(np.asarray(first.images), np.asarray(again.images))
