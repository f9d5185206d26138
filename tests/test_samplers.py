"""Samplers on hand-made score tables: exact ids, quotas, deterministic ties; quotas; scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import timm
import torch

from ganaug.classify.normalize import Normalizer
from ganaug.errors import GanaugError
from ganaug.gan.networks import Discriminator
from ganaug.metrics.features import ClassifierFeatures
from ganaug.sampling.samplers import SAMPLERS, Sampler, class_quotas, k_center_greedy, select, top_k_per_class
from ganaug.sampling.scores import Scores, load_scores, score_pool
from tests.conftest import params_with


def table(**cols) -> Scores:
    n = len(cols["label"])
    base = {
        "id": np.arange(100, 100 + n),
        "confidence": np.zeros(n),
        "predicted": np.zeros(n, int),
        "entropy": np.zeros(n),
        "realism": np.zeros(n),
    }
    return Scores(pd.DataFrame({**base, **cols}))


# class 0: ids 100-103, class 1: ids 104-107
SIX = table(
    label=[0, 0, 0, 0, 1, 1, 1, 1],
    confidence=[0.9, 0.2, 0.9, 0.5, 0.1, 0.8, 0.6, 0.7],
    realism=[-1.0, 3.0, 0.0, 2.0, 5.0, -2.0, 1.0, 0.5],
)


def test_cl_sam_takes_top_k_confidence_per_class_with_ties_to_the_lower_id():
    assert select("cl-sam", SIX, np.array([2, 1]), seed=0).tolist() == [100, 102, 105]
    assert select("cl-sam", SIX, np.array([1, 2]), seed=0).tolist() == [100, 105, 107]  # 0.9 tie: id 100 first


def test_cr_sam_takes_top_k_realism_per_class():
    assert select("cr-sam", SIX, np.array([2, 2]), seed=0).tolist() == [101, 103, 104, 106]


def test_ties_do_not_depend_on_row_order():
    shuffled = Scores(SIX.table.sample(frac=1.0, random_state=3).reset_index(drop=True))
    for name, options in (("cl-sam", {}), ("cr-sam", {}), ("combined", {"realism_weight": 0.5})):
        once, again = (select(name, s, np.array([3, 1]), 0, **options).tolist() for s in (shuffled, SIX))
        assert once == again


def test_random_respects_quotas_and_its_seed():
    big = table(label=np.repeat([0, 1, 2], 50), confidence=np.linspace(0, 1, 150))
    quota = np.array([5, 0, 12])
    ids = select("random", big, quota, seed=1)
    labels = big.table.set_index("id").loc[ids, "label"].to_numpy()
    assert np.bincount(labels, minlength=3).tolist() == [5, 0, 12]
    assert ids.tolist() == select("random", big, quota, seed=1).tolist()
    assert ids.tolist() != select("random", big, quota, seed=2).tolist()


def test_combined_fuses_ranks_not_raw_values():
    # realism on a huge scale must not dominate: id 100 is best by confidence and 2nd by realism
    s = table(label=[0, 0, 0], confidence=[0.9, 0.1, 0.5], realism=[50.0, 1000.0, -10.0])
    assert select("combined", s, np.array([1]), 0, realism_weight=0.5).tolist() == [100]
    assert select("combined", s, np.array([1]), 0, realism_weight=1.0).tolist() == [101]
    assert select("combined", s, np.array([1]), 0, realism_weight=0.0).tolist() == [100]


def test_diverse_covers_feature_space_and_drops_low_confidence():
    # class 0: two tight clusters; the most confident is in cluster A; a far outlier has low confidence
    feats = np.array([[0, 0], [0.1, 0], [10, 10], [10.1, 10], [100, 100]], np.float16)
    s = table(label=[0, 0, 0, 0, 0], confidence=[0.95, 0.9, 0.8, 0.7, 0.01])
    s.features = feats
    assert select("diverse", s, np.array([2]), 0, keep=0.8).tolist() == [100, 103]  # one per cluster, not 100+101
    assert select("diverse", s, np.array([2]), 0, keep=1.0).tolist() == [100, 104]  # keep all: the outlier is farthest
    assert select("cl-sam", s, np.array([2]), 0).tolist() == [100, 101]


def test_k_center_greedy_picks_farthest_points_in_order():
    x = np.array([[0.0], [1.0], [10.0], [4.0]])
    assert k_center_greedy(x, 3, first=0).tolist() == [0, 2, 3]


def test_rl_sampler_needs_the_policy_column_and_uses_it():
    with pytest.raises(GanaugError, match="rl_keep"):
        select("rl", SIX, np.array([1, 1]), 0)
    s = Scores(SIX.table.assign(rl_keep=[0.1, 0.2, 0.3, 0.9, 0.5, 0.4, 0.3, 0.2]))
    assert select("rl", s, np.array([1, 2]), 0).tolist() == [103, 104, 105]


def test_a_quota_beyond_the_pool_is_a_clear_error():
    with pytest.raises(GanaugError, match="needs 5 images of class 1 but the pool has 4"):
        select("cl-sam", SIX, np.array([1, 5]), 0)


@pytest.mark.parametrize(
    "counts, ratio, balance, expected",
    [
        ([10, 20], 2, False, [20, 40]),
        ([10, 30], 1, True, [30, 10]),  # fill to a common level of 40
        ([30, 10], 0.5, True, [0, 20]),  # the large class gets nothing
        ([3, 3, 3], 1 / 3, False, [1, 1, 1]),
        ([5, 5, 5], 0.2, False, [1, 1, 1]),
        ([7, 7, 7], 0.1, False, [1, 1, 0]),  # round(2.1) = 2 images: largest remainders, lower class first
    ],
)
def test_class_quotas(counts, ratio, balance, expected):
    quota = class_quotas(np.array(counts), ratio, balance)
    assert quota.tolist() == expected
    assert quota.sum() == round(ratio * sum(counts))


def test_top_k_per_class_on_a_large_table_is_exact():
    rng = np.random.default_rng(0)
    labels, score = rng.integers(0, 10, 20_000), rng.random(20_000)
    ids = np.arange(20_000)
    got = top_k_per_class(labels, score, ids, np.full(10, 7))
    want = np.sort(np.concatenate([ids[labels == c][np.argsort(-score[labels == c])[:7]] for c in range(10)]))
    assert got.tolist() == want.tolist()


def test_score_pool_matches_a_direct_computation_and_batching(tmp_path):
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", num_classes=4, in_chans=1).eval()
    extractor = ClassifierFeatures(model, Normalizer([0.5], [0.25]))
    D = Discriminator(4, 1, 16, width=8, min_width=8).eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (23, 16, 16, 1), dtype=np.uint8)
    labels = np.arange(23) % 4
    a = score_pool(images, labels, extractor, D, torch.device("cpu"), tmp_path / "a", "pool", batch_size=5)
    b = score_pool(images, labels, extractor, D, torch.device("cpu"), tmp_path / "b", "pool", batch_size=50)
    pd.testing.assert_frame_equal(a, b, atol=1e-5, check_exact=False)
    with torch.no_grad():
        x = torch.from_numpy(images).permute(0, 3, 1, 2)
        probs = model((x.float() / 255 - 0.5) / 0.25).softmax(1)
        realism = D(x.float() / 127.5 - 1, torch.from_numpy(labels))
    np.testing.assert_allclose(a["confidence"], probs[torch.arange(23), labels].numpy(), atol=1e-5)
    np.testing.assert_allclose(a["realism"], realism.numpy(), atol=1e-4)
    assert a["predicted"].tolist() == probs.argmax(1).tolist()
    loaded = load_scores(tmp_path / "a", "pool")
    assert loaded.features.shape == (23, model.num_features) and loaded.features.dtype == np.float16
    assert loaded.probs.shape == (23, 4)
    np.testing.assert_allclose(loaded.probs.astype(np.float32).sum(1), 1, atol=1e-2)


def test_load_scores_refuses_a_missing_table_or_mismatched_features(tmp_path):
    with pytest.raises(GanaugError, match="score table not found"):
        load_scores(tmp_path, "pool")
    SIX.table.to_parquet(tmp_path / "pool.parquet")
    np.save(tmp_path / "pool_features.npy", np.zeros((3, 4), np.float16))
    with pytest.raises(GanaugError, match="pool_features.npy: 3 rows"):
        load_scores(tmp_path, "pool")


def test_read_rows_from_a_memory_map_equals_slicing(tmp_path):
    from ganaug.sampling.scores import read_rows

    a = np.random.default_rng(0).integers(0, 255, (57, 5, 5, 2), dtype=np.uint8)
    np.save(tmp_path / "x.npy", a)
    m = np.load(tmp_path / "x.npy", mmap_mode="r")
    for start, stop in [(0, 10), (10, 57), (50, 80), (56, 57)]:
        rows = read_rows(m, start, stop)
        np.testing.assert_array_equal(rows, a[start:stop])
        assert rows.flags.writeable and not isinstance(rows, np.memmap)
    np.testing.assert_array_equal(read_rows(a, 3, 9), a[3:9])  # an in-memory array too


def test_diverse_never_picks_an_image_twice_when_features_coincide():
    # all-equal features: every distance is 0 after the first pick; k-center greedy used to return [0, 0, 0]
    assert k_center_greedy(np.zeros((5, 3)), 3).tolist() == [0, 1, 2]
    same = Scores(SIX.table, features=np.zeros((8, 4), np.float16))
    ids = select("diverse", same, np.array([3, 2]), 0, keep=0.5)
    assert len(set(ids.tolist())) == 5 and np.bincount(same.table.set_index("id").loc[ids, "label"]).tolist() == [3, 2]


def test_select_refuses_a_sampler_that_repeats_or_misses_its_quota(monkeypatch):
    monkeypatch.setitem(SAMPLERS, "buggy", Sampler("buggy", lambda scores, quota, rng, **_: np.array([100, 100, 104])))
    with pytest.raises(GanaugError, match="sampler buggy: returned pool id 100 more than once"):
        select("buggy", SIX, np.array([2, 1]), 0)
    monkeypatch.setitem(SAMPLERS, "buggy", Sampler("buggy", lambda scores, quota, rng, **_: np.array([100, 104, 105])))
    with pytest.raises(GanaugError, match="sampler buggy: chose 1 images of class 0, its quota is 2"):
        select("buggy", SIX, np.array([2, 1]), 0)


@pytest.mark.parametrize("name", sorted(set(SAMPLERS) - {"rl"}))
def test_every_sampler_returns_unique_ids_on_a_table_of_ties(name):
    n = 40
    ties = Scores(
        pd.DataFrame(
            {
                "id": np.arange(n),
                "label": np.arange(n) % 2,
                "confidence": np.full(n, 0.5),
                "predicted": np.zeros(n, int),
                "entropy": np.zeros(n),
                "realism": np.zeros(n),
                "d_confidence": np.full(n, 0.5),
                "clip_margin": np.ones(n, np.float32),  # all tied, all labelled as their own by CLIP
                "similarity": np.full(n, 0.5, np.float32),
            }
        ),
        features=np.zeros((n, 4), np.float16),
    )
    options = SAMPLERS[name].options(params_with().select)  # as a run passes them: params.yaml's select section
    ids = select(name, ties, np.array([20, 20]), 0, **options)
    assert len(np.unique(ids)) == 40


def test_the_rl_agent_own_choice_is_every_image_it_would_keep():
    from ganaug.sampling.samplers import own_choice

    s = Scores(SIX.table.assign(rl_keep=[0.1, 0.6, 0.5, 0.9, 0.51, 0.4, 0.3, 0.2]))
    assert own_choice("rl", s).tolist() == [101, 103, 104]  # above 1/2; exactly 1/2 is undecided, not kept
    with pytest.raises(GanaugError, match="does not choose its own subset size"):
        own_choice("cl-sam", s)
    with pytest.raises(GanaugError, match="rl_keep"):
        own_choice("rl", SIX)


def test_d_class_ranks_by_the_discriminator_class_head_and_needs_a_translation_gan():
    table = SIX.table.assign(d_confidence=np.linspace(0.9, 0.1, len(SIX.table)))
    ids = select("d-class", Scores(table), np.array([1, 1]), 0)
    firsts = table.sort_values("d_confidence", ascending=False).groupby("label")["id"].first()
    assert sorted(ids.tolist()) == sorted(firsts.tolist())
    with pytest.raises(GanaugError, match="d_confidence only exists for gan.arch: stargan"):
        select("d-class", SIX, np.array([1, 1]), 0)


def test_dapper_quota_error_names_the_projection_params():
    with pytest.raises(GanaugError, match="projection pool has 4; lower the ratio or raise projection.variants"):
        select("dapper", SIX, np.array([5, 1]), 0)


def test_uncertainty_prefers_the_hardest_correctly_labelled_images_then_the_surest_others():
    s = table(
        label=[0, 0, 0, 0, 0, 0, 1, 1],
        predicted=[0, 0, 0, 1, 0, 2, 1, 1],  # ids 103 and 105: the scorer gives them another label
        entropy=[0.1, 0.9, 0.5, 1.5, 0.9, 2.0, 0.3, 0.2],
        confidence=[0.9, 0.4, 0.6, 0.4, 0.4, 0.3, 0.8, 0.9],
    )
    assert select("uncertainty", s, np.array([3, 1]), 0).tolist() == [
        101,
        102,
        104,
        106,
    ]  # 0.9, 0.9 (tie: lower id), 0.5
    # more than the agreeing images: all 4 of them, then the disagreeing one the scorer is surest of
    assert select("uncertainty", s, np.array([5, 2]), 0).tolist() == [100, 101, 102, 103, 104, 106, 107]
    assert select("cl-sam", s, np.array([3, 1]), 0).tolist() == [100, 101, 102, 107]  # the easiest instead
