"""Training sets of each experiment mode, built from a small on-disk project (digits), and one
real tracked run end to end."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from ganaug import paths
from ganaug.data.store import Split, save_split
from ganaug.errors import GanaugError
from ganaug.experiment import RunSpec, build_training_set, run_experiment
from ganaug.sampling.selection import save_selection
from ganaug.gan.pool import save_pool
from ganaug.params import parse_params
from ganaug.sampling.samplers import class_quotas, select
from ganaug.sampling.scores import Scores, load_scores
from tests.conftest import TINY

CLASSES = [str(c) for c in range(10)]


def make_params(**experiments):
    return parse_params({**TINY, "experiments": {"epochs": 2, **experiments}})


@pytest.fixture
def project(tmp_path, monkeypatch):
    """data/prepared (20 real/class), a 600-image pool with scores, a 60-image projection pool."""
    from sklearn.datasets import load_digits

    from ganaug.data.prepare import resize

    monkeypatch.chdir(tmp_path)
    d = load_digits()
    images = resize(np.rint(d.images * 255 / 16).astype(np.uint8)[..., None], 16, None)
    labels = d.target.astype(np.int64)
    rng = np.random.default_rng(0)

    def take(per_class, offset):
        idx = np.sort(np.concatenate([np.flatnonzero(labels == c)[offset : offset + per_class] for c in range(10)]))
        return Split(images[idx], labels[idx], np.array([f"digits-{i}" for i in idx]))

    for name, split in {"train": take(20, 0), "val": take(10, 20), "test": take(10, 30)}.items():
        save_split(paths.PREPARED / f"{name}.npz", split)
    (paths.PREPARED / "classes.json").write_text(json.dumps({
        "classes": CLASSES, "channels": 1, "image_size": 16, "counts": {"train": {c: 20 for c in CLASSES}}}))
    for name, n in (("pool", 600), ("projection", 60)):
        idx = rng.integers(0, len(labels), n)
        pool_labels = np.arange(n) % 10
        save_pool(paths.POOL if name == "pool" else paths.PROJECTION, images[idx], pool_labels, np.zeros((n, 4)), {})
        paths.SCORES.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"id": np.arange(n), "label": pool_labels, "confidence": rng.random(n).astype(np.float32),
                      "predicted": pool_labels, "entropy": np.zeros(n, np.float32), "realism": rng.normal(size=n).astype(np.float32),
                      }).to_parquet(paths.SCORES / f"{name}.parquet")
        probs = rng.dirichlet(np.ones(10), n).astype(np.float16)
        np.save(paths.SCORES / f"{name}_probs.npy", probs)
    return tmp_path


def real_split():
    from ganaug.data.store import load_split

    return load_split(paths.PREPARED / "train.npz")


@pytest.mark.parametrize("fraction, n_synthetic", [(0.2, 40), (0.5, 100), (1.0, 200)])
@pytest.mark.parametrize("imbalance", [None, 5])  # quotas that favour small classes must not apply here
def test_replacement_keeps_the_set_size(project, fraction, n_synthetic, imbalance):
    spec = RunSpec("replace", "cl-sam", str(fraction), seed=0)
    params = parse_params({**TINY, "data": {**TINY["data"], "imbalance": imbalance}, "experiments": {"epochs": 2}})
    real = real_split()
    keep = np.flatnonzero((real.labels != 0) | (np.cumsum(real.labels == 0) <= 10))  # class 0: 10 images, others 20
    real = Split(real.images[keep], real.labels[keep], real.ids[keep])
    data = build_training_set(spec, real, params)
    n_synthetic -= round(fraction * 10)  # class 0 has half as many to replace
    assert len(data.split) == 190 and data.n_real == 190 - n_synthetic and data.reference_size == 190
    assert np.bincount(data.split.labels, minlength=10).tolist() == [10] + [20] * 9  # per class too
    synthetic = data.split.ids[data.n_real :]
    assert len(synthetic) == n_synthetic and all(s.startswith("pool-") for s in synthetic)
    recorded = pd.read_parquet(spec.selection_path)  # the selection is recorded as ids, with scores
    assert sorted(recorded["id"]) == sorted(int(s.split("-")[1]) for s in synthetic)


def test_augment_reads_the_select_stage_output_and_refuses_a_stale_one(project):
    scores = load_scores(paths.SCORES, "pool")
    ids = select("cl-sam", scores, class_quotas(np.full(10, 20), 2.0), seed=0)
    save_selection(paths.SELECTED / "cl-sam-2.parquet", "cl-sam", "pool", scores, ids)
    data = build_training_set(RunSpec("augment", "cl-sam", "2", 0), real_split(), make_params())
    assert len(data.split) == 600 and data.n_real == 200 and data.weights is None and data.targets is None
    # the chosen images are the pool's, with the pool's labels
    pool_images = np.load(paths.POOL / "images.npy")
    np.testing.assert_array_equal(data.split.images[200:], pool_images[ids])
    stale = Scores(pd.DataFrame({"id": [9999], "label": [0], "confidence": [1.0], "realism": [0.0]}))
    save_selection(paths.SELECTED / "cl-sam-2.parquet", "cl-sam", "pool", stale, np.array([9999]))
    with pytest.raises(GanaugError, match="stale selection"):
        build_training_set(RunSpec("augment", "cl-sam", "2", 0), real_split(), make_params())


def test_missing_selection_names_the_stage_to_run(project):
    with pytest.raises(GanaugError, match="random-1.parquet: selection not found"):
        build_training_set(RunSpec("augment", "random", "1", 0), real_split(), make_params())


def test_count_with_confidence_weights_and_soft_labels(project):
    spec = RunSpec("count", "dapper", "50", 0)  # dapper: cl-sam over the projection pool
    data = build_training_set(spec, real_split(), make_params(synthetic_labels="confidence", synthetic_weight=0.5))
    assert len(data.split) == 250 and all(s.startswith("projection-") for s in data.split.ids[200:])
    conf = pd.read_parquet(spec.selection_path)["confidence"].to_numpy()
    np.testing.assert_allclose(data.weights[:200], 1.0)
    np.testing.assert_allclose(data.weights[200:], 0.5 * conf, rtol=1e-6)
    soft = build_training_set(spec, real_split(), make_params(synthetic_labels="soft"))
    assert soft.weights is None and soft.targets.shape == (250, 10)
    np.testing.assert_array_equal(soft.targets[:200].argmax(1), soft.split.labels[:200])  # real rows: one-hot
    probs = np.load(paths.SCORES / "projection_probs.npy").astype(np.float32)
    ids = pd.read_parquet(spec.selection_path)["id"].to_numpy()
    np.testing.assert_allclose(soft.targets[200:], probs[ids])


def test_low_data_arms_share_the_real_subset(project):
    params = make_params(lowdata_sampler="cr-sam")
    real = build_training_set(RunSpec("lowdata", "real", "1.0", 0, per_class=5), real_split(), params)
    synth = build_training_set(RunSpec("lowdata", "synthetic", "1.0", 3, per_class=5), real_split(), params)
    assert len(real.split) == 50 and real.reference_size == 50
    np.testing.assert_array_equal(real.split.ids, synth.split.ids[:50])  # same real images whatever the seed
    assert len(synth.split) == 100 and pd.read_parquet(RunSpec("lowdata", "synthetic", "1.0", 3, 5).selection_path)["sampler"].iloc[0] == "cr-sam"
    assert pd.read_parquet(RunSpec("lowdata", "real", "1.0", 0, 5).selection_path).empty


def test_run_spec_rejects_bad_input():
    with pytest.raises(GanaugError, match="unknown experiment mode 'augmnet'"):
        RunSpec("augmnet", "random", "1", 0)
    with pytest.raises(GanaugError, match="amount 'x1'"):
        RunSpec("augment", "random", "x1", 0)


def test_a_tracked_run_records_its_data(project, monkeypatch):
    scores = load_scores(paths.SCORES, "pool")
    save_selection(paths.SELECTED / "random-1.parquet", "random", "pool", scores,
                   select("random", scores, class_quotas(np.full(10, 20), 1.0), seed=0))
    spec = RunSpec("augment", "random", "1", seed=0)
    metrics = run_experiment(spec, make_params(finetune_epochs=1))
    assert metrics["n_real"] == 200 and metrics["n_synthetic"] == 200 and metrics["match"] == "steps"
    # match: steps -- as many steps as a real-only run: 2 epochs x 200 // 32, + 1 fine-tune epoch on real
    assert metrics["steps"] == 2 * 6 + 6
    saved = json.loads((spec.report_dir / "metrics.json").read_text())
    assert saved["sampler"] == "random" and saved["selection"] == "data/selected/random-1.parquet"
    history = pd.read_csv(spec.report_dir / "summary.csv")
    assert history["phase"].tolist() == ["train", "train", "finetune"]
    assert (spec.model_dir / "model.safetensors").is_file()
    run = mlflow.search_runs(experiment_names=["ganaug-tests"], output_format="list")[0]
    tags = run.data.tags
    assert (tags["mode"], tags["sampler"], tags["ratio"], tags["seed"]) == ("augment", "random", "1", "0")
    assert tags["dvc.stage"] == "train@random-1-0"  # the dvc.yaml stage that makes this run
    for name in ("data/prepared", "data/synthetic/pool", "data/selected/random-1.parquet"):
        assert len(tags[f"input.{name}.md5"].removesuffix(".dir")) == 32
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    again = run_experiment(spec, make_params(finetune_epochs=1), track=False)  # deterministic
    assert again["test_accuracy"] == metrics["test_accuracy"]
