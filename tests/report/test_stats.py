"""Paired differences (paired t) and gap closed (seeded bootstrap over seeds), checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from bench.report.stats import BOOTSTRAP_RESAMPLES, format_interval, gap_closed, paired_difference


def test_paired_difference_is_a_paired_t_interval_over_shared_seeds() -> None:
    a = {0: 0.40, 1: 0.45, 2: 0.41, 7: 0.9}  # seed 7 has no partner: left out
    b = {0: 0.30, 1: 0.33, 2: 0.33, 5: 0.1}
    d = paired_difference(a, b)
    diffs = np.array([0.10, 0.12, 0.08])
    half = scipy_stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert d.n == 3 and d.method == "paired t"
    assert d.value == pytest.approx(diffs.mean()) and d.low == pytest.approx(diffs.mean() - half)
    assert d.high == pytest.approx(diffs.mean() + half) and not d.contains_zero


def test_an_interval_needs_two_shared_seeds() -> None:
    one = paired_difference({0: 0.5, 1: 0.6}, {1: 0.4, 2: 0.3})
    assert one.n == 1 and one.value == pytest.approx(0.2) and not one.defined and one.contains_zero
    none = paired_difference({0: 0.5}, {3: 0.4})
    assert none.n == 0 and math.isnan(none.value) and format_interval(none) == "-"


def test_a_noisy_difference_contains_zero() -> None:
    d = paired_difference({0: 0.50, 1: 0.30, 2: 0.45}, {0: 0.35, 1: 0.40, 2: 0.40})
    assert d.low < 0 < d.high and d.contains_zero


def test_gap_closed_bootstrap_is_seeded_and_brackets_the_point() -> None:
    row = {0: 0.25, 1: 0.35, 2: 0.30}
    lower = {0: 0.10, 1: 0.12, 2: 0.08}
    upper = {0: 0.40, 1: 0.44, 2: 0.41}
    g = gap_closed(row, lower, upper)
    point = (np.mean([0.25, 0.35, 0.30]) - np.mean([0.10, 0.12, 0.08])) / (np.mean([0.40, 0.44, 0.41]) - 0.10)
    assert g.value == pytest.approx(point) and g.n == 3 and g.method == "bootstrap over seeds"
    assert g.low <= g.value <= g.high and g.high - g.low > 0.05
    assert gap_closed(row, lower, upper) == g  # same store, same interval: no clock, no global random state
    np.random.seed(123)
    assert gap_closed(row, lower, upper) == g
    assert BOOTSTRAP_RESAMPLES >= 1000


def test_gap_closed_without_spread_or_bounds() -> None:
    assert not gap_closed({0: 0.3}, {0: 0.1}, {0: 0.5}).defined  # one seed: point only
    assert gap_closed({0: 0.3}, {0: 0.1}, {0: 0.5}).value == pytest.approx(0.5)
    assert math.isnan(gap_closed({0: 0.3, 1: 0.3}, {0: 0.2, 1: 0.2}, {0: 0.2, 1: 0.2}).value)  # upper == lower
    assert format_interval(gap_closed({0: 0.3, 1: 0.32}, {0: 0.1, 1: 0.12}, {0: 0.5, 1: 0.52}), signed=False) == \
        "0.50 [0.50, 0.50]"
