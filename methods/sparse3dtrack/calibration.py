"""Calibrated pseudolabel confidence: ``conf`` = the probability that a propagated box is right (IoU >= 0.5).

The matcher's raw heatmap peaks rank matches well but their scale drifts with training length (about
0.25-0.5 at quick budgets), so as weights they mean little. :func:`fit_calibration` maps raw peaks to
probabilities by isotonic regression (``scipy.optimize.isotonic_regression``, pool-adjacent-violators)
on samples the labels allow: :func:`.propagate.propagate` asks each run, with its last template, where
the object is at the next labelled frame of its track and scores the answer against that label. No
hidden ground truth is involved; the development world's ground truth is only used to *measure* the
result (``benchmarks/s3dt_calibration.py``).

:func:`reliability` and :func:`expected_calibration_error` (from :mod:`bench.metrics.calibration`, the
protocol ``conf-calibration`` that scores stored runs) are the usual binned summaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression

from bench.metrics.calibration import expected_calibration_error, reliability

__all__ = ["Calibration", "expected_calibration_error", "fit_calibration", "reliability"]

# Each fitted block's share is smoothed as a Beta(PRIOR, PRIOR) posterior mean: with few labels (or labels that all
# agree) a plain isotonic fit says 0 or 1; one pseudo-sample each way keeps 5 right answers from meaning "always".
PRIOR = 1.0


@dataclass(frozen=True)
class Calibration:
    """A monotone map raw confidence -> probability: linear interpolation between fitted knots."""

    knots: np.ndarray  # raw confidences, increasing
    values: np.ndarray  # probabilities at the knots, non-decreasing
    samples: int

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(raw, dtype=np.float64), self.knots, self.values)


def fit_calibration(raw: np.ndarray, correct: np.ndarray) -> Calibration:
    """Isotonic regression of ``correct`` (bool) on ``raw`` (confidences in [0, 1]), each block Beta-smoothed.

    No samples: the identity map (the raw peak is all there is)."""
    raw = np.clip(np.asarray(raw, dtype=np.float64).reshape(-1), 0.0, 1.0)
    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    if raw.shape != correct.shape:
        raise ValueError(f"raw {raw.shape} and correct {correct.shape} must have one entry per sample")
    if not len(raw):
        return Calibration(np.array([0.0, 1.0]), np.array([0.0, 1.0]), 0)
    order = np.lexsort((correct, raw))  # ties by outcome: the fit does not depend on the samples' order
    x, y = raw[order], correct[order]
    fitted = isotonic_regression(y, increasing=True).x
    # Pool-adjacent-violators blocks are runs of equal fitted values; smooth each by its size.
    edges = np.flatnonzero(np.r_[True, np.diff(fitted) != 0, True])
    smoothed = np.empty_like(fitted)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        smoothed[a:b] = (fitted[a] * (b - a) + PRIOR) / (b - a + 2 * PRIOR)
    smoothed = np.maximum.accumulate(smoothed)
    # One knot per distinct raw value (the mean there), so interpolation is a function.
    knots, start = np.unique(x, return_index=True)
    values = np.array([smoothed[a:b].mean() for a, b in zip(start, [*start[1:], len(x)], strict=True)])
    return Calibration(knots, np.maximum.accumulate(values), int(len(raw)))
