"""Statistics over seeds that a reviewer can check: paired differences and the gap closed, with 95 % intervals.

Two methods run on the same seeds share the seed's data, labels and training seed, so the difference is taken
seed by seed (paired) and its interval comes from the spread of those differences:

- **paired difference**: mean of ``a[s] - b[s]`` over the seeds both have, with a two-sided 95 % *paired t*
  interval ``mean ± t(0.975, n-1) · sd / sqrt(n)`` (``scipy.stats.t``; scipy is a core dependency of bench).
  It needs at least two shared seeds; with one the interval is undefined (NaN, shown as "-").
- **gap closed** ``(row - lower) / (upper - lower)``: a ratio of means, so no t interval; its 95 % interval
  is a *percentile bootstrap over seeds* (2000 resamples, numpy generator seeded with 0, so the same store
  always prints the same interval): each resample draws seeds with replacement, the same seeds for the
  three methods where they share them (paired), and recomputes the ratio. With three seeds there are only
  10 distinct resamples; the interval is then coarse and reads as "how much the seeds move it", not as a
  calibrated 95 %.

An interval that contains zero means the data cannot tell the two methods apart: tables mark such a claim
instead of bolding it (:func:`bench.report.tables.build_leaderboards`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
PAIRED_METHOD = "paired t"
GAP_METHOD = "bootstrap over seeds"
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95 % interval over ``n`` seeds (``low``/``high`` NaN when undefined)."""

    value: float
    low: float
    high: float
    n: int
    method: str

    @property
    def defined(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    @property
    def contains_zero(self) -> bool:
        """True when the interval cannot rule out "no difference" (an undefined interval cannot either)."""
        return not self.defined or self.low <= 0.0 <= self.high


def shared_seeds(a: dict[int, float], b: dict[int, float]) -> list[int]:
    """Seeds with a finite value in both."""
    return sorted(s for s in set(a) & set(b) if math.isfinite(a[s]) and math.isfinite(b[s]))


def paired_difference(a: dict[int, float], b: dict[int, float], confidence: float = CONFIDENCE) -> Interval:
    """``a - b`` over the seeds both ran (``{seed: value}``), with a paired t interval."""
    seeds = shared_seeds(a, b)
    diffs = np.array([a[s] - b[s] for s in seeds], dtype=float)
    n = len(diffs)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, PAIRED_METHOD)
    mean = float(diffs.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, PAIRED_METHOD)
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1) * diffs.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n, PAIRED_METHOD)


def _gap(row: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    span = upper.mean() - lower.mean()
    return math.nan if math.isclose(span, 0.0, abs_tol=1e-12) else float((row.mean() - lower.mean()) / span)


def gap_closed(row: dict[int, float], lower: dict[int, float], upper: dict[int, float],
               confidence: float = CONFIDENCE) -> Interval:
    """(row - lower) / (upper - lower) of seed means, with a seeded percentile bootstrap interval over seeds."""
    values = [np.array([v for v in d.values() if math.isfinite(v)], dtype=float) for d in (row, lower, upper)]
    if any(len(v) == 0 for v in values):
        return Interval(math.nan, math.nan, math.nan, 0, GAP_METHOD)
    point = _gap(*values)
    n = min(len(v) for v in values)
    if n < 2 or math.isnan(point):
        return Interval(point, math.nan, math.nan, n, GAP_METHOD)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    common = sorted(set(shared_seeds(row, lower)) & set(upper))
    if len(common) >= 2:  # paired: one draw of seeds for all three methods
        arrays = [np.array([d[s] for s in common], dtype=float) for d in (row, lower, upper)]
        picks = rng.integers(0, len(common), size=(BOOTSTRAP_RESAMPLES, len(common)))
        samples = [_gap(arrays[0][p], arrays[1][p], arrays[2][p]) for p in picks]
        n = len(common)
    else:  # no common seeds: resample each method's seeds on its own
        draws = [rng.integers(0, len(v), size=(BOOTSTRAP_RESAMPLES, len(v))) for v in values]
        samples = [_gap(values[0][draws[0][i]], values[1][draws[1][i]], values[2][draws[2][i]])
                   for i in range(BOOTSTRAP_RESAMPLES)]
    finite = np.array([s for s in samples if math.isfinite(s)])
    if len(finite) < BOOTSTRAP_RESAMPLES / 2:  # the bounds coincide in most resamples: no stable ratio
        return Interval(point, math.nan, math.nan, n, GAP_METHOD)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(point, float(low), float(high), n, GAP_METHOD)


def format_interval(interval: Interval, scale: float = 1.0, decimals: int = 2, signed: bool = True) -> str:
    """``+12.30 [+4.10, +20.50]`` in display units; "-" for an undefined value, the value alone without interval."""
    if math.isnan(interval.value):
        return "-"
    fmt = (lambda v: f"{round(v * scale, decimals) + 0.0:+.{decimals}f}") if signed else \
        (lambda v: f"{v * scale:.{decimals}f}")
    text = fmt(interval.value)
    return text + (f" [{fmt(interval.low)}, {fmt(interval.high)}]" if interval.defined else "")
