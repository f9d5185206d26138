"""The timm classifier: augmentation, local pretrained weights, training, determinism, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from ganaug.classify.augment import augment_batch, build_augment
from ganaug.classify.loader import WORKERS_ENV, AugmentedBatches, batch_loader, loader_workers
from ganaug.classify.models import create_classifier, load_classifier, save_classifier
from ganaug.classify.normalize import Normalizer
from ganaug.classify.train import Phase, evaluate, fit, predict_logits
from ganaug.data.prepare import prepare
from ganaug.data.sources import digits
from ganaug.data.store import load_split
from ganaug.device import seed_everything
from ganaug.errors import GanaugError
from tests.conftest import params_with


@pytest.fixture(scope="module")
def digit_splits(tmp_path_factory):
    from tests.conftest import TINY

    root = tmp_path_factory.mktemp("digits")
    params = params_with(TINY).data
    digits.fetch(root / "raw", params)
    prepare(root / "raw", root / "prepared", params)
    return tuple(load_split(root / "prepared" / f"{s}.npz") for s in ("train", "val", "test"))


def test_augment_keeps_shape_and_dtype_and_changes_pixels():
    cfg = params_with({"train": {"augment": {"hflip": True, "crop_padding": 2, "rotate_degrees": 15}}}).train
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 1), dtype=np.uint8)
    out = augment_batch(build_augment(cfg.augment, 16, seed=0), images)
    assert out.shape == images.shape and out.dtype == np.uint8 and not np.array_equal(out, images)
    off = params_with({"train": {"augment": {"hflip": False, "crop_padding": 0, "rotate_degrees": 0}}}).train
    assert build_augment(off.augment, 16, seed=0) is None


def test_loader_batches_are_the_same_with_any_number_of_workers(monkeypatch):
    """Batch k is a function of (seed, k): the same from 0 or 2 worker processes, augmented (not the raw
    images), different for another seed, and in the given order."""
    cfg = params_with({"train": {"augment": {"hflip": True, "crop_padding": 2}}}).train
    images = np.random.default_rng(0).integers(0, 256, (40, 12, 12, 3), dtype=np.uint8)
    order = np.random.default_rng(1).permutation(40)[:36].reshape(6, 6)
    cpu = torch.device("cpu")

    def batches(workers, seed=0):
        return list(batch_loader(AugmentedBatches(images, order, cfg.augment, seed), cpu, workers))

    inline, two = batches(0), batches(2)
    for (x0, i0), (x2, i2), row in zip(inline, two, order, strict=True):
        assert torch.equal(x0, x2) and torch.equal(i0, i2)
        assert i0.tolist() == sorted(row) and x0.dtype == torch.uint8
    assert not all(torch.equal(x, torch.from_numpy(images[i.numpy()])) for x, i in inline)
    assert not all(torch.equal(x, y) for (x, _), (y, _) in zip(inline, batches(0, seed=1), strict=True))
    monkeypatch.setenv(WORKERS_ENV, "two")
    with pytest.raises(GanaugError, match="GANAUG_LOADER_WORKERS=two: expected a whole number"):
        loader_workers(cpu)
    monkeypatch.delenv(WORKERS_ENV)
    assert loader_workers(cpu) == 0  # on the CPU workers would take the training's cores


def test_unknown_model_and_missing_weights_are_named(tmp_path):
    with pytest.raises(GanaugError, match="unknown timm model 'resnet9000'"):
        create_classifier("resnet9000", 10, 1)
    with pytest.raises(GanaugError, match="weights file .*missing.safetensors' not found"):
        create_classifier("resnet10t", 10, 1, str(tmp_path / "missing.safetensors"))


def test_pretrained_weights_load_from_a_local_file(tmp_path):
    """An RGB ImageNet-shaped checkpoint adapts to 1-channel input and a new 10-class head."""
    source = timm.create_model("resnet10t", num_classes=1000, in_chans=3)
    weights = tmp_path / "resnet10t.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(weights))
    model = create_classifier("resnet10t", 10, 1, str(weights))
    assert torch.allclose(model.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    stem = model.conv1[0].weight if isinstance(model.conv1, torch.nn.Sequential) else model.conv1.weight
    assert stem.shape[1] == 1 and model.get_classifier().out_features == 10


def test_training_on_digits_beats_chance_and_is_deterministic(digit_splits, tiny_params, monkeypatch):
    """The second run reads its batches through 2 loader worker processes, the first in this process."""
    train, val, test = digit_splits
    assert tiny_params.train.augment.crop_padding > 0  # else the workers would have nothing random to do
    results = []
    for workers in ("0", "2"):
        monkeypatch.setenv(WORKERS_ENV, workers)
        seed_everything(0)
        model = create_classifier("resnet10t", 10, 1)
        history, norm = fit(model, Phase("train", train, tiny_params.train), val, 10, torch.device("cpu"))
        results.append((history, evaluate(model, test, norm, torch.device("cpu"), 10)))
    (history, metrics), (history2, metrics2) = results
    assert len(history) == tiny_params.train.epochs
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert metrics["accuracy"] > 0.6  # chance is 0.1
    assert [r["val_loss"] for r in history] == [r["val_loss"] for r in history2]
    assert metrics["accuracy"] == metrics2["accuracy"]
    assert metrics["confusion"].sum() == len(test)


def test_saved_classifier_reloads_to_the_same_predictions(tmp_path, digit_splits):
    train = digit_splits[0]
    model = create_classifier("resnet10t", 10, 1).eval()
    norm = Normalizer.fit(train.images)
    save_classifier(tmp_path, model, {"model": "resnet10t", "classes": [str(i) for i in range(10)], "channels": 1})
    loaded, config = load_classifier(tmp_path)
    cpu = torch.device("cpu")
    assert torch.equal(
        predict_logits(model, train.images[:16], norm, cpu), predict_logits(loaded, train.images[:16], norm, cpu)
    )
    (tmp_path / "model.safetensors").write_bytes(b"corrupt")
    with pytest.raises(GanaugError, match="model.safetensors: does not hold resnet10t weights"):
        load_classifier(tmp_path)
