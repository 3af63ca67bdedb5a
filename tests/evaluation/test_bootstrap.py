"""Percentile-bootstrap intervals over rows, checked on cases whose answer is known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from egail.evaluation.bootstrap import Interval, bootstrap_interval, paired_difference_interval

HALVES = np.array([0.0, 1.0] * 50)


def mean_of(values: np.ndarray):
    return lambda rows: float(values[rows].mean())


def test_mean_of_half_zeros_half_ones():
    # The mean of 100 fair bits has standard error sqrt(0.25 / 100) = 0.05: the 95 % interval is about 0.5 ± 0.098.
    value, low, high = bootstrap_interval(mean_of(HALVES), len(HALVES))
    assert value == 0.5
    assert 0.38 <= low <= 0.42
    assert 0.58 <= high <= 0.62


def test_constant_statistic_has_zero_width():
    assert bootstrap_interval(lambda rows: 3.0, 40) == Interval(3.0, 3.0, 3.0)


def test_statistic_sees_resampled_rows_with_repeats():
    seen = []
    bootstrap_interval(lambda rows: seen.append(rows.copy()) or 0.0, 10, resamples=5)
    assert np.array_equal(seen[0], np.arange(10))  # the point estimate: every row once
    assert all(len(rows) == 10 for rows in seen[1:])
    assert any(len(set(rows)) < 10 for rows in seen[1:])


def test_seeded_and_reproducible():
    statistic = mean_of(np.random.default_rng(1).normal(size=200))
    assert bootstrap_interval(statistic, 200, seed=3) == bootstrap_interval(statistic, 200, seed=3)
    assert bootstrap_interval(statistic, 200, seed=3) != bootstrap_interval(statistic, 200, seed=4)


def test_smaller_alpha_widens():
    statistic = mean_of(HALVES)
    _, low95, high95 = bootstrap_interval(statistic, 100)
    _, low99, high99 = bootstrap_interval(statistic, 100, alpha=0.01)
    assert low99 < low95 and high99 > high95


def test_paired_difference_cancels_shared_row_difficulty():
    # Per-row scores that vary a lot between rows, and model A a constant 0.1 above model B on every row:
    # the paired difference is exactly 0.1, while the two separate intervals overlap.
    b = np.random.default_rng(0).normal(0, 1, size=300)
    a = b + 0.1
    diff = paired_difference_interval(mean_of(a), mean_of(b), 300)
    assert diff.value == pytest.approx(0.1)
    assert diff.low == pytest.approx(0.1) and diff.high == pytest.approx(0.1)
    interval_a, interval_b = bootstrap_interval(mean_of(a), 300), bootstrap_interval(mean_of(b), 300)
    assert interval_a.low < interval_b.high  # the non-overlap rule would call this a tie


def test_paired_difference_of_same_statistic_is_zero():
    statistic = mean_of(HALVES)
    assert paired_difference_interval(statistic, statistic, 100) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_rows": 0}, "at least one row"),
        ({"n_rows": 5, "resamples": 0}, "resamples"),
        ({"n_rows": 5, "alpha": 1.0}, "alpha"),
        ({"n_rows": 5, "alpha": 0.0}, "alpha"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_interval(lambda rows: 0.0, **kwargs)


def test_statistic_undefined_on_a_resample_is_an_error():
    values = np.array([1.0, 0.0, 0.0, 0.0])
    # NaN whenever the resample misses row 0: happens with probability (3/4)^4 per resample.
    with pytest.raises(ValueError, match="not finite"):
        bootstrap_interval(lambda rows: float(values[rows].sum()) or float("nan"), 4, resamples=200)
