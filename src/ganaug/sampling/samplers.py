"""The sampler registry: one function per sampler, ``(scores, quota, rng) -> pool ids``.

``quota[c]`` is how many images of class c to choose. Every top-K sampler breaks ties by pool id
(lowest first), so a selection depends only on the scores, never on row order. Adding a sampler is
one function and one line in SAMPLERS (and its name in ganaug.params.SAMPLER_NAMES).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ganaug.errors import GanaugError
from ganaug.sampling.scores import Scores


def _check_quota(scores: Scores, quota: np.ndarray, name: str) -> None:
    have = np.bincount(scores.table["label"].to_numpy(), minlength=len(quota))[: len(quota)]
    short = np.flatnonzero(quota > have)
    if len(short):
        c = int(short[0])
        raise GanaugError(f"sampler {name}: needs {int(quota[c])} images of class {c} but the pool has {int(have[c])} "
                          "(lower the ratio, or grow the pool: generate.pool_multiple, or projection.per_class for dapper)")


def top_k_per_class(labels: np.ndarray, score: np.ndarray, ids: np.ndarray, quota: np.ndarray) -> np.ndarray:
    """Highest ``score`` first within each class, ties to the lower id; returns sorted ids.
    One lexsort over all rows (O(N log N)), then a slice per class: ~1 s for 1,000,000 rows."""
    order = np.lexsort((ids, -score, labels))  # by label, then score descending, then id
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, np.arange(len(quota)))
    chosen = [order[s : s + int(k)] for s, k in zip(starts, quota) if k > 0]
    return np.sort(ids[np.concatenate(chosen)]) if chosen else np.empty(0, np.int64)


def _by_column(column: str) -> Callable:
    def sampler(scores: Scores, quota: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
        t = scores.table
        if column not in t.columns:
            raise GanaugError(f"sampler needs the score column '{column}' (for rl: run `dvc repro rl_policy`)")
        return top_k_per_class(t["label"].to_numpy(), t[column].to_numpy(np.float64), t["id"].to_numpy(), quota)

    sampler.__doc__ = f"Top-K per class by '{column}'."
    return sampler


def random_sampler(scores: Scores, quota: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """Uniform without replacement within each class (the naive baseline)."""
    t = scores.table
    return top_k_per_class(t["label"].to_numpy(), rng.random(len(t)), t["id"].to_numpy(), quota)


def within_class_rank(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Percentile rank in (0, 1] of each value inside its own class (ties share the mean rank)."""
    import pandas as pd

    return pd.Series(values).groupby(labels).rank(pct=True, method="average").to_numpy()


def combined_sampler(scores: Scores, quota: np.ndarray, rng: np.random.Generator, realism_weight: float = 0.5, **_) -> np.ndarray:
    """Rank fusion: a weighted mean of the within-class percentile ranks of confidence and realism,
    so neither score's scale dominates (D's logits are unbounded, confidences are in [0, 1])."""
    t = scores.table
    labels = t["label"].to_numpy()
    fused = ((1 - realism_weight) * within_class_rank(labels, t["confidence"].to_numpy())
             + realism_weight * within_class_rank(labels, t["realism"].to_numpy()))
    return top_k_per_class(labels, fused, t["id"].to_numpy(), quota)


def k_center_greedy(features: np.ndarray, k: int, first: int = 0) -> np.ndarray:
    """Farthest-point selection: start at ``first``, then repeatedly take the point farthest from
    everything chosen so far (a 2-approximation of the k-center cover). Returns row indices in pick order."""
    x = np.asarray(features, dtype=np.float32)
    k = min(k, len(x))
    if k == 0:
        return np.empty(0, np.int64)
    chosen = [first]
    dist = ((x - x[first]) ** 2).sum(1)
    for _ in range(k - 1):
        nxt = int(dist.argmax())  # argmax takes the lowest index on ties: deterministic
        chosen.append(nxt)
        dist = np.minimum(dist, ((x - x[nxt]) ** 2).sum(1))
    return np.asarray(chosen, np.int64)


def diverse_sampler(scores: Scores, quota: np.ndarray, rng: np.random.Generator, keep: float = 0.5, **_) -> np.ndarray:
    """Drop the low-confidence images (keep the top ``keep`` fraction of each class, never fewer
    than the quota), then cover the class in the classifier's feature space with k-center greedy,
    starting from its most confident image. Cost O(n k) per class."""
    if scores.features is None:
        raise GanaugError("sampler diverse: the pool's features (<name>_features.npy) are missing (run `dvc repro score`)")
    t = scores.table
    labels, ids, conf = t["label"].to_numpy(), t["id"].to_numpy(), t["confidence"].to_numpy(np.float64)
    picked = []
    for c, k in enumerate(quota):
        if k <= 0:
            continue
        rows = np.flatnonzero(labels == c)
        rows = rows[np.lexsort((ids[rows], -conf[rows]))]  # most confident first
        rows = rows[: max(int(k), int(np.ceil(keep * len(rows))))]
        feats = np.asarray(scores.features[rows], np.float32)  # row 0 = most confident: the first center
        picked.append(ids[rows[k_center_greedy(feats, int(k))]])
    return np.sort(np.concatenate(picked)) if picked else np.empty(0, np.int64)


SAMPLERS: dict[str, Callable] = {
    "random": random_sampler,
    "cl-sam": _by_column("confidence"),  # paper 000: classifier confidence on the target label
    "cr-sam": _by_column("realism"),  # paper 000: discriminator realism for the target label
    "combined": combined_sampler,
    "diverse": diverse_sampler,
    "rl": _by_column("rl_keep"),  # the actor-critic policy's keep probability (rl_policy stage)
    "dapper": _by_column("confidence"),  # cl-sam over the DAPPER projection pool (paper 003)
}
SOURCE = {"dapper": "projection"}  # which score table a sampler reads; default "pool"


def class_quotas(real_counts: np.ndarray, ratio: float, balance: bool = False) -> np.ndarray:
    """Synthetic images per class for ``ratio`` x the real set. Proportional to the real counts,
    or with ``balance`` filled up from the smallest classes (water-filling) so the real +
    synthetic set is as even as the budget allows; either way the total is round(ratio x N)."""
    real_counts = np.asarray(real_counts, np.int64)
    total = int(round(ratio * real_counts.sum()))
    if not balance:
        raw = ratio * real_counts
    else:
        level_lo, level_hi = 0.0, float(real_counts.max() + total)
        for _ in range(100):  # bisection on the common level L: sum(max(0, L - n_c)) = total
            mid = (level_lo + level_hi) / 2
            level_lo, level_hi = (mid, level_hi) if np.maximum(0, mid - real_counts).sum() < total else (level_lo, mid)
        raw = np.maximum(0.0, level_hi - real_counts)
    quota = np.floor(raw).astype(np.int64)
    rest = total - quota.sum()
    if rest > 0:  # largest remainders, ties to the lower class index
        quota[np.lexsort((np.arange(len(raw)), -(raw - quota)))[:rest]] += 1
    return quota


def select(name: str, scores: Scores, quota: np.ndarray, seed: int | list[int], **options) -> np.ndarray:
    """Run sampler ``name``; returns sorted pool ids, exactly ``quota[c]`` of each class c.
    ``seed``: anything np.random.default_rng takes (experiment runs pass [select.seed, run seed])."""
    if name not in SAMPLERS:
        raise GanaugError(f"unknown sampler '{name}' (expected one of {', '.join(SAMPLERS)})")
    _check_quota(scores, quota, name)
    ids = SAMPLERS[name](scores, np.asarray(quota, np.int64), np.random.default_rng(seed), **options)
    return np.asarray(ids, np.int64)


def sampler_options(name: str, cfg) -> dict:
    """The params.yaml `select` options a sampler takes."""
    if name == "diverse":
        return {"keep": cfg.diverse_keep}
    if name == "combined":
        return {"realism_weight": cfg.combined_realism_weight}
    return {}
