"""The retrieval baseline (Geng et al. 2024): unlabelled digits labelled by their nearest training digit, in CLIP's
features (the tiny CLIP of tests.conftest) or the scorer's, are mostly right; the retrieval sampler keeps the most
similar of each class (the report's comparison with it: tests/test_report.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ganaug import paths
from ganaug.data.store import Split, save_split
from ganaug.sampling.retrieval import nearest
from ganaug.sampling.samplers import select
from ganaug.sampling.scores import Scores
from tests.conftest import TINY, write_params

CLASSES = [str(c) for c in range(10)]


def test_nearest_takes_the_label_of_the_most_cosine_similar_reference():
    reference = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
    labels, similarity, index = nearest(np.array([[3.0, 0.5], [0.1, 5.0], [-2.0, -1.9]]), reference, [4, 7, 9])
    assert labels.tolist() == [4, 7, 9] and index.tolist() == [0, 1, 2]
    np.testing.assert_allclose(similarity[0], 3 / np.hypot(3, 0.5), rtol=1e-6)  # cosine, not a dot product


@pytest.fixture
def project(tmp_path, monkeypatch, tiny_clip):
    """data/prepared: 300 labelled digits (train), the 797 digits the tiny CLIP never saw as unlabelled images; a
    scorer trained on the 300 for a few epochs; a plan in which a run uses retrieval. Returns the hidden labels."""
    import torch

    from ganaug.classify.models import create_classifier, save_classifier
    from ganaug.classify.train import Phase, fit
    from ganaug.device import seed_everything
    from tests.conftest import params_with

    monkeypatch.chdir(tmp_path)
    train = Split(tiny_clip.train_images[:300], tiny_clip.train_labels[:300], np.array([f"t{i}" for i in range(300)]))
    n = len(tiny_clip.labels)
    unlabelled = Split(tiny_clip.images, np.full(n, -1), np.array([f"u{i}" for i in range(n)]))
    save_split(paths.PREPARED / "train.npz", train)
    save_split(paths.PREPARED / "val.npz", Split(train.images[:50], train.labels[:50], train.ids[:50]))
    save_split(paths.PREPARED / "unlabelled.npz", unlabelled)
    meta = {"classes": CLASSES, "channels": 1, "image_size": 16, "unlabelled": {"source": "rest", "images": n}}
    (paths.PREPARED / "classes.json").write_text(json.dumps(meta))
    paths.PLAN.mkdir(parents=True)
    plan = {"stage": "retrieval", "needed_by": ["retrieval"], "readers": ["retrieval"]}
    (paths.PLAN / "retrieval.json").write_text(json.dumps(plan))

    seed_everything(0)
    params = params_with({**TINY, "train": {**TINY["train"], "epochs": 4}})
    model = create_classifier("resnet10t", 10, 1)
    _, norm = fit(model, Phase("train", train, params.train), train, 10, torch.device("cpu"))
    config = {"model": "resnet10t", "classes": CLASSES, "channels": 1, "mean": norm.mean, "std": norm.std}
    save_classifier(paths.SCORER, model, config)
    return tiny_clip


@pytest.mark.parametrize("features", ["clip", "scorer"])
def test_retrieval_labels_unlabelled_digits_mostly_right_and_its_sampler_takes_the_most_similar(
    project, features, capsys
):
    from ganaug.gan.pool_format import open_pool
    from ganaug.stages import retrieval

    clip_path = str(project.path) if features == "clip" else "weights/none"
    write_params(paths.PREPARED.parent.parent, {"clip": {"path": clip_path}})
    retrieval.run()
    assert f"in {features} features" in capsys.readouterr().out
    pool = open_pool(paths.RETRIEVAL)
    assert pool.meta["kind"] == "retrieval" and pool.meta["features"] == features and len(pool) == 797
    assert (features == "clip") == ("clip_md5" in pool.meta)
    truth = project.labels
    similarity = np.load(paths.RETRIEVAL / "similarity.npy")
    assert (pool.labels == truth).mean() > 0.7  # chance: 0.1
    assert np.load(paths.RETRIEVAL / "source_ids.npy")[5] == "u5" and (similarity <= 1 + 1e-5).all()

    table = pd.DataFrame({"id": np.arange(len(pool)), "label": pool.labels, "similarity": similarity})
    quota = np.minimum(np.bincount(pool.labels, minlength=10), 20)
    chosen = select("retrieval", Scores(table), quota, 0)
    for c in range(10):  # within each class, no image left out is more similar than one taken
        taken = np.isin(table["id"], chosen) & (table["label"] == c)
        left = ~np.isin(table["id"], chosen) & (table["label"] == c)
        assert not left.any() or table["similarity"][taken].min() >= table["similarity"][left].max()
    right = {
        name: (pool.labels[ids] == truth[ids]).mean() for name, ids in (("retrieval", chosen), ("all", slice(None)))
    }
    assert right["retrieval"] > 0.9 and right["retrieval"] >= right["all"], right


def test_retrieval_without_unlabelled_images_writes_an_empty_pool_saying_why(tmp_path, monkeypatch):
    from ganaug.gan.pool_format import open_pool
    from ganaug.stages import retrieval

    monkeypatch.chdir(tmp_path)
    write_params(tmp_path)
    paths.PREPARED.mkdir(parents=True)
    (paths.PREPARED / "classes.json").write_text(json.dumps({"classes": CLASSES, "channels": 1, "image_size": 16}))
    paths.PLAN.mkdir(parents=True)
    plan = {"stage": "retrieval", "needed_by": ["retrieval"], "readers": ["retrieval"]}
    (paths.PLAN / "retrieval.json").write_text(json.dumps(plan))
    retrieval.run()
    pool = open_pool(paths.RETRIEVAL)
    assert len(pool) == 0 and pool.images.shape[1:] == (16, 16, 1)
    assert pool.meta["skipped"].startswith("data.unlabelled is null")
    # the score stage reads an empty retrieval pool as it reads an empty pseudo-labelled one: no columns to carry
    from ganaug.stages.score import carried_columns

    assert carried_columns(pool, paths.RETRIEVAL) is None
