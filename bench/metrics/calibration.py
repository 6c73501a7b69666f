"""Confidence calibration of pseudolabels (protocol ``conf-calibration``): does ``conf`` mean P(box is right)?

A labeler that propagates labels (Sparse3DTrack) writes each propagated box's ``conf``. Here every
propagated row (``conf`` < 1: the human labels keep 1) is joined to the ground-truth box of the *same
track* in the same frame; it is right when their 2D IoU is >= 0.5 (a row whose track is absent from
that frame is wrong). Over equal-width confidence bins:

- ``ConfRows``: propagated rows scored; ``ConfRight``: the share right;
- ``ConfECE``: expected calibration error, the row-weighted mean |share right - mean conf| over the
  non-empty bins (0 = perfectly calibrated);
- per bin ``b`` of :data:`BINS`: ``ConfBin{b}N`` (rows), ``ConfBin{b}Conf`` (mean conf), ``ConfBin{b}Acc``
  (share right); an empty bin's means are NaN.

The report draws the bins as a reliability diagram on the run's page. :func:`reliability` and
:func:`expected_calibration_error` are the same summaries for plain arrays (the labeler's own
calibration code and ``benchmarks/s3dt_calibration.py`` use them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bench.data.tracks import DONTCARE
from bench.metrics.base import MetricResult, per_sequence_frame

BINS = 10
MIN_IOU = 0.5
_KEYS = ["seq", "frame", "track_id"]
_BOX = ["x1", "y1", "x2", "y2"]


def reliability(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per equal-width confidence bin over [0, 1]: its range, sample count, mean confidence and share correct."""
    conf = np.clip(np.asarray(conf, dtype=np.float64).reshape(-1), 0.0, 1.0)
    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "n": n,
                    "confidence": float(conf[inside].mean()) if n else float("nan"),
                    "accuracy": float(correct[inside].mean()) if n else float("nan")})
    return out


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    """Sample-weighted mean |accuracy - confidence| over the non-empty bins of :func:`reliability` (NaN: none)."""
    rows = [r for r in reliability(conf, correct, bins) if r["n"]]
    total = sum(r["n"] for r in rows)
    if not total:
        return float("nan")
    return float(sum(r["n"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / total)


def propagated_correctness(gt: pd.DataFrame, pred: pd.DataFrame, min_iou: float = MIN_IOU
                           ) -> tuple[pd.DataFrame, np.ndarray]:
    """The propagated rows of ``pred`` (conf < 1, real objects) and, per row, whether it is right (see above)."""
    keep = (pred["conf"].to_numpy(float) < 1.0) & (pred["track_id"].to_numpy() >= 0) & \
        (pred["cls"].astype(str) != DONTCARE).to_numpy()
    rows = pred.loc[keep, [*_KEYS, *_BOX, "conf"]].reset_index(drop=True)
    truth = gt.loc[(gt["cls"].astype(str) != DONTCARE).to_numpy(), [*_KEYS, *_BOX]]
    joined = rows.merge(truth, on=_KEYS, how="left", suffixes=("", "_gt"))
    a = joined[_BOX].to_numpy(float)
    b = joined[[f"{c}_gt" for c in _BOX]].to_numpy(float)
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(np.isfinite(b).all(axis=1), inter / np.maximum(union, 1e-9), 0.0)
    return rows, iou >= min_iou


def _summary(conf: np.ndarray, right: np.ndarray, bins: int) -> dict[str, float]:
    out = {"ConfRows": float(len(conf)), "ConfRight": float(right.mean()) if len(right) else float("nan"),
           "ConfECE": expected_calibration_error(conf, right, bins)}
    for b, row in enumerate(reliability(conf, right, bins)):
        out.update({f"ConfBin{b}N": float(row["n"]), f"ConfBin{b}Conf": row["confidence"],
                    f"ConfBin{b}Acc": row["accuracy"]})
    return out


def evaluate_protocol(gt: pd.DataFrame, pred: pd.DataFrame, *, sequences: dict[str, Any] | None = None,
                      min_iou: float = MIN_IOU, bins: int = BINS, **options: Any) -> MetricResult:
    """Reliability of the propagated rows' ``conf``, overall (with bins) and per sequence (rows, share right, ECE)."""
    rows, right = propagated_correctness(gt, pred, min_iou)
    conf = rows["conf"].to_numpy(float)
    per_seq = {}
    for seq in sorted(set(rows["seq"]) | set(sequences or {})):
        inside = (rows["seq"] == seq).to_numpy()
        full = _summary(conf[inside], right[inside], bins)
        per_seq[str(seq)] = {k: full[k] for k in ("ConfRows", "ConfRight", "ConfECE")}
    return MetricResult(protocol="conf-calibration", summary=_summary(conf, right, bins),
                        per_sequence=per_sequence_frame(per_seq), extras={"min_iou": min_iou, "bins": bins})
