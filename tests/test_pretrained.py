"""gan.arch ddpm from pretrained weights (gan.pretrained): a tiny DDPM the tests train and save with save_pretrained
(ganaug.tiny.unet), at 12 px RGB while the data are 16 px gray, so every use converts. Loading either folder form
offline, one-line refusals of a missing or wrong folder, the loaded model knows digits, gan.steps 0 keeps it by
reference and load_gan restores it (or refuses changed weights), fine-tuning learns, and DVC sees changed weights."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from ganaug.errors import GanaugError
from ganaug.gan.archs import build_networks, check_weights, relevant_config, weights_record
from ganaug.gan.diffusion import SCHEDULE, DiffusionGenerator, DiffusionSpace, convert
from ganaug.gan.export import load_gan, provenance, save_gan
from ganaug.gan.pixels import from_uint8
from ganaug.gan.projection import inverted
from ganaug.gan.train import best_networks, train_gan
from ganaug.tiny.unet import save_tiny, tiny_unet, train_tiny_ddpm
from tests.conftest import params_with

SIZE, CHANNELS = 12, 3  # the tiny model's; the data (digits16) are 16 px, 1 channel
PRETRAINED_ON = 200  # digits16's first 200 images; the other 100 are held out


@pytest.fixture(scope="module")
def tiny(digits16, tmp_path_factory):
    """The tiny DDPM trained on digits (60 steps, ~3 s), saved as a UNet folder and as a DDPMPipeline folder."""
    images, _ = digits16
    net = train_tiny_ddpm(images[:PRETRAINED_ON], CHANNELS, SIZE, steps=60, seed=0)
    root = tmp_path_factory.mktemp("weights")
    return net, save_tiny(net, root / "unet", "unet"), save_tiny(net, root / "pipeline", "pipeline")


def ddpm(folder, **gan):
    """gan params of a ddpm started from ``folder``, used as it is unless ``gan`` says otherwise."""
    base = {"arch": "ddpm", "pretrained": str(folder), "steps": 0, "batch_size": 16, "sample_steps": 5}
    return params_with({"gan": {**base, "eval_samples": 20, "ema_decay": 0.0, **gan}}).gan


def held_out_loss(G, images) -> float:
    """The denoising loss on fixed images, timesteps and noise: comparable between models of one shape."""
    gen = torch.Generator().manual_seed(0)
    t = torch.randint(G.timesteps, (len(images),), generator=gen)
    noise = torch.randn((len(images), *G.model_shape), generator=gen)
    with torch.no_grad():
        return float(G.denoising_error(from_uint8(images), t, noise).mean())


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_either_folder_form_loads_offline_with_its_schedule(tiny, tmp_path):
    from diffusers import DDPMPipeline, DDPMScheduler

    net, unet_dir, pipeline_dir = tiny
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # set by ganaug.weights: nothing may be fetched
    # the flat layout of hub DDPM repos (google/ddpm-cifar10-32): the UNet and scheduler_config.json beside
    # model_index.json; here with another schedule than the default, which must be the one used
    flat = tmp_path / "flat"
    shutil.copytree(unet_dir, flat)
    cosine = DDPMScheduler(beta_schedule="squaredcos_cap_v2")
    cosine.save_pretrained(flat)
    DDPMPipeline(unet=net, scheduler=cosine).save_config(flat)  # model_index.json
    linear = DDPMScheduler(**SCHEDULE)  # what the tiny model learned, saved in the pipeline folder
    assert not torch.allclose(cosine.alphas_cumprod, linear.alphas_cumprod)
    for folder, schedule in ((unet_dir, linear), (pipeline_dir, linear), (flat, cosine)):
        G, D = build_networks(10, 1, 16, ddpm(folder).model_dump())
        assert same_weights(G.unet, net), folder
        assert G.model_shape == (CHANNELS, SIZE, SIZE) and G.z_dim == CHANNELS * SIZE * SIZE
        assert torch.allclose(G.alphas_cumprod, schedule.alphas_cumprod.float()), folder


def test_a_missing_or_wrong_folder_stops_in_one_line_naming_it(tiny, tmp_path):
    from transformers import CLIPConfig

    _, unet_dir, _ = tiny
    empty, clip, no_weights = tmp_path / "empty", tmp_path / "clip", tmp_path / "no-weights"
    empty.mkdir()
    CLIPConfig().save_pretrained(clip)
    no_weights.mkdir()
    shutil.copy(unet_dir / "config.json", no_weights)
    expected = r"\(expected a diffusers UNet2DModel or DDPM pipeline folder"
    cases = {
        tmp_path / "missing": f"gan.pretrained: {tmp_path / 'missing'}: not a folder {expected}",
        empty: f"gan.pretrained: {empty}: no config.json in it {expected}",
        clip: f"gan.pretrained: {clip / 'config.json'}: describes clip, not a UNet2DModel {expected}",
        no_weights: f"gan.pretrained: {no_weights}: not loadable as a UNet2DModel",
    }
    for folder, message in cases.items():
        with pytest.raises(GanaugError, match=message) as err:
            build_networks(10, 1, 16, ddpm(folder).model_dump())
        assert "\n" not in str(err.value)


def test_the_pretrained_unet_used_as_it_is_knows_held_out_digits(tiny, digits16):
    net, unet_dir, _ = tiny
    held_out = digits16[0][PRETRAINED_ON:]
    G = build_networks(10, 1, 16, ddpm(unet_dir).model_dump())[0].eval()
    torch.manual_seed(0)
    untrained = DiffusionGenerator(10, 1, 16, tiny_unet(CHANNELS, SIZE), SCHEDULE, 5).eval()
    learned, random = held_out_loss(G, held_out), held_out_loss(untrained, held_out)
    assert learned < 0.3 * random, (learned, random)


def test_conversion_to_and_from_the_models_size_and_channels(tiny, digits16):
    _, unet_dir, _ = tiny
    G, D = build_networks(10, 1, 16, ddpm(unet_dir, sample_steps=10).model_dump())
    G, D = G.eval(), D.eval()
    real = from_uint8(digits16[0][:6])
    to_model = G.to_model(real)
    assert to_model.shape == (6, CHANNELS, SIZE, SIZE) and torch.equal(to_model[:, 0], to_model[:, 2])  # gray -> RGB
    back = G.from_model(to_model)
    assert back.shape == real.shape and (back - real).abs().mean() < 0.1  # resized down and up: close, not equal
    assert convert(to_model, 1, SIZE).allclose(to_model[:, :1])  # RGB -> gray: the channel mean
    latents, errors = inverted(DiffusionSpace(G), digits16[0][:6], batch_size=6)
    assert latents.shape == (6, G.z_dim)
    with torch.no_grad():
        decoded, sampled = G(torch.from_numpy(latents)), G(torch.randn(6, G.z_dim, generator=torch.Generator()))
    assert decoded.shape == sampled.shape == real.shape and decoded.abs().max() <= 1
    random_error = float(((sampled - real) / 2).pow(2).mean())
    assert errors.mean() < 0.5 * random_error, (errors.mean(), random_error)  # inversion finds the image
    noise = torch.rand_like(real) * 2 - 1
    assert float(D.judge(real)[0].mean()) > float(D.judge(noise)[0].mean())  # the judge reads data images


def test_steps_0_saves_a_reference_and_load_gan_restores_it(tiny, digits16, tmp_path):
    net, _, pipeline_dir = tiny
    cfg = ddpm(pipeline_dir)
    evals = []

    def evaluate(images, labels):
        evals.append(images.shape)
        return {"fid": 12.5, "kid": 0.1, "diversity_ratio": 1.0, "label_agreement": float("nan")}

    images = digits16[0][:64]
    gan = train_gan(images, np.zeros(64, np.int64), 10, cfg, torch.device("cpu"), tmp_path / "ckpt", evaluate)
    assert gan.step == 0 and gan.ema is None and not (tmp_path / "ckpt").exists()  # nothing trained or saved
    assert evals == [(20, 16, 16, 1)] and gan.best == {"fid": 12.5, "step": 0}  # one FID, of data-size samples
    G, D = best_networks(gan, cfg)
    assert same_weights(G.unet, net)
    record = weights_record(cfg.model_dump())
    assert record.keys() == {"weights_md5"}
    config = {"classes": list("0123456789"), "channels": 1, "image_size": 16, "gan": relevant_config(cfg.model_dump())}
    out = tmp_path / "gan"
    out.mkdir()
    (out / "generator.safetensors").write_bytes(b"stale")  # a previous run's copy must not survive
    save_gan(out, G, D, {**config, **record}, by_reference=True)
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["by_reference"] and saved["gan"]["pretrained"] == str(pipeline_dir)
    G2, D2, loaded = load_gan(out)
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(G(z), G2(z))
    assert torch.equal(D.judge(G(z))[0], D2.judge(G(z))[0])
    # a pool made from it records the weights folder's md5, as its generator's and as the weights'
    assert provenance(out, loaded) == record  # kept by reference: the folder's md5 alone


def test_changed_or_missing_weights_make_load_gan_refuse(tiny, tmp_path):
    _, unet_dir, _ = tiny
    folder = shutil.copytree(unet_dir, tmp_path / "weights")
    cfg = ddpm(folder)
    G, D = build_networks(10, 1, 16, cfg.model_dump())
    config = {"classes": list("0123456789"), "channels": 1, "image_size": 16, "gan": relevant_config(cfg.model_dump())}
    save_gan(tmp_path / "gan", G, D, {**config, **weights_record(cfg.model_dump())}, by_reference=True)
    load_gan(tmp_path / "gan")
    weights = folder / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")  # still loadable: only the md5 can tell
    with pytest.raises(GanaugError, match=r"has changed since train_gan used it .*re-run `dvc repro train_gan`"):
        load_gan(tmp_path / "gan")
    shutil.rmtree(folder)
    with pytest.raises(GanaugError, match=rf"its weights folder {folder} \(gan.pretrained\) is missing"):
        load_gan(tmp_path / "gan")


def test_fine_tuning_changes_the_weights_and_lowers_the_loss(tiny, digits16, tmp_path):
    net, unet_dir, _ = tiny
    images = digits16[0][PRETRAINED_ON:]  # digits it was not pretrained on
    cfg = ddpm(unet_dir, steps=100, lr_g=2e-3, ckpt_every=1000)
    before = build_networks(10, 1, 16, cfg.model_dump())[0].eval()
    torch.manual_seed(0)
    gan = train_gan(images, np.zeros(len(images), np.int64), 10, cfg, torch.device("cpu"), tmp_path / "ckpt")
    after = gan.G.eval()
    assert not same_weights(after.unet, net) and same_weights(before.unet, net)
    start, end = held_out_loss(before, images), held_out_loss(after, images)
    assert end < 0.9 * start, (start, end)
    # fine-tuned weights are its own: saved as a copy, loaded over the folder's
    G, D = best_networks(gan, cfg)
    config = {"classes": list("0123456789"), "channels": 1, "image_size": 16, "gan": relevant_config(cfg.model_dump())}
    save_gan(tmp_path / "gan", G, D, {**config, **weights_record(cfg.model_dump())})
    assert same_weights(load_gan(tmp_path / "gan")[0].unet, after.unet)


def test_weights_params_are_checked_and_leave_other_generators_identity_alone(tiny, monkeypatch):
    from dataclasses import replace

    from ganaug.gan.archs import ARCHS

    _, unet_dir, _ = tiny
    cgan = params_with({"gan": {"pretrained": str(unet_dir)}}).gan.model_dump()
    for arch in ("cgan", "ddpm"):  # neither starts from weights without gan.pretrained
        with pytest.raises(GanaugError, match=r"gan.steps: 0 uses a generator as it is.*set gan.pretrained"):
            check_weights(params_with({"gan": {"arch": arch, "steps": 0}}).gan.model_dump())
    check_weights(ddpm(unet_dir).model_dump())
    with pytest.raises(GanaugError, match=r"gan.pretrained: gan.arch cgan does not start from weights \(.*ddpm"):
        check_weights(cgan)
    monkeypatch.setitem(ARCHS, "fixed", replace(ARCHS["ddpm"], name="fixed", trainable=False))
    with pytest.raises(GanaugError, match="gan.steps: gan.arch fixed is used as it is, never trained here"):
        check_weights({**cgan, "arch": "fixed", "steps": 5})
    check_weights({**cgan, "arch": "fixed", "steps": 0})
    # the cGAN's saved config and checkpoint fingerprint do not mention weights; a pretrained ddpm's do
    assert "pretrained" not in relevant_config(cgan) and weights_record(cgan) == {}
    assert relevant_config(ddpm(unet_dir).model_dump())["pretrained"] == str(unet_dir)


def test_an_experiment_run_from_a_pretrained_pool_is_tagged_with_the_weights_md5(tmp_path):
    from ganaug.experiment.run import weights_tag

    (tmp_path / "meta.json").write_text(json.dumps({"generator_md5": "a", "weights_md5": "b.dir"}))
    assert weights_tag(tmp_path) == {"input.gan_weights.md5": "b.dir"}
    (tmp_path / "meta.json").write_text(json.dumps({"generator_md5": "a"}))
    assert weights_tag(tmp_path) == {}


def test_a_weights_file_changed_under_dvc_marks_train_gan_changed(tiny, tmp_path):
    """In a git + DVC project: the weights folder `dvc add`ed and named by gan.pretrained, train_gan's lock
    recorded without running it (its inputs and outputs stand in), then one weights file changed."""
    from tests.project import dvc, new_project

    _, unet_dir, _ = tiny
    root = new_project(tmp_path / "project", {"gan": {"arch": "ddpm", "pretrained": "weights/tiny", "steps": 0}})
    shutil.copytree(unet_dir, root / "weights/tiny")
    dvc(root, "add", "weights/tiny")
    for stand_in in ("data/prepared", "models/scorer", "models/gan"):
        (root / stand_in).mkdir(parents=True)
        (root / stand_in / "x").write_text(stand_in)
    for report in ("metrics/gan.json", "gan/quality.csv", "gan/losses.csv", "gan/samples.png"):
        (root / "reports" / report).parent.mkdir(parents=True, exist_ok=True)
        (root / "reports" / report).write_text("{}")
    dvc(root, "commit", "-f", "train_gan")
    assert "up to date" in dvc(root, "status", "train_gan")
    weights = root / "weights/tiny/diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    status = dvc(root, "status", "train_gan")
    assert "train_gan:" in status and "changed deps" in status and "weights/tiny" in status, status
