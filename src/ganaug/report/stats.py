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


def summarize(values) -> dict:
    """Mean, standard deviation (ddof 1), n and the t-based 95% confidence interval of the mean.
    With n = 1 the spread is not measured: std and the interval are NaN, never 0."""
    x = np.asarray(values, np.float64)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "std": math.nan, "n": n, "ci_low": math.nan, "ci_high": math.nan}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci_low": mean - half, "ci_high": mean + half}


def paired(a: pd.Series, b: pd.Series) -> dict:
    """``a - b`` over the seeds both have (Series indexed by seed): mean difference, its 95% CI and
    the two-sided paired t-test p-value. n < 2 gives NaNs (nothing can be tested)."""
    seeds = sorted(set(a.index) & set(b.index))
    d = a.loc[seeds].to_numpy(np.float64) - b.loc[seeds].to_numpy(np.float64)
    n = len(d)
    out = {"n": n, "seeds": seeds, "diff": float(d.mean()) if n else math.nan,
           "ci_low": math.nan, "ci_high": math.nan, "p": math.nan}
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(out["diff"])):  # identical differences on every seed: exact, t is undefined
        out.update(ci_low=out["diff"], ci_high=out["diff"], p=1.0 if out["diff"] == 0 else 0.0)
        return out
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * sd / math.sqrt(n)
    out.update(ci_low=out["diff"] - half, ci_high=out["diff"] + half,
               p=float(stats.ttest_rel(a.loc[seeds], b.loc[seeds]).pvalue))
    return out


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
