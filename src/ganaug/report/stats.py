"""Statistics of a results table: seed summaries, paired comparisons, Holm's correction, verdicts.

Every number the report interprets goes through here. Seeds are the unit of replication: a row's
spread is over its seeds, and two rows are compared on the seeds they share (paired), because a seed
fixes the classifier's initialisation, batch order and augmentation for both, which removes most of
the run-to-run noise from the difference. With one seed there is no spread and so no verdict.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
BETTER, WORSE, UNCLEAR = "better", "worse", "no clear difference"
NOT_TESTED = "n=1, not tested"


def no_spread(std: float, mean: float) -> bool:
    """Identical values: the t statistic is undefined (and scipy warns of lost precision)."""
    return std <= 1e-12 * max(1.0, abs(mean))


def mean_test(values) -> dict:
    """Mean, standard deviation (ddof 1), n, the t-based 95% confidence interval of the mean and the
    two-sided one-sample t-test of mean = 0 (scipy's ttest_1samp). With n = 1 the spread is not measured:
    std, the interval and p are NaN, never 0. Identical values (zero spread) are exact: the interval is the
    value itself, p = 1 when it is 0, else 0."""
    x = np.asarray(values, np.float64)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "std": math.nan, "n": n, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan}
    std = float(x.std(ddof=1))
    if no_spread(std, mean):
        return {"mean": mean, "std": std, "n": n, "ci_low": mean, "ci_high": mean, "p": 1.0 if mean == 0 else 0.0}
    test = stats.ttest_1samp(x, 0.0)
    ci, p = test.confidence_interval(1 - ALPHA), float(test.pvalue)
    return {"mean": mean, "std": std, "n": n, "ci_low": float(ci.low), "ci_high": float(ci.high), "p": p}


def summarize(values) -> dict:
    """mean_test() without its p-value: a row's mean, spread, n and 95% interval over seeds."""
    out = mean_test(values)
    del out["p"]
    return out


def paired(a: pd.Series, b: pd.Series) -> dict:
    """``a - b`` over the seeds both have (Series indexed by seed): mean difference, its 95% CI and
    the two-sided paired t-test p-value (the one-sample test of the differences). n < 2 gives NaNs."""
    seeds = sorted(set(a.index) & set(b.index))
    d = mean_test(a.loc[seeds].to_numpy(np.float64) - b.loc[seeds].to_numpy(np.float64))
    return {"n": d["n"], "seeds": seeds, "diff": d["mean"], "ci_low": d["ci_low"], "ci_high": d["ci_high"], "p": d["p"]}


def welch(a, b) -> tuple[float, float, float]:
    """Mean difference a - b and its Welch 95% CI (independent samples, e.g. different real sets)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan, math.nan
    if a.var(ddof=1) + b.var(ddof=1) == 0:  # both without spread: the difference is exact
        return diff, diff, diff
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(1 - ALPHA)
    return diff, float(ci.low), float(ci.high)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment (family-wise error over every comparison in the table).
    NaN p-values (untestable comparisons) stay NaN and do not count towards the family size."""
    p = np.asarray(pvalues, np.float64)
    adjusted = np.full_like(p, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    running = 0.0
    for rank, i in enumerate(tested[np.argsort(p[tested], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))  # monotone: never below an earlier step
        adjusted[i] = running
    return adjusted


def verdict(diff: float, p_adjusted: float, n: int) -> str:
    """In words, from the Holm-adjusted p-value: better / worse / no clear difference."""
    if n < 2 or math.isnan(p_adjusted):
        return NOT_TESTED
    if p_adjusted < ALPHA:
        return BETTER if diff > 0 else WORSE
    return UNCLEAR
