"""The sampler registry: one ``Sampler`` entry per sampler in SAMPLERS, its function ``(scores, quota, rng,
**options) -> pool ids`` beside it.

``quota[c]`` is how many images of class c to choose. Every top-K sampler breaks ties by pool id
(lowest first), so a selection depends only on the scores, never on row order. Adding a sampler is
its function and its entry (docs/development.md has a worked example); params.yaml may then name it (the plan
stage looks each name of experiments.* up here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ganaug.errors import GanaugError
from ganaug.sampling.scores import Scores

KEEP_THRESHOLD = 0.5  # the RL agent keeps an image when keeping is its more likely action


def _check_quota(scores: Scores, quota: np.ndarray, name: str) -> None:
    have = np.bincount(scores.table["label"].to_numpy(), minlength=len(quota))[: len(quota)]
    short = np.flatnonzero(quota > have)
    if len(short):
        c = int(short[0])
        source = SAMPLERS[name].source
        grow = {
            "projection": "projection.variants or projection.per_class (the projection pool is per_class x "
            "(variants + 1) per class)",
            "pseudo": "data.unlabelled_max or the unlabelled images (the scorer labels too few of them this class)",
            "retrieval": "data.unlabelled_max or the unlabelled images (too few are nearest to this class's images)",
        }.get(source, "generate.pool_multiple")
        pool = {
            "projection": "the projection pool",
            "pseudo": "the pseudo-labelled pool",
            "retrieval": "the retrieval pool",
        }.get(source, "the pool")
        raise GanaugError(
            f"sampler {name}: needs {int(quota[c])} images of class {c} but {pool} has {int(have[c])}; "
            f"lower the ratio or raise {grow}"
        )


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
            raise GanaugError(
                f"sampler needs the score column '{column}' (for rl: run `dvc repro rl_policy`; "
                "d_confidence only exists for gan.arch: stargan)"
            )
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


def combined_sampler(
    scores: Scores, quota: np.ndarray, rng: np.random.Generator, *, realism_weight: float, **_
) -> np.ndarray:
    """Rank fusion: a weighted mean of the within-class percentile ranks of confidence and realism,
    so neither score's scale dominates (D's logits are unbounded, confidences are in [0, 1])."""
    t = scores.table
    labels = t["label"].to_numpy()
    fused = (1 - realism_weight) * within_class_rank(
        labels, t["confidence"].to_numpy()
    ) + realism_weight * within_class_rank(labels, t["realism"].to_numpy())
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
    dist[first] = -np.inf  # never again: once every distance left is 0 (duplicate features), argmax would re-pick
    for _ in range(k - 1):
        nxt = int(dist.argmax())  # argmax takes the lowest index on ties: deterministic
        chosen.append(nxt)
        dist = np.minimum(dist, ((x - x[nxt]) ** 2).sum(1))
        dist[nxt] = -np.inf
    return np.asarray(chosen, np.int64)


def diverse_sampler(scores: Scores, quota: np.ndarray, rng: np.random.Generator, *, keep: float, **_) -> np.ndarray:
    """Drop the low-confidence images (keep the top ``keep`` fraction of each class, never fewer
    than the quota), then cover the class in the classifier's feature space with k-center greedy,
    starting from its most confident image. Cost O(n k) per class."""
    if scores.features is None:
        raise GanaugError(
            "sampler diverse: the pool's features (<name>_features.npy) are missing (run `dvc repro score`)"
        )
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


def uncertainty_sampler(scores: Scores, quota: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """The opposite of cl-sam's easy picks, as in uncertainty-guided synthesis (feedback-guided
    synthesis, TMLR 2024): among the images the scorer assigns to their own label, the most
    uncertain first (highest prediction entropy), ties to the lower id. Only when a class has too
    few of those does it go on to the images the scorer gives another label, most confident first."""
    t = scores.table
    agree = t["predicted"].to_numpy() == t["label"].to_numpy()
    # one key: every agreeing image (2 + entropy >= 2) ranks before every other (confidence - 1 <= 0)
    key = np.where(agree, 2.0 + t["entropy"].to_numpy(np.float64), t["confidence"].to_numpy(np.float64) - 1.0)
    return top_k_per_class(t["label"].to_numpy(), key, t["id"].to_numpy(), quota)


def clip_sampler(scores: Scores, quota: np.ndarray, rng: np.random.Generator, **_) -> np.ndarray:
    """The CLIP filter (He et al. 2023; ALIA): the images whose zero-shot CLIP label over the class prompts is their
    own label (margin of their own class's logit over the best other's > 0), surest first. A class with fewer of
    them than its quota is refused: an image CLIP gives another class is what the filter exists to drop."""
    t = scores.table
    if "clip_margin" not in t.columns:
        raise GanaugError(
            "sampler clip: the score table has no clip_margin column; set clip.path to a transformers CLIPModel "
            "folder (docs/datasets.md) and re-run `dvc repro score`"
        )
    labels, margin = t["label"].to_numpy(), t["clip_margin"].to_numpy(np.float64)
    kept = np.bincount(labels[margin > 0], minlength=len(quota))[: len(quota)]
    short = np.flatnonzero(quota > kept)
    if len(short):
        c = int(short[0])
        raise GanaugError(
            f"sampler clip: needs {int(quota[c])} images of class {c} that CLIP labels as their own, the pool has "
            f"{int(kept[c])}; lower the ratio or raise generate.pool_multiple"
        )
    return top_k_per_class(labels, margin, t["id"].to_numpy(), quota)


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


def topup_quotas(real_counts: np.ndarray) -> np.ndarray:
    """Minority top-up (feedback-guided synthesis, SYNAuG): each class gets what it lacks of the
    largest class's count, so real + synthetic is exactly balanced; the largest class gets none."""
    real_counts = np.asarray(real_counts, np.int64)
    return real_counts.max() - real_counts


def check_selection(name: str, scores: Scores, ids: np.ndarray, quota: np.ndarray | None = None) -> np.ndarray:
    """A sampler's output as sorted unique pool ids, or an error: a duplicate would train one image twice
    and silently shrink the synthetic set; an id outside the pool, or a class count off its quota, is a bug."""
    ids = np.asarray(ids, np.int64)
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = values[counts > 1][0]
        raise GanaugError(f"sampler {name}: returned pool id {dup} more than once (a selection must be unique ids)")
    table_ids = scores.table["id"].to_numpy()
    if not np.isin(ids, table_ids).all():
        raise GanaugError(
            f"sampler {name}: returned ids that are not in the pool (e.g. {ids[~np.isin(ids, table_ids)][0]})"
        )
    if quota is not None:
        labels = scores.table.set_index("id").loc[ids, "label"].to_numpy()
        got = np.bincount(labels, minlength=len(quota))[: len(quota)]
        if not np.array_equal(got, quota):
            c = int(np.flatnonzero(got != quota)[0])
            raise GanaugError(f"sampler {name}: chose {int(got[c])} images of class {c}, its quota is {int(quota[c])}")
    return np.sort(ids)


def select(name: str, scores: Scores, quota: np.ndarray, seed: int | list[int], **options) -> np.ndarray:
    """Run sampler ``name``; returns sorted unique pool ids, exactly ``quota[c]`` of each class c.
    ``seed``: anything np.random.default_rng takes (experiment runs pass [select.seed, run seed])."""
    if name not in SAMPLERS:
        raise GanaugError(f"unknown sampler '{name}' (expected one of {', '.join(SAMPLERS)})")
    quota = np.asarray(quota, np.int64)
    _check_quota(scores, quota, name)
    chosen = SAMPLERS[name].choose(scores, quota, np.random.default_rng(seed), **options)
    return check_selection(name, scores, chosen, quota)


def rl_own(scores: Scores) -> np.ndarray:
    """Every pool image the RL agent keeps (keep probability above 1/2): its own subset and size."""
    t = scores.table
    if "rl_keep" not in t.columns:
        raise GanaugError("sampler rl: needs the score column 'rl_keep' (run `dvc repro rl_policy`)")
    return t["id"].to_numpy()[t["rl_keep"].to_numpy() > KEEP_THRESHOLD]


def no_options(select_params) -> dict:
    return {}


@dataclass(frozen=True)
class Sampler:
    """A sampler: how it chooses ``quota[c]`` images of each class, from which pool, with which options."""

    name: str  # as params.yaml names it (experiments.samplers, replace_sampler, count_sampler, own)
    choose: Callable  # (scores, quota, rng, **options) -> pool ids
    # the pool it chooses from: pool (the GAN's), projection (DAPPER's, paper 003), pseudo (the unlabelled
    # images labelled by the scorer) or retrieval (labelled by their nearest training image); ganaug.paths.POOLS
    source: str = "pool"
    options: Callable = no_options  # params.yaml's `select` section -> the keyword options ``choose`` takes
    own: Callable | None = None  # scores -> the ids it keeps when it also decides how many (mode own)
    reads_rl: bool = False  # whether it reads the RL policy's keep probabilities (the rl_policy stage's output)


SAMPLERS: dict[str, Sampler] = {
    s.name: s
    for s in (
        Sampler("random", random_sampler),
        Sampler("cl-sam", _by_column("confidence")),  # paper 000: classifier confidence on the target label
        Sampler("cr-sam", _by_column("realism")),  # paper 000: discriminator realism for the target label
        Sampler("combined", combined_sampler, options=lambda c: {"realism_weight": c.combined_realism_weight}),
        Sampler("diverse", diverse_sampler, options=lambda c: {"keep": c.diverse_keep}),
        # the actor-critic policy's keep probability (rl_policy stage); alone it keeps what it likes (mode own)
        Sampler("rl", _by_column("rl_keep"), own=rl_own, reads_rl=True),
        Sampler("dapper", _by_column("confidence"), source="projection"),  # cl-sam over the DAPPER projection pool
        # correctly labelled but hard: near the scorer's decision boundary
        Sampler("uncertainty", uncertainty_sampler),
        # gan.arch stargan: its discriminator's class head on the target label
        Sampler("d-class", _by_column("d_confidence")),
        # not synthetic: the unlabelled images the scorer labels most confidently (ganaug.sampling.pseudo)
        Sampler("pseudo-label", _by_column("confidence"), source="pseudo"),
        # the CLIP filter: CLIP's zero-shot label is the image's own, by margin (clip.path; ganaug.clip)
        Sampler("clip", clip_sampler),
        # not synthetic: the unlabelled images most similar to a class's training images (ganaug.sampling.retrieval)
        Sampler("retrieval", _by_column("similarity"), source="retrieval"),
    )
}


def own_choice(name: str, scores: Scores) -> np.ndarray:
    """The subset sampler ``name`` keeps on its own (mode own), as sorted unique pool ids."""
    own = [n for n, s in SAMPLERS.items() if s.own is not None]
    if name not in own:
        raise GanaugError(f"sampler '{name}' does not choose its own subset size (expected one of {', '.join(own)})")
    return check_selection(name, scores, SAMPLERS[name].own(scores))
