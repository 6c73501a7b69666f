"""Pseudolabel quality: pseudolabels of the training videos scored against their hidden ground truth.

Reports the tracking metrics of a 3D protocol (``3d-iou`` by default) plus box-level quality of the
pseudolabels that match a GT box (same class, Hungarian on 3D IoU >= ``threshold`` per frame):

- ``BoxRecall`` = matched / GT boxes, ``BoxPrecision`` = matched / pseudolabel boxes;
- ``LabelCopies``: share of matched pseudolabels that are exact copies of their GT box (bit for bit: the
  human labels a labeler passes on, or an oracle's boxes);
- over the other matches, the *estimated* boxes: ``CenterErr``, median distance of geometric box centres (m);
  ``SizeErr``, median of the mean absolute h, w, l difference (m); ``YawErr``, median absolute wrapped yaw
  difference in [0, pi] (rad). A box facing backwards has an error near pi: we report the raw error rather
  than folding the pi ambiguity away, and ``YawFlip`` gives the fraction of estimated boxes off by more
  than pi / 2.

Why copies are left out of the errors: a labeler passes its labels on, and those are the ground truth itself.
Where they were more than half of the matches (a labeler that propagated little, as the main job on a busy
machine did: box recall 15 % with 13 % from labels), every median was exactly 0 while ``YawFlip`` was 1 %,
saying nothing about the pseudolabels. Errors are NaN (shown as "-") when no estimated box matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from bench.data.geometry import box_center, wrap_angle
from bench.data.tracks import BOX3D_COLUMNS, DONTCARE, has_3d
from bench.metrics.base import Metric, MetricResult, per_sequence_frame
from bench.metrics.protocols import evaluate
from bench.metrics.similarity import iou_3d

BOX_FIELDS = ("BoxRecall", "BoxPrecision", "LabelCopies", "CenterErr", "SizeErr", "YawErr", "YawFlip")


def match_boxes(gt: pd.DataFrame, pred: pd.DataFrame, threshold: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Row positions ``(gt_rows, pred_rows)`` of matched pairs: per (seq, frame, cls), max-IoU Hungarian."""
    gt_rows, pred_rows = [], []
    g_keys = gt[["seq", "frame", "cls"]].astype(str).agg("|".join, axis=1).to_numpy()
    p_keys = pred[["seq", "frame", "cls"]].astype(str).agg("|".join, axis=1).to_numpy()
    g_box = gt[list(BOX3D_COLUMNS)].to_numpy(dtype=float)
    p_box = pred[list(BOX3D_COLUMNS)].to_numpy(dtype=float)
    p_groups = pd.Series(np.arange(len(pred))).groupby(p_keys).indices if len(pred) else {}
    g_groups = pd.Series(np.arange(len(gt))).groupby(g_keys).indices if len(gt) else {}
    for key, gi in g_groups.items():
        pi = p_groups.get(key)
        if pi is None:
            continue
        iou = iou_3d(g_box[gi], p_box[pi])
        score = np.where(iou >= threshold, iou, 0.0)
        rows, cols = linear_sum_assignment(-score)
        ok = score[rows, cols] > 0
        gt_rows.append(gi[rows[ok]])
        pred_rows.append(pi[cols[ok]])
    if not gt_rows:
        return np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(gt_rows), np.concatenate(pred_rows)


@dataclass
class MatchedBoxes:
    """Matched GT and pseudolabel boxes (``(M, 7)`` each, row-aligned) and how many boxes there were of each."""

    gt: np.ndarray
    pred: np.ndarray
    n_gt: int
    n_pred: int


class BoxQualityMetric(Metric):
    """Pseudolabel box quality (:data:`BOX_FIELDS`) as a :class:`~bench.metrics.base.Metric`.

    ``eval_sequence(gt, pred)``: one sequence's boxes matched frame by frame (:func:`match_boxes`);
    ``combine_sequences``: the matches and box counts of several sequences pooled (the errors are medians
    over all matched boxes, not a mean of per-sequence medians); ``summary``: recall, precision, the share of
    copied labels and the median errors of the estimated boxes (NaN when none matched).
    """

    FIELDS: ClassVar[tuple[str, ...]] = BOX_FIELDS

    def __init__(self, threshold: float = 0.25) -> None:
        self.threshold = threshold

    def eval_sequence(self, gt: pd.DataFrame, pred: pd.DataFrame) -> MatchedBoxes:  # type: ignore[override]
        gi, pi = match_boxes(gt, pred, self.threshold)
        return MatchedBoxes(gt[list(BOX3D_COLUMNS)].to_numpy(dtype=float)[gi],
                            pred[list(BOX3D_COLUMNS)].to_numpy(dtype=float)[pi], len(gt), len(pred))

    def combine_sequences(self, results: dict[str, MatchedBoxes]) -> MatchedBoxes:
        parts = list(results.values())
        return MatchedBoxes(np.concatenate([r.gt for r in parts]) if parts else np.zeros((0, 7)),
                            np.concatenate([r.pred for r in parts]) if parts else np.zeros((0, 7)),
                            sum(r.n_gt for r in parts), sum(r.n_pred for r in parts))

    def summary(self, result: MatchedBoxes) -> dict[str, float]:
        g, p = result.gt, result.pred
        matched = len(g)
        copies = np.all(p == g, axis=1)  # exact equality on purpose: an estimate is never bit-identical to GT
        g, p = g[~copies], p[~copies]
        n = len(g)
        yaw_err = np.abs(wrap_angle(p[:, 6] - g[:, 6]))
        return {
            "BoxRecall": matched / result.n_gt if result.n_gt else float("nan"),
            "BoxPrecision": matched / result.n_pred if result.n_pred else float("nan"),
            "LabelCopies": float(np.mean(copies)) if matched else float("nan"),
            "CenterErr": float(np.median(np.linalg.norm(box_center(p) - box_center(g), axis=1))) if n else float("nan"),
            "SizeErr": float(np.median(np.abs(p[:, 3:6] - g[:, 3:6]).mean(axis=1))) if n else float("nan"),
            "YawErr": float(np.median(yaw_err)) if n else float("nan"),
            "YawFlip": float(np.mean(yaw_err > np.pi / 2)) if n else float("nan"),
        }


def box_quality(gt: pd.DataFrame, pred: pd.DataFrame, threshold: float = 0.25) -> dict[str, float]:
    """Recall / precision of boxes, the share of matches that copy their GT box, and median errors of the
    other (estimated) matched boxes (NaN when none matched): :class:`BoxQualityMetric` on one table."""
    metric = BoxQualityMetric(threshold)
    return metric.summary(metric.eval_sequence(gt, pred))


def evaluate_protocol(gt: pd.DataFrame, pred: pd.DataFrame, *, sequences: dict[str, Any] | None = None,
                      protocol: str = "3d-iou", threshold: float = 0.25, **options: Any) -> MetricResult:
    """Tracking metrics of ``protocol`` plus box quality, overall and per sequence."""
    gt = gt[has_3d(gt) & (gt["track_id"].to_numpy() >= 0)].reset_index(drop=True)
    # DontCare rows a labeler passes on (sparse, oracle) are ignore regions for training, not boxes to score.
    pred = pred[(pred["cls"] != DONTCARE).to_numpy()].reset_index(drop=True)
    tracking = evaluate(protocol, gt, pred, sequences=sequences, **options)
    metric = BoxQualityMetric(threshold)
    # Matches never cross sequences, and the pooled numbers (counts, medians) do not depend on their order.
    per_seq = {seq: metric.eval_sequence(gt[gt["seq"] == seq], pred[pred["seq"] == seq])
               for seq in sorted(set(gt["seq"]) | set(pred["seq"]))}
    summary = {**tracking.summary, **metric.summary(metric.combine_sequences(per_seq))}
    seq_rows = {seq: metric.summary(result) for seq, result in per_seq.items()}
    per_sequence = pd.concat([tracking.per_sequence, per_sequence_frame(seq_rows)], ignore_index=True)
    return MetricResult(protocol="pseudolabel", summary=summary, per_sequence=per_sequence,
                        extras={"tracking_protocol": protocol, "match_threshold": threshold, **tracking.extras})
