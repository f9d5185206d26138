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
from ganaug.experiment.plan import RunSpec, planned_runs
from ganaug.experiment.run import build_training_set, run_experiment
from ganaug.experiment.training import training_phases
from ganaug.gan.pool_format import save_pool
from tests.conftest import TINY, params_with

CLASSES = [str(c) for c in range(10)]


def make_params(**experiments):
    return params_with({**TINY, "experiments": {"epochs": 2, **experiments}})


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
    (paths.PREPARED / "classes.json").write_text(
        json.dumps({"classes": CLASSES, "channels": 1, "image_size": 16, "counts": {"train": {c: 20 for c in CLASSES}}})
    )
    for name, n in (("pool", 600), ("projection", 60)):
        idx = rng.integers(0, len(labels), n)
        pool_labels = np.arange(n) % 10
        save_pool(paths.POOL if name == "pool" else paths.PROJECTION, images[idx], pool_labels, np.zeros((n, 4)), {})
        paths.SCORES.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {
                "id": np.arange(n),
                "label": pool_labels,
                "confidence": rng.random(n).astype(np.float32),
                "predicted": pool_labels,
                "entropy": np.zeros(n, np.float32),
                "realism": rng.normal(size=n).astype(np.float32),
            }
        ).to_parquet(paths.SCORES / f"{name}.parquet")
        probs = rng.dirichlet(np.ones(10), n).astype(np.float16)
        np.save(paths.SCORES / f"{name}_probs.npy", probs)
    return tmp_path


def both(data):
    from ganaug.experiment.training import concat

    return concat(data.real, data.added)


def real_split():
    from ganaug.data.store import load_split

    return load_split(paths.PREPARED / "train.npz")


@pytest.mark.parametrize("fraction, n_synthetic", [(0.2, 40), (0.5, 100), (1.0, 200)])
@pytest.mark.parametrize("imbalance", [None, 5])  # quotas that favour small classes must not apply here
def test_replacement_keeps_the_set_size(project, fraction, n_synthetic, imbalance):
    spec = RunSpec("replace", "cl-sam", str(fraction), seed=0)
    params = params_with({**TINY, "data": {**TINY["data"], "imbalance": imbalance}, "experiments": {"epochs": 2}})
    real = real_split()
    keep = np.flatnonzero((real.labels != 0) | (np.cumsum(real.labels == 0) <= 10))  # class 0: 10 images, others 20
    real = Split(real.images[keep], real.labels[keep], real.ids[keep])
    data = build_training_set(spec, real, params)
    n_synthetic -= round(fraction * 10)  # class 0 has half as many to replace
    assert len(data.real) == 190 - n_synthetic and data.n_added == n_synthetic and data.reference_size == 190
    assert np.bincount(both(data).labels, minlength=10).tolist() == [10] + [20] * 9  # per class too
    synthetic = data.added.ids
    assert len(synthetic) == n_synthetic and all(s.startswith("pool-") for s in synthetic)
    recorded = pd.read_parquet(spec.selection_path)  # the selection is recorded as ids, with scores
    assert sorted(recorded["id"]) == sorted(int(s.split("-")[1]) for s in synthetic)


@pytest.mark.parametrize("balance", [True, False])
def test_a_naturally_imbalanced_set_gets_its_small_classes_topped_up_first(project, balance):
    """No data.imbalance: the real set is imbalanced by nature (class 0 has 10 images, the rest 20)."""
    real = real_split()
    keep = np.flatnonzero((real.labels != 0) | (np.cumsum(real.labels == 0) <= 10))
    real = Split(real.images[keep], real.labels[keep], real.ids[keep])
    params = params_with({**TINY, "select": {"balance": balance}, "experiments": {"epochs": 2}})
    data = build_training_set(RunSpec("augment", "random", "0.5", 0), real, params)  # 95 synthetic images
    synthetic = np.bincount(data.added.labels, minlength=10).tolist()
    if balance:  # water-filling to a common level of 28.5: class 0 gets 18.5, the others 8.5 (remainders to the first)
        assert synthetic == [19, 9, 9, 9, 9, 8, 8, 8, 8, 8]
    else:  # proportional: half as many for the class with half the images
        assert synthetic == [5] + [10] * 9


def test_augment_selects_per_seed_a_new_random_draw_and_the_same_ranking(project):
    params = make_params()
    draws = {}
    for sampler in ("random", "cl-sam"):
        for seed in (0, 1):
            spec = RunSpec("augment", sampler, "2", seed)
            data = build_training_set(spec, real_split(), params)
            assert len(data.real) == 200 and data.n_added == 400 and data.weights is None and data.targets is None
            ids = pd.read_parquet(spec.selection_path)["id"].to_numpy()  # recorded as the run's own selection
            assert spec.selection_path == paths.SELECTED / "augment" / f"{sampler}-2-s{seed}.parquet"
            pool_images = np.load(paths.POOL / "images.npy")  # the chosen images are the pool's, with its labels
            np.testing.assert_array_equal(data.added.images, pool_images[ids])
            draws[sampler, seed] = ids
    assert not np.array_equal(draws["random", 0], draws["random", 1])  # a stochastic sampler draws anew per seed
    np.testing.assert_array_equal(draws["cl-sam", 0], draws["cl-sam", 1])  # a ranking does not depend on the seed
    again = build_training_set(RunSpec("augment", "random", "2", 1), real_split(), params)  # reproducible
    np.testing.assert_array_equal(
        pd.read_parquet(RunSpec("augment", "random", "2", 1).selection_path)["id"], draws["random", 1]
    )
    assert again.n_added == 400


def test_count_with_confidence_weights_and_soft_labels(project):
    spec = RunSpec("count", "dapper", "50", 0)  # dapper: cl-sam over the projection pool
    params = make_params(synthetic_labels="confidence", synthetic_weight=0.5)
    data = build_training_set(spec, real_split(), params)
    assert data.n_added == 50 and all(s.startswith("projection-") for s in data.added.ids)
    conf = pd.read_parquet(spec.selection_path)["confidence"].to_numpy()
    np.testing.assert_allclose(data.weights, 0.5 * conf, rtol=1e-6)
    main = training_phases(spec, data, params)[0]  # real and synthetic joined once, into the main phase
    assert len(main.data) == 250 and main.data.ids[0] == data.real.ids[0]
    np.testing.assert_allclose(main.weights, np.concatenate([np.ones(200), 0.5 * conf]), rtol=1e-6)
    params = make_params(synthetic_labels="soft")
    soft = build_training_set(spec, real_split(), params)
    assert soft.weights is None and soft.targets.shape == (50, 10)
    probs = np.load(paths.SCORES / "projection_probs.npy").astype(np.float32)
    ids = pd.read_parquet(spec.selection_path)["id"].to_numpy()
    np.testing.assert_allclose(soft.targets, probs[ids])
    main = training_phases(spec, soft, params)[0]
    assert main.weights is None and main.targets.shape == (250, 10)
    np.testing.assert_array_equal(main.targets[:200].argmax(1), soft.real.labels)  # real rows: one-hot
    np.testing.assert_allclose(main.targets[200:], probs[ids])


def test_a_run_on_clip_scores_keeps_what_clip_labels_as_its_own_and_carries_the_clip_weights_md5(project):
    from ganaug.weights import weights_md5

    folder = project / "weights/clip"  # the run reads CLIP's scores, not the model: any folder's md5 will do
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"clip weights")
    table = pd.read_parquet(paths.SCORES / "pool.parquet")
    margin = np.random.default_rng(1).normal(size=len(table)).astype(np.float32)
    clip_label = np.where(margin > 0, table["label"], (table["label"] + 1) % 10)
    table.assign(clip_label=clip_label, clip_margin=margin).to_parquet(paths.SCORES / "pool.parquet")
    spec = RunSpec("augment", "clip", "0.5", seed=0)
    metrics = run_experiment(
        spec, params_with({**TINY, "clip": {"path": "weights/clip"}, "experiments": {"epochs": 1}})
    )
    chosen = pd.read_parquet(spec.selection_path)
    assert len(chosen) == 100 and (chosen["clip_label"] == chosen["label"]).all() and (chosen["clip_margin"] > 0).all()
    tags = mlflow.search_runs(experiment_names=["ganaug-tests"], output_format="list")[0].data.tags
    assert tags["input.clip_weights.md5"] == metrics["inputs"]["clip_weights"] == weights_md5(folder)


def test_the_clip_and_retrieval_samplers_refuse_in_one_line_without_their_inputs(project):
    from ganaug.gan.pool_format import save_empty_pool

    with pytest.raises(GanaugError) as err:  # no CLIP was given: the pool's scores have no CLIP columns
        build_training_set(RunSpec("augment", "clip", "1", 0), real_split(), make_params())
    assert str(err.value).startswith("sampler clip: the score table has no clip_margin column; set clip.path")
    save_empty_pool(paths.RETRIEVAL, 16, 1, {"kind": "retrieval", "skipped": "data.unlabelled is null: no images"})
    with pytest.raises(GanaugError) as err:
        build_training_set(RunSpec("augment", "retrieval", "1", 0), real_split(), make_params())
    line = str(err.value)
    assert (
        line.startswith("sampler retrieval: there is no retrieval pool (data.unlabelled is null") and "\n" not in line
    )
    assert line.endswith("set data.unlabelled")


def test_run_spec_rejects_bad_input():
    with pytest.raises(GanaugError, match="unknown experiment mode 'augmnet'"):
        RunSpec("augmnet", "random", "1", 0)
    with pytest.raises(GanaugError, match="amount 'x1'"):
        RunSpec("augment", "random", "x1", 0)


def test_a_tracked_run_records_its_data(project, monkeypatch):
    spec = RunSpec("augment", "random", "1", seed=0)
    metrics = run_experiment(spec, make_params(finetune_epochs=1))
    assert metrics["n_real"] == 200 and metrics["n_synthetic"] == 200 and metrics["recipe"]["match"] == "steps"
    # match: steps -- as many steps as a real-only run: 2 epochs x 200 // 32, + 1 fine-tune epoch on real
    assert metrics["steps"] == 2 * 6 + 6
    saved = json.loads((spec.report_dir / "metrics.json").read_text())
    assert saved["method"] == "random" and saved["selection"] == "data/selected/augment/random-1-s0.parquet"
    assert saved["recipe"]["finetune_epochs"] == 1 and saved["inputs"]["data/prepared"].endswith(".dir")
    # no CLIP given (clip.path: weights/none): the run's inputs are its data, pool and selection only
    assert set(saved["inputs"]) == {"data/prepared", "data/synthetic/pool", "data/selected/augment/random-1-s0.parquet"}
    history = pd.read_csv(spec.report_dir / "summary.csv")
    assert history["phase"].tolist() == ["train", "train", "finetune"]
    assert (spec.model_dir / "model.safetensors").is_file()
    run = mlflow.search_runs(experiment_names=["ganaug-tests"], output_format="list")[0]
    tags = run.data.tags
    assert (tags["mode"], tags["method"], tags["amount"], tags["seed"]) == ("augment", "random", "1", "0")
    assert tags["dvc.stage"] == "augment@random-1-0"  # the dvc.yaml stage that makes this run
    for name in ("data/prepared", "data/synthetic/pool", "data/selected/augment/random-1-s0.parquet"):
        assert len(tags[f"input.{name}.md5"].removesuffix(".dir")) == 32
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    again = run_experiment(spec, make_params(finetune_epochs=1), track=False)  # deterministic
    assert again["test_accuracy"] == metrics["test_accuracy"]


@pytest.mark.parametrize(
    "recipe, baseline_budget", [({"finetune_epochs": 1}, "0"), ({"match": "real_epochs", "baseline_at": [0, 1]}, "1")]
)
def test_compared_rows_train_for_the_same_steps(project, recipe, baseline_budget):
    """Real-only gets the augmented rows' fine-tune phase; under real_epochs a real-only row at the 1x budget."""
    params = make_params(ratios=[1], **recipe)
    base = run_experiment(RunSpec("baseline", "real", baseline_budget, 0), params, track=False)
    aug = run_experiment(RunSpec("augment", "cl-sam", "1", 0), params, track=False)
    assert base["steps"] == aug["steps"] and base["n_synthetic"] == 0 and aug["n_synthetic"] == 200
    if recipe.get("match") == "real_epochs":
        assert aug["steps"] == 2 * (400 // 32)  # 2 epochs over real + synthetic
        own = run_experiment(RunSpec("baseline", "real", "0", 0), params, track=False)
        assert own["steps"] == 2 * (
            200 // 32
        )  # the real set's own budget: fewer steps, compared with nothing augmented
    else:
        history = pd.read_csv(RunSpec("baseline", "real", "0", 0).report_dir / "summary.csv")
        assert history["phase"].tolist() == ["train", "train", "finetune"]


def test_planned_runs_follow_the_params(tiny_params):
    params = make_params(
        samplers=["random", "cl-sam"],
        ratios=[1, 2],
        seeds=[0, 3],
        baselines=["real", "rotate"],
        replace=[0.5],
        counts=[30],
    )
    stages = [spec.dvc_stage for spec in planned_runs(params)]
    assert len(stages) == 2 * 2 + 2 * 2 * 2 + 2 + 2 and len(set(stages)) == len(stages)
    assert {"baseline@rotate-0-3", "augment@cl-sam-2-3", "replace@0.5-0", "count@30-3"} <= set(stages)


def test_replace_rows_fine_tune_as_long_as_real_only(project):
    params = make_params(finetune_epochs=1)
    base = run_experiment(RunSpec("baseline", "real", "0", 0), params, track=False)
    half = run_experiment(RunSpec("replace", "cl-sam", "0.5", 0), params, track=False)
    assert (
        half["steps"] == base["steps"] == 2 * 6 + 6
    )  # 100 real images left, fine-tuned at the real set's 6 steps per epoch
    synthetic_only = run_experiment(
        RunSpec("replace", "cl-sam", "1.0", 0), params, track=False
    )  # no real image to fine-tune on
    assert (
        synthetic_only["n_real"] == 0 and synthetic_only["steps"] == 2 * 6
    )  # fewer steps: the report will not compare it


def test_rotated_copies_baseline_adds_one_rotated_copy_per_image_and_trains_unaugmented(project):
    from ganaug.experiment.variants import VARIANTS

    def baseline_augment(variant, augment, exp):
        return augment if VARIANTS[variant].augment is None else VARIANTS[variant].augment(augment, exp)

    params = make_params()
    real = real_split()
    spec = RunSpec("baseline", "rotated-copies", "0", 0)
    data = build_training_set(spec, real, params)
    assert len(data.real) == 200 and data.n_added == 200 and data.selection is None
    copies = data.added.images
    np.testing.assert_array_equal(data.added.labels, real.labels)  # a rotated image keeps its label
    assert all(i.startswith("rotated-") for i in data.added.ids)
    changed = (copies != real.images).reshape(200, -1).any(1)
    assert changed.mean() > 0.9  # U(0, 45) degrees: almost every copy moved (0 degrees is measure zero)
    assert copies.mean() <= real.images.mean() + 1e-6  # rotation into black corners never adds ink
    again = build_training_set(spec, real, params).added.images
    other = build_training_set(RunSpec("baseline", "rotated-copies", "0", 1), real, params).added.images
    np.testing.assert_array_equal(again, copies)  # seeded by the run's seed
    assert not np.array_equal(other, copies)
    for variant in ("plain", "rotated-copies"):  # paper 004's comparison: both without online augmentation
        aug = baseline_augment(variant, params.train.augment, params.experiments)
        assert (aug.hflip, aug.crop_padding, aug.rotate_degrees) == (False, 0, 0)
    assert baseline_augment("rotate", params.train.augment, params.experiments).rotate_degrees == 15
    assert baseline_augment("real", params.train.augment, params.experiments) == params.train.augment
    run = run_experiment(spec, params, track=False)
    assert (
        run["n_synthetic"] == 200
        and run["steps"] == run_experiment(RunSpec("baseline", "real", "0", 0), params, track=False)["steps"]
    )


def test_own_mode_trains_on_everything_the_agent_keeps(project):
    keep = np.random.default_rng(3).random(600).astype(np.float32)
    paths.RL_KEEP.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": np.arange(600), "keep_prob": keep}).to_parquet(paths.RL_KEEP)
    spec = RunSpec("own", "rl", "own", 0)
    assert spec.dvc_stage == "own@rl-0" and spec.key == "rl-own-s0"
    data = build_training_set(spec, real_split(), make_params(own=["rl"]))
    chosen = pd.read_parquet(spec.selection_path)["id"].to_numpy()
    np.testing.assert_array_equal(chosen, np.flatnonzero(keep > 0.5))  # its size is its own: no quota
    assert data.n_added == len(chosen) and len(data.real) == 200
    with pytest.raises(GanaugError, match="mode own takes 'own'"):
        RunSpec("own", "rl", "1", 0)
    assert [s.dvc_stage for s in planned_runs(make_params(own=["rl"], seeds=[0, 1])) if s.mode == "own"] == [
        "own@rl-0",
        "own@rl-1",
    ]


def uneven(real):
    """Class 0 keeps 5 images, class 1 keeps 10, the rest all 20: a small long tail."""
    rank = np.array([np.sum(real.labels[: i + 1] == real.labels[i]) for i in range(len(real))])
    keep = np.flatnonzero(rank <= np.where(real.labels == 0, 5, np.where(real.labels == 1, 10, 20)))
    return Split(real.images[keep], real.labels[keep], real.ids[keep])


@pytest.mark.parametrize("sampler", ["random", "cl-sam", "uncertainty"])
def test_top_up_fills_every_class_to_the_largest_one_with_any_sampler(project, sampler):
    real = uneven(real_split())
    data = build_training_set(RunSpec("augment", sampler, "topup", 0), real, make_params(ratios=["topup"]))
    assert np.bincount(data.added.labels, minlength=10).tolist() == [15, 10] + [0] * 8
    assert np.bincount(both(data).labels, minlength=10).tolist() == [20] * 10  # real + synthetic: balanced
    spec = RunSpec("augment", sampler, "topup", 0)
    assert spec.dvc_stage == f"augment@{sampler}-topup-0" and spec.key == f"{sampler}-topup-s0"
    with pytest.raises(GanaugError, match="use match: steps"):
        make_params(ratios=["topup"], match="real_epochs", baseline_at=[0])


def test_long_tail_baselines_draw_class_balanced_batches_and_adjust_logits(project):
    from ganaug.classify.train import batch_order, logit_adjustment

    labels = uneven(real_split()).labels
    rng = np.random.default_rng(0)
    drawn = np.bincount(labels[batch_order(rng, labels, 400, 32, class_balanced=True)], minlength=10) / (400 * 32)
    assert np.allclose(drawn, 0.1, atol=0.01)  # every class a tenth of the draws, class 0 (5 images) included
    plain = np.bincount(labels[batch_order(rng, labels, 400, 32, class_balanced=False)], minlength=10) / (400 * 32)
    assert plain[0] == pytest.approx(5 / len(labels), abs=0.005)  # without it, by frequency
    offsets = logit_adjustment(labels, 10, 1.0)
    assert offsets[0] == pytest.approx(np.log(5 / len(labels))) and offsets[0] < offsets[1] < offsets[2]


@pytest.mark.parametrize(
    "variant, option", [("resample", {"class_balanced": True}), ("logit-adjust", {"logit_adjust": 1.0})]
)
def test_a_long_tail_baseline_keeps_its_treatment_in_both_phases(project, monkeypatch, variant, option):
    import ganaug.classify.run as run_module

    calls = []
    real_fit = run_module.fit

    def spy(model, phase, *args, **kwargs):
        calls.append({k: getattr(phase, k) for k in ("class_balanced", "logit_adjust", "head_only")})
        return real_fit(model, phase, *args, **kwargs)

    monkeypatch.setattr(run_module, "fit", spy)
    run_experiment(
        RunSpec("baseline", variant, "0", 0), make_params(baselines=[variant], finetune_epochs=1), track=False
    )
    assert len(calls) == 2 and all(c.items() >= option.items() for c in calls)  # main phase and real fine-tune
    calls.clear()
    run_experiment(RunSpec("baseline", "real", "0", 0), make_params(finetune_epochs=1), track=False)
    assert calls == [{"class_balanced": False, "logit_adjust": 0.0, "head_only": False}] * 2  # plain real-only: neither


def test_the_resampling_baseline_raises_the_rare_class_accuracy(project):
    """Class 0 with 2 real images of 182: a plain run hardly predicts it, the class-balanced one does."""
    from ganaug.classify.models import create_classifier
    from ganaug.classify.train import Phase, evaluate, fit
    from ganaug.data.store import load_split

    real = real_split()
    rank = np.array([np.sum(real.labels[: i + 1] == real.labels[i]) for i in range(len(real))])
    keep = np.flatnonzero((real.labels != 0) | (rank <= 2))
    real = Split(real.images[keep], real.labels[keep], real.ids[keep])
    test = load_split(paths.PREPARED / "test.npz")
    cfg = make_params().train.model_copy(update={"epochs": 6})
    rare = {}
    for balanced in (False, True):
        model = create_classifier(cfg.model, 10, 1)
        phase = Phase("train", real, cfg, class_balanced=balanced)
        _, norm = fit(model, phase, test, 10, __import__("torch").device("cpu"))
        rare[balanced] = evaluate(model, test, norm, __import__("torch").device("cpu"), 10)["per_class_accuracy"][0]
    assert rare[True] > rare[False] + 0.2, rare


@pytest.mark.parametrize("recipe", ["mix", "pretrain", "head-refit"])
def test_every_recipe_trains_the_real_only_steps_and_ends_on_real_images(project, recipe):
    import torch

    from ganaug.classify.models import load_classifier

    params = make_params(ratios=[1], finetune_epochs=1, recipe=recipe)
    base = run_experiment(RunSpec("baseline", "real", "0", 0), params, track=False)
    aug = run_experiment(RunSpec("augment", "cl-sam", "1", 0), params, track=False)
    assert base["steps"] == aug["steps"] == 2 * 6 + 6 and base["recipe"]["recipe"] == recipe
    history = pd.read_csv(RunSpec("augment", "cl-sam", "1", 0).report_dir / "summary.csv")
    assert history["phase"].tolist() == ["train", "train", "finetune"]
    if recipe == "pretrain":  # the main phase saw only synthetic images: its train accuracy is on the pool
        assert aug["n_train"] == 200
    if recipe == "head-refit":  # the refit moves only the head: compare with the same run without a refit
        refit, _ = load_classifier(RunSpec("augment", "cl-sam", "1", 0).model_dir)
        mixed = run_experiment(
            RunSpec("augment", "cl-sam", "1", 0), make_params(ratios=[1], finetune_epochs=0), track=False
        )
        assert mixed["steps"] == 2 * 6
        plain, _ = load_classifier(RunSpec("augment", "cl-sam", "1", 0).model_dir)
        head = {f"{refit.default_cfg['classifier']}.{k}" for k in refit.get_classifier().state_dict()}
        for (name, a), b in zip(refit.state_dict().items(), plain.state_dict().values()):
            if name in head:
                assert not torch.equal(a, b), name
            else:
                assert torch.equal(a, b), name  # backbone and its BatchNorm statistics untouched by the refit
    with pytest.raises(GanaugError, match="finetune_epochs > 0"):
        make_params(recipe="pretrain") if recipe == "mix" else make_params(recipe=recipe, finetune_epochs=0)
