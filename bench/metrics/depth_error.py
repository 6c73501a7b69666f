"""Monocular depth error by range (protocol ``depth-error``): how far off z is where the 2D detection is right.

Centre-distance (nuScenes, 2 m) and 3D-IoU metrics fail together when monocular depth is off by a few metres,
and they do not say by how much or where. This protocol matches each frame's predictions one-to-one to the
ground-truth boxes of the same class by 2D IoU (Hungarian, IoU >= 0.5, DontCare and boxes without a 3D box
left out), and over the matched pairs reports:

- ``DepthMatches``: the number of matched pairs (the errors are medians over them);
- ``DepthErr``: median |z_pred - z_gt| (m), and ``DepthBias``: median z_pred - z_gt (m; positive = too far);
- per ground-truth range bin, ``DepthErr0to20`` / ``DepthErr20to40`` / ``DepthErr40up``: median |dz| (m);
- ``DepthRelErr40up``: median |dz| / z_gt beyond 40 m.

A bin with no match is NaN (shown as "-"). Issue 21's targets read off these: <= 1 m at 20-40 m and <= 5 % of
the range beyond 40 m for the oracle's detections. ``benchmarks/centertrack_depth_error.py`` prints the same for
stored runs; the report draws the bins as a plot beside the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from bench.data.tracks import DONTCARE
from bench.metrics.base import Metric, MetricResult, per_sequence_frame
from bench.metrics.similarity import iou_2d

MIN_IOU = 0.5
# Ground-truth range bins (m) and their metric names.
RANGE_BINS: tuple[tuple[str, float, float], ...] = (
    ("DepthErr0to20", 0.0, 20.0), ("DepthErr20to40", 20.0, 40.0), ("DepthErr40up", 40.0, np.inf))
DEPTH_FIELDS = ("DepthMatches", "DepthErr", "DepthBias", *(name for name, _, _ in RANGE_BINS), "DepthRelErr40up")
_BOX = ["x1", "y1", "x2", "y2"]


@dataclass
class MatchedDepths:
    gt: np.ndarray  # (N,) ground-truth z (m)
    pred: np.ndarray  # (N,) predicted z of the matched detections (m)


def match_2d(gt: pd.DataFrame, pred: pd.DataFrame, min_iou: float = MIN_IOU) -> tuple[np.ndarray, np.ndarray]:
    """Positional rows ``(gt_rows, pred_rows)`` of the one-to-one matches: per frame (and sequence, where both tables
    have one) and class, Hungarian on 2D IoU, pairs with IoU >= ``min_iou``. DontCare rows and rows without a
    finite z never match. ``benchmarks/amota_depth_oracle.py`` matches the same way."""
    keys = ["seq", "frame"] if "seq" in gt and "seq" in pred else ["frame"]

    def groups(table: pd.DataFrame) -> dict[Any, np.ndarray]:
        keep = ((table["cls"].astype(str) != DONTCARE) & np.isfinite(table["z"].to_numpy(dtype=float))).to_numpy()
        rows = np.flatnonzero(keep)
        cls = table["cls"].astype(str).str.lower().to_numpy()[rows]
        frame = pd.DataFrame({k: table[k].to_numpy()[rows] for k in keys}).assign(cls=cls)
        return {key: rows[i] for key, i in frame.groupby([*keys, "cls"]).indices.items()} if len(rows) else {}

    p_groups = groups(pred)
    g_box, p_box = gt[_BOX].to_numpy(dtype=float), pred[_BOX].to_numpy(dtype=float)
    out_g, out_p = [], []
    for key, gi in groups(gt).items():
        pi = p_groups.get(key)
        if pi is None:
            continue
        iou = iou_2d(g_box[gi], p_box[pi])
        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= min_iou
        out_g.append(gi[rows[ok]])
        out_p.append(pi[cols[ok]])
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(out_g) if out_g else empty), (np.concatenate(out_p) if out_p else empty)


class DepthErrorMetric(Metric):
    """Depth error of 2D-matched detections as a :class:`~bench.metrics.base.Metric` (fields: :data:`DEPTH_FIELDS`).

    ``eval_sequence(gt, pred)``: one sequence's matched (z_gt, z_pred) pairs; ``combine_sequences``: the pairs
    pooled (medians over all pairs, not a mean of per-sequence medians); ``summary``: the medians by range.
    """

    FIELDS: ClassVar[tuple[str, ...]] = DEPTH_FIELDS

    def __init__(self, min_iou: float = MIN_IOU) -> None:
        self.min_iou = min_iou

    def eval_sequence(self, gt: pd.DataFrame, pred: pd.DataFrame) -> MatchedDepths:  # type: ignore[override]
        g_rows, p_rows = match_2d(gt, pred, self.min_iou)
        return MatchedDepths(gt["z"].to_numpy(dtype=float)[g_rows], pred["z"].to_numpy(dtype=float)[p_rows])

    def combine_sequences(self, results: dict[str, MatchedDepths]) -> MatchedDepths:
        parts = list(results.values())
        return MatchedDepths(np.concatenate([r.gt for r in parts]) if parts else np.zeros(0),
                             np.concatenate([r.pred for r in parts]) if parts else np.zeros(0))

    def summary(self, result: MatchedDepths) -> dict[str, float]:
        dz = result.pred - result.gt

        def median(values: np.ndarray) -> float:
            return float(np.median(values)) if len(values) else float("nan")

        out = {"DepthMatches": float(len(dz)), "DepthErr": median(np.abs(dz)), "DepthBias": median(dz)}
        for name, lo, hi in RANGE_BINS:
            out[name] = median(np.abs(dz[(result.gt >= lo) & (result.gt < hi)]))
        far = result.gt >= RANGE_BINS[-1][1]
        out["DepthRelErr40up"] = median(np.abs(dz[far]) / result.gt[far])
        return out


def evaluate_protocol(gt: pd.DataFrame, pred: pd.DataFrame, *, sequences: dict[str, Any] | None = None,
                      min_iou: float = MIN_IOU, **options: Any) -> MetricResult:
    """Depth error by range, overall and per sequence (see the module docstring)."""
    metric = DepthErrorMetric(min_iou)
    seqs = sorted(set(gt["seq"]) | set(pred["seq"]) | set(sequences or {}))
    gt_by_seq, pred_by_seq = dict(tuple(gt.groupby("seq", sort=False))), dict(tuple(pred.groupby("seq", sort=False)))
    per_seq = {seq: metric.eval_sequence(gt_by_seq.get(seq, gt.iloc[:0]), pred_by_seq.get(seq, pred.iloc[:0]))
               for seq in seqs}
    summary = metric.summary(metric.combine_sequences(per_seq))
    rows = {seq: metric.summary(result) for seq, result in per_seq.items()}
    return MetricResult(protocol="depth-error", summary=summary, per_sequence=per_sequence_frame(rows),
                        extras={"min_iou": min_iou, "range_bins": [[lo, hi] for _, lo, hi in RANGE_BINS]})
