"""The report's statistics on inputs with known answers: seed summaries, paired tests, Holm, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ganaug.report.stats import BETTER, NOT_TESTED, UNCLEAR, WORSE, holm, paired, summarize, verdict


def test_summarize_mean_std_and_t_interval():
    s = summarize([1.0, 2.0, 3.0])
    assert (s["mean"], s["std"], s["n"]) == (2.0, 1.0, 3)
    # 2 -/+ t(0.975, df 2) x 1 / sqrt(3) = 2 -/+ 4.3027 x 0.57735
    assert s["ci_low"] == pytest.approx(-0.484138, abs=1e-6) and s["ci_high"] == pytest.approx(4.484138, abs=1e-6)


def test_one_seed_has_no_spread_rather_than_zero():
    s = summarize([0.8])
    assert s["mean"] == 0.8 and s["n"] == 1
    assert math.isnan(s["std"]) and math.isnan(s["ci_low"]) and math.isnan(s["ci_high"])


def test_paired_difference_over_shared_seeds_only():
    a = pd.Series([0.80, 0.82, 0.81, 0.99], index=[0, 1, 2, 7])  # seed 7 has no partner: ignored
    b = pd.Series([0.78, 0.79, 0.80, 0.10], index=[0, 1, 2, 9])
    d = paired(a, b)
    assert d["n"] == 3 and d["seeds"] == [0, 1, 2]
    assert d["diff"] == pytest.approx(0.02)  # differences 0.02, 0.03, 0.01
    assert d["p"] == pytest.approx(0.074180, abs=1e-5)  # t = 0.02 / (0.01 / sqrt 3) = 3.46, df 2
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert (d["ci_low"], d["ci_high"]) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))


def test_paired_with_one_shared_seed_is_not_tested():
    d = paired(pd.Series([0.8], index=[0]), pd.Series([0.7], index=[0]))
    assert d["n"] == 1 and math.isnan(d["p"]) and verdict(d["diff"], d["p"], d["n"]) == NOT_TESTED


def test_identical_differences_are_exact():
    d = paired(pd.Series([0.5, 0.75]), pd.Series([0.25, 0.5]))  # exactly 0.25 on both seeds
    assert d["p"] == 0.0 and d["ci_low"] == 0.25 == d["ci_high"]
    assert paired(pd.Series([0.8, 0.9]), pd.Series([0.8, 0.9]))["p"] == 1.0


def test_holm_step_down_is_monotone_and_skips_untested():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone: 0.06 for the last
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    adjusted = holm([math.nan, 0.01, 0.04])  # family of 2, not 3
    assert math.isnan(adjusted[0]) and adjusted[1:].tolist() == pytest.approx([0.02, 0.04])
    assert holm([0.6, 0.7]).tolist() == [1.0, 1.0]  # capped at 1


def test_verdicts_for_separated_and_overlapping_samples():
    real = pd.Series([0.80, 0.81, 0.82, 0.805, 0.815])
    separated = real - np.array([0.050, 0.052, 0.049, 0.051, 0.050])  # 5 points below on every seed
    overlapping = real + np.array([0.01, -0.012, 0.004, -0.006, 0.003])
    worse, unclear = paired(separated, real), paired(overlapping, real)
    p = holm([worse["p"], unclear["p"]])
    assert verdict(worse["diff"], p[0], worse["n"]) == WORSE and worse["ci_high"] < 0
    assert verdict(unclear["diff"], p[1], unclear["n"]) == UNCLEAR and unclear["ci_low"] < 0 < unclear["ci_high"]
    assert verdict(0.05, 0.001, 5) == BETTER
