"""The RL sampler: the reward rule, and a few real episodes on digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganaug.params import parse_params
from ganaug.sampling.rl import SmallCNN, keep_probabilities, reward, train_policy


@pytest.mark.parametrize("score, history, expected", [
    (0.5, [], 0.0),  # nothing to compare with yet
    (0.6, [0.5] * 5, 1.0),
    (0.5, [0.5] * 5, -1.0),  # equal is not better
    (0.4, [0.5] * 5, -1.0),
    (0.2, [0.9, 0.1, 0.1, 0.1, 0.1, 0.1], 1.0),  # only the last 5 count: mean 0.1
    (0.2, [0.1, 0.1, 0.1, 0.1, 0.9], -1.0),  # mean of the last 5 = 0.26
])
def test_reward_against_the_mean_of_the_last_five(score, history, expected):
    assert reward(score, history, window=5) == expected


def test_policy_and_child_are_3_conv_2_fc():
    net = SmallCNN(1, 10)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 3
    assert sum(isinstance(m, torch.nn.Linear) for m in net.modules()) == 2
    assert net(torch.zeros(2, 1, 16, 16)).shape == (2, 10)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    from ganaug.data.prepare import resize

    d = load_digits()
    images = resize(np.rint(d.images * 255 / 16).astype(np.uint8)[..., None], 16, None)
    return images, d.target.astype(np.int64)


def test_a_few_real_episodes_on_digits(digits):
    images, labels = digits
    # "pool": half real digits, half noise with the same labels -- the kind a policy should learn to drop
    rng = np.random.default_rng(0)
    pool_images = np.concatenate([images[:400], rng.integers(0, 256, (400, 16, 16, 1), dtype=np.uint8)])
    pool_labels = np.concatenate([labels[:400], labels[:400]])
    cfg = parse_params({"rl": {"episodes": 4, "candidates_per_class": 6, "real_per_class": 5, "child_epochs": 15}}).rl
    args = (pool_images, pool_labels, images[400:700], labels[400:700], images[700:900], labels[700:900], 10, cfg, torch.device("cpu"))
    policy, history = train_policy(*args)
    assert [r["episode"] for r in history] == [1, 2, 3, 4]
    assert history[0]["reward"] == 0.0 and all(r["reward"] in (-1.0, 1.0) for r in history[1:])
    assert all(0.0 <= r["kept_fraction"] <= 1.0 and 0.0 <= r["child_score"] <= 1.0 for r in history)
    # a child trained on 50 real digits (+ kept images) beats chance (10 %) on 200 validation digits
    assert np.mean([r["child_score"] for r in history]) > 0.2
    # the reward follows the rule from the child scores
    scores = [r["child_score"] for r in history]
    assert [r["reward"] for r in history] == [reward(s, scores[:i]) for i, s in enumerate(scores)]
    keep = keep_probabilities(policy, pool_images, torch.device("cpu"), batch_size=64)
    assert keep.shape == (800,) and keep.dtype == np.float32 and ((keep >= 0) & (keep <= 1)).all()
    _, again = train_policy(*args)  # seeded: the same episodes again
    assert again == history
