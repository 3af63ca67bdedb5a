"""Percentile-bootstrap 95 % intervals over evaluation rows, for one figure or for a difference of two.

The mean ± std over sampling seeds in table.md says how much a figure moves when the *model* samples again;
it says nothing about how much it would move on other *rows* of the same distribution, which is what decides
whether "model A beats model B" on 600 held-back rows is more than luck. Here the rows are resampled with
replacement and the figure is recomputed on every resample by ``statistic(indices)``. Passing a function
of row indices (not per-row values) matters: corpus figures such as BLEU-2, distinct-2 or a probe's AUC are
not means of per-row numbers, so they must be recomputed from the resampled rows, never averaged.

``paired_difference_interval`` resamples the *same* rows for two models and bootstraps the difference. The
study's claim rule "the 95 % intervals do not overlap" is conservative (two intervals can overlap while the
difference is clearly non-zero); when both models answered the same rows, the paired interval of the
difference excluding 0 is the sharper and correct test, because the row-to-row difficulty that both models
share cancels out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: A figure recomputed on a resample: it gets the resampled row indices (with repeats), returns a float.
Statistic = Callable[[np.ndarray], float]


class Interval(NamedTuple):
    """A figure on all rows and its percentile-bootstrap interval; unpacks as ``value, low, high``."""

    value: float
    low: float
    high: float


def _check(n_rows: int, resamples: int, alpha: float) -> None:
    if n_rows < 1:
        raise ValueError(f"the bootstrap needs at least one row, got n_rows={n_rows}.")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}.")


def _resampled(statistic: Statistic, n_rows: int, resamples: int, seed: int) -> tuple[float, np.ndarray]:
    """The statistic on all rows and on ``resamples`` seeded resamples of them.

    A non-finite value is an error rather than something to drop: dropping it would quietly narrow the
    interval to the resamples where the figure happens to be defined.
    """
    value = float(statistic(np.arange(n_rows)))
    indices = np.random.default_rng(seed).integers(0, n_rows, size=(resamples, n_rows))
    values = np.array([statistic(row) for row in indices], dtype=float)
    bad = int((~np.isfinite(values)).sum())
    if not np.isfinite(value) or bad:
        raise ValueError(
            f"the statistic is not finite on all rows ({value}) or on {bad} of {resamples} resamples; "
            "it must be defined on every resample."
        )
    return value, values


def _interval(value: float, values: np.ndarray, alpha: float) -> Interval:
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return Interval(value, float(low), float(high))


def bootstrap_interval(
    statistic: Statistic, n_rows: int, resamples: int = 1000, seed: int = 0, alpha: float = 0.05
) -> Interval:
    """``statistic`` on all ``n_rows`` rows and its percentile-bootstrap ``1 - alpha`` interval over rows.

    ``statistic(indices)`` recomputes the figure from the rows at ``indices`` (an integer array of length
    ``n_rows``, with repeats); the first call gets ``arange(n_rows)``, the point estimate. The same ``seed``
    draws the same resamples, so intervals are reproducible and, for several figures scored with one seed,
    computed on the same resamples.
    """
    _check(n_rows, resamples, alpha)
    return _interval(*_resampled(statistic, n_rows, resamples, seed), alpha)


def paired_difference_interval(
    statistic_a: Statistic,
    statistic_b: Statistic,
    n_rows: int,
    resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Interval:
    """``statistic_a - statistic_b`` on all rows and its paired percentile-bootstrap interval.

    Both statistics see the same resampled rows in every resample (both models answered the same rows), so
    the interval is that of the difference itself: A is better than B at level ``alpha`` when it excludes 0.
    """
    _check(n_rows, resamples, alpha)
    return _interval(*_resampled(lambda rows: statistic_a(rows) - statistic_b(rows), n_rows, resamples, seed), alpha)
