"""Unlabelled images (data.unlabelled): the rest of a source or a folder, never overlapping the test split."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganaug.data.prepare import prepare
from ganaug.data.sources import digits
from ganaug.data.store import load_split
from ganaug.errors import GanaugError
from tests.conftest import TINY, params_with


def data_params(**data):
    return params_with({**TINY, "data": {**TINY["data"], **data}}).data


def test_rest_is_every_image_not_drawn_as_train_val_or_test_without_labels(tmp_path):
    params = data_params(unlabelled="rest")
    digits.fetch(tmp_path / "raw", params)
    summary = prepare(tmp_path / "raw", tmp_path / "prepared", params)
    splits = {s: load_split(tmp_path / "prepared" / f"{s}.npz") for s in ("train", "val", "test", "unlabelled")}
    unlabelled = splits["unlabelled"]
    assert (unlabelled.labels == -1).all()
    labelled_ids = set(np.concatenate([splits[s].ids for s in ("train", "val", "test")]))
    assert not labelled_ids & set(unlabelled.ids)  # no labelled image, above all no test image, is in it
    dropped = sum(summary["unlabelled"].get("dropped", {}).values())
    assert len(unlabelled) + dropped + len(labelled_ids) == 1797  # every digit lands somewhere
    assert summary["unlabelled"]["images"] == len(unlabelled) > 800
    # the test split and the labelled splits are those of a run without unlabelled images
    plain = prepare(tmp_path / "raw", tmp_path / "plain", data_params())
    assert plain["counts"] == summary["counts"] and "unlabelled" not in plain
    for s in ("train", "val", "test"):
        assert (load_split(tmp_path / "plain" / f"{s}.npz").ids == splits[s].ids).all()

    capped = prepare(tmp_path / "raw", tmp_path / "capped", data_params(unlabelled="rest", unlabelled_max=100))
    assert capped["unlabelled"]["images"] == 100
    assert set(load_split(tmp_path / "capped" / "unlabelled.npz").ids) <= set(unlabelled.ids)


def test_a_folder_of_unlabelled_images_drops_test_twins_and_repeats_and_counts_them(tmp_path):
    params = data_params()
    digits.fetch(tmp_path / "raw", params)
    prepare(tmp_path / "raw", tmp_path / "labelled", params)
    test = load_split(tmp_path / "labelled" / "test.npz")
    train = load_split(tmp_path / "labelled" / "train.npz")
    folder = tmp_path / "unlabelled"
    (folder / "deep" / "er").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(20):  # new images, at the prepared size so their pixels survive reading unchanged
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), "L").save(folder / "deep" / f"new{i}.png")
    Image.fromarray(test.images[0, ..., 0], "L").save(folder / "deep" / "er" / "test-twin.png")
    Image.fromarray(train.images[0, ..., 0], "L").save(folder / "train-twin.png")
    Image.fromarray(np.asarray(Image.open(folder / "deep" / "new0.png"))).save(folder / "repeat.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"ignored: hidden")

    summary = prepare(
        tmp_path / "raw", tmp_path / "prepared", data_params(unlabelled="folder", unlabelled_root=str(folder))
    )["unlabelled"]
    assert summary["images"] == 20
    assert summary["dropped"] == {"same_as_test": 1, "same_as_labelled": 1, "repeated": 1}
    assert summary["ignored"] == {".txt": 1}
    unlabelled = load_split(tmp_path / "prepared" / "unlabelled.npz")
    assert unlabelled.images.shape == (20, 16, 16, 1)
    assert not any("twin" in i for i in unlabelled.ids)


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("data/no-images", "is the placeholder"),
        ("missing", "folder '.*missing' not found"),
        ("empty", "holds no images"),
    ],
)
def test_a_bad_unlabelled_folder_is_named_in_one_line(tmp_path, root, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    params = data_params(
        unlabelled="folder", unlabelled_root=root if root == "data/no-images" else str(tmp_path / root)
    )
    digits.fetch(tmp_path / "raw", params)
    with pytest.raises(GanaugError, match=f"data.unlabelled_root: .*{message}"):
        prepare(tmp_path / "raw", tmp_path / "prepared", params)


def test_an_unreadable_unlabelled_image_is_named_or_skipped(tmp_path):
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    Image.fromarray(np.full((16, 16), 7, np.uint8), "L").save(folder / "fine.png")
    (folder / "broken.jpg").write_text("not a jpeg")
    digits.fetch(tmp_path / "raw", data_params())
    with pytest.raises(GanaugError, match="broken.jpg: unreadable or corrupt image"):
        prepare(tmp_path / "raw", tmp_path / "p1", data_params(unlabelled="folder", unlabelled_root=str(folder)))
    summary = prepare(
        tmp_path / "raw",
        tmp_path / "p2",
        data_params(unlabelled="folder", unlabelled_root=str(folder), skip_corrupt=True),
    )["unlabelled"]
    assert summary["images"] == 1 and summary["skipped_corrupt"] == 1


def test_pseudo_labels_from_a_trained_scorer_are_mostly_right_and_its_sampler_keeps_the_surest(tmp_path):
    """The scorer labels the unlabelled digits; the pseudo-label sampler's picks (the most confident of each
    class) are more often right than the same number drawn at random from the pseudo-labelled pool."""
    import pandas as pd
    import torch

    from ganaug.classify.models import create_classifier
    from ganaug.classify.train import Phase, fit
    from ganaug.device import seed_everything
    from ganaug.metrics.features import ClassifierFeatures
    from ganaug.sampling.pseudo import predict
    from ganaug.sampling.samplers import select
    from ganaug.sampling.scores import Scores

    # a scorer trained briefly, so that it makes mistakes a sampler can avoid
    params = params_with(
        {**TINY, "data": {**TINY["data"], "unlabelled": "rest"}, "train": {**TINY["train"], "epochs": 2}}
    )
    digits.fetch(tmp_path / "raw", params.data)
    prepare(tmp_path / "raw", tmp_path / "prepared", params.data)
    train, val, unlabelled = (load_split(tmp_path / "prepared" / f"{s}.npz") for s in ("train", "val", "unlabelled"))
    raw = digits.load(tmp_path / "raw", params.data)
    truth = pd.Series(raw.labels, index=raw.ids)[unlabelled.ids].to_numpy()

    seed_everything(0)
    model = create_classifier("resnet10t", 10, 1)
    cpu = torch.device("cpu")
    _, norm = fit(model, Phase("train", train, params.train), val, 10, cpu)
    extractor = ClassifierFeatures(model, norm)
    labels = predict(unlabelled.images, extractor, cpu, batch_size=128)
    assert 0.4 < (labels == truth).mean() < 0.95  # chance is 0.1

    with torch.no_grad():
        probs = extractor.features_and_logits(torch.from_numpy(unlabelled.images).permute(0, 3, 1, 2))[1].softmax(1)
    table = pd.DataFrame({"id": np.arange(len(labels)), "label": labels, "confidence": probs.max(1).values.numpy()})
    quota = np.minimum(np.bincount(labels, minlength=10), 30)
    wrong = {
        name: (labels[ids] != truth[ids]).mean()
        for name, ids in ((n, select(n, Scores(table), quota, 0)) for n in ("pseudo-label", "random"))
    }
    assert wrong["pseudo-label"] < 0.5 * wrong["random"], wrong
