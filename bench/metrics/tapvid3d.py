"""TAPVid-3D metrics: APD3D, Occlusion Accuracy and 3D Average Jaccard, as tapnet's tapvid3d evaluation.

Definitions (TAPVid-3D paper, arXiv 2407.05921; ``tapnet/tapvid3d/evaluation/metrics.py``), per video:

* The prediction is first rescaled by one factor per video. ``median`` (default): the median 3D norm of the
  GT points over the median norm of the predicted points, both taken over the (frame, point) entries visible in
  GT *and* prediction; ``mean`` the same with means; ``per_trajectory`` one factor per track, GT depth over
  predicted depth at the query frame; ``none`` no rescaling.
* Depth-adaptive thresholds ``delta_k = k * z_gt / sqrt(fx * fy)`` for k in 1, 2, 4, 8, 16 pixels (intrinsics at
  the evaluation resolution, shorter image side 256 px); a point is *within* if its 3D error is strictly below.
* OA = fraction of all (frame, point) entries whose predicted visibility equals the GT's.
* APD_k = #(GT visible and within) / #GT visible (predicted visibility ignored); APD3D = mean over k.
* AJ_k = TP / (#GT visible + FP), TP = GT visible, within and predicted visible; FP = predicted visible and
  (GT occluded or not within). 3D-AJ = mean over k. All frames count, the query frame included.
* The benchmark score is the mean over videos (then over data sources, when videos carry one).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from bench.metrics.base import Metric

THRESHOLDS_PX = (1, 2, 4, 8, 16)
# tapnet's fixed metric thresholds (metres) for ``use_fixed_metric_threshold``.
FIXED_METRIC_THRESHOLDS = {1: 0.01, 2: 0.04, 4: 0.16, 8: 0.64, 16: 2.56}
SCALINGS = ("median", "mean", "per_trajectory", "none")
EVAL_RESOLUTION = 256  # shorter image side at which the thresholds are defined


def scale_factor(gt_xyz: np.ndarray, gt_visible: np.ndarray, pred_xyz: np.ndarray, pred_visible: np.ndarray,
                 scaling: str = "median", query_frames: np.ndarray | None = None) -> np.ndarray:
    """Factor(s) that multiply ``pred_xyz (T, N, 3)``: a scalar array, or ``(1, N, 1)`` for ``per_trajectory``."""
    if scaling == "none":
        return np.asarray(1.0)
    if scaling == "per_trajectory":
        if query_frames is None:
            raise ValueError("per_trajectory scaling needs the query frame of every track")
        t = np.round(np.asarray(query_frames)).astype(int)
        cols = np.arange(gt_xyz.shape[1])
        gt_z = np.maximum(gt_xyz[t, cols, 2], 1e-12)
        pred_z = np.maximum(pred_xyz[t, cols, 2], 1e-12)
        return (gt_z / pred_z)[None, :, None]
    if scaling not in ("median", "mean"):
        raise ValueError(f"unknown scaling {scaling!r}; expected one of {', '.join(SCALINGS)}")
    both = gt_visible & pred_visible
    gt_norm = np.sqrt(np.maximum(1e-12, (gt_xyz**2).sum(-1)))[both]
    pred_norm = np.sqrt(np.maximum(1e-12, (pred_xyz**2).sum(-1)))[both]
    if len(gt_norm) == 0:
        return np.asarray(np.nan)  # as tapnet: nothing visible in both -> NaN scale, every point counts as far
    reduce = np.median if scaling == "median" else np.mean
    return np.asarray(reduce(gt_norm) / reduce(pred_norm))


def video_metrics(gt_xyz: np.ndarray, gt_visible: np.ndarray, pred_xyz: np.ndarray, pred_visible: np.ndarray,
                  intrinsics: np.ndarray, *, scaling: str = "median", query_frames: np.ndarray | None = None,
                  use_fixed_metric_threshold: bool = False) -> dict[str, float]:
    """Metrics of one video. Arrays are ``(T, N, 3)`` / ``(T, N)``; ``intrinsics`` = fx, fy, cx, cy at the
    evaluation resolution. Keys follow tapnet: ``occlusion_accuracy``, ``pts_within_{k}``, ``jaccard_{k}``,
    ``average_pts_within_thresh`` (APD3D), ``average_jaccard`` (3D-AJ)."""
    gt_xyz = np.asarray(gt_xyz, np.float64)
    pred_xyz = np.asarray(pred_xyz, np.float64)
    gt_visible = np.asarray(gt_visible, bool)
    pred_visible = np.asarray(pred_visible, bool)
    if gt_xyz.shape != pred_xyz.shape or gt_visible.shape != pred_visible.shape or gt_xyz.shape[:2] != gt_visible.shape:
        raise ValueError(f"shape mismatch: gt {gt_xyz.shape}/{gt_visible.shape}, "
                         f"pred {pred_xyz.shape}/{pred_visible.shape}; expected (T, N, 3) and (T, N)")
    pred_xyz = pred_xyz * scale_factor(gt_xyz, gt_visible, pred_xyz, pred_visible, scaling, query_frames)
    out = {"occlusion_accuracy": float((gt_visible == pred_visible).mean())}
    # Squared error vs squared threshold, so a NaN scale makes every point "not within" (as tapnet).
    err2 = ((pred_xyz - gt_xyz) ** 2).sum(-1)
    fx, fy = float(intrinsics[0]), float(intrinsics[1])
    n_visible = gt_visible.sum()
    within_k, jaccard_k = [], []
    for k in THRESHOLDS_PX:
        thresh = FIXED_METRIC_THRESHOLDS[k] if use_fixed_metric_threshold else k * gt_xyz[..., 2] / np.sqrt(fx * fy)
        within = err2 < np.square(thresh)
        correct = within & gt_visible
        tp = (correct & pred_visible).sum()
        fp = (pred_visible & (~gt_visible | ~within)).sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = correct.sum() / n_visible
            jac = tp / (n_visible + fp)
        out[f"pts_within_{k}"] = float(frac)
        out[f"jaccard_{k}"] = float(jac)
        within_k.append(frac)
        jaccard_k.append(jac)
    out["average_pts_within_thresh"] = float(np.mean(within_k))
    out["average_jaccard"] = float(np.mean(jaccard_k))
    return out


ZERO_METRICS = {"occlusion_accuracy": 0.0, **{f"pts_within_{k}": 0.0 for k in THRESHOLDS_PX},
                **{f"jaccard_{k}": 0.0 for k in THRESHOLDS_PX}, "average_pts_within_thresh": 0.0,
                "average_jaccard": 0.0}
HEADLINE = {"average_pts_within_thresh": "APD3D", "occlusion_accuracy": "OA", "average_jaccard": "3D-AJ"}


def eval_intrinsics(intrinsics: np.ndarray, image_size: tuple[int, int],
                    resolution: int = EVAL_RESOLUTION) -> np.ndarray:
    """fx fy cx cy rescaled so that the shorter image side is ``resolution`` px (tapnet's evaluate_model)."""
    w, h = image_size
    return np.asarray(intrinsics, np.float64) * (resolution / min(w, h))


class Tapvid3dMetric(Metric):
    """TAPVid-3D's APD3D, OA and 3D-AJ as a :class:`~bench.metrics.base.Metric`: per video, then the mean.

    ``eval_sequence(gt, pred, intrinsics)``: one video's metrics (a video without a prediction scores 0,
    tapnet's rule); ``combine_sequences``: the mean over videos, and with ``groups`` (video -> data source)
    first within each source, then over sources; ``summary`` names the headline metrics (:data:`HEADLINE`).
    """

    FIELDS: ClassVar[Mapping[str, str]] = HEADLINE

    def __init__(self, scaling: str = "median", groups: dict[str, str] | None = None,
                 use_fixed_metric_threshold: bool = False) -> None:
        self.scaling = scaling
        self.groups = groups
        self.use_fixed_metric_threshold = use_fixed_metric_threshold

    def eval_sequence(self, gt: Any, pred: Any | None, intrinsics: np.ndarray) -> dict[str, float]:  # type: ignore[override]
        if pred is None:
            return dict(ZERO_METRICS)
        return video_metrics(gt.xyz, gt.visible, pred.xyz, pred.visible, intrinsics, scaling=self.scaling,
                             query_frames=np.asarray(gt.queries)[:, 2],
                             use_fixed_metric_threshold=self.use_fixed_metric_threshold)

    def combine_sequences(self, results: dict[str, dict[str, float]]) -> dict[str, float]:
        table = pd.DataFrame.from_dict(results, orient="index")
        if self.groups:
            groups = self.groups
            table = table.groupby(table.index.map(lambda n: groups.get(str(n), "default"))).mean()
        means = table.mean() if len(table) else pd.Series(ZERO_METRICS) * np.nan
        return {str(k): float(v) for k, v in means.items()}

    def summary(self, result: Mapping[str, float]) -> dict[str, float]:
        return {HEADLINE.get(k, k): v for k, v in result.items()}


def evaluate(gt: dict[str, Any], pred: dict[str, Any], intrinsics: dict[str, np.ndarray], *,
             scaling: str = "median", groups: dict[str, str] | None = None,
             use_fixed_metric_threshold: bool = False) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Score videos: ``gt``/``pred`` map a name to PointTracks; ``intrinsics`` to fx fy cx cy at eval resolution.

    Returns (summary, per-video metrics), through :class:`Tapvid3dMetric`.
    """
    metric = Tapvid3dMetric(scaling, groups, use_fixed_metric_threshold)
    per_video = {name: metric.eval_sequence(g, pred.get(name), intrinsics[name]) for name, g in gt.items()}
    return metric.summary(metric.combine_sequences(per_video)), per_video


def evaluate_protocol(gt: dict[str, Any], pred: dict[str, Any], *, sequences: dict[str, Any] | None = None,
                      intrinsics: dict[str, np.ndarray] | None = None, scaling: str = "median",
                      groups: dict[str, str] | None = None, **opts: Any) -> Any:
    """Protocol ``tapvid3d``: APD3D, OA and 3D-AJ of point tracks (dicts seq -> ``bench.data.PointTracks``).

    Intrinsics come from ``intrinsics`` (seq -> fx fy cx cy already at the 256 px evaluation resolution, as
    :func:`load_tapvid3d` returns) or from ``sequences`` (first frame's K and the image size).
    """
    from bench.metrics.base import MetricResult, per_sequence_frame

    if intrinsics is None:
        if sequences is None:
            raise ValueError("tapvid3d needs camera intrinsics: pass sequences= or intrinsics=")
        intrinsics = {}
        for name in gt:
            if name not in sequences:
                raise ValueError(f"tapvid3d: no sequence {name!r} to take intrinsics from")
            s = sequences[name]
            k = np.asarray(s.intrinsics)[0]
            intrinsics[name] = eval_intrinsics(np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]]), s.image_size)
    unknown = sorted(set(pred) - set(gt))
    if unknown:
        raise ValueError(f"tapvid3d: predictions for unknown sequences {unknown[:5]}")
    summary, per_video = evaluate(gt, pred, intrinsics, scaling=scaling, groups=groups, **opts)
    per_seq = per_sequence_frame({n: {HEADLINE.get(k, k): v for k, v in m.items()} for n, m in per_video.items()})
    extras = {"scaling": scaling, "missing_predictions": sorted(set(gt) - set(pred))}
    return MetricResult(protocol="tapvid3d", summary=summary, per_sequence=per_seq, extras=extras)


def load_tapvid3d(gt_dir: str | Path, pred_dir: str | Path,
                  resolution: int = EVAL_RESOLUTION) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """Read a TAPVid-3D ground-truth folder and a prediction folder (:func:`bench.data.formats.tapvid3d_eval.
    read_tapvid3d_eval`); returns (gt, pred, intrinsics rescaled to the evaluation resolution)."""
    from bench.data.formats.tapvid3d_eval import read_tapvid3d_eval

    gt, pred, cameras = read_tapvid3d_eval(gt_dir, pred_dir)
    return gt, pred, {name: eval_intrinsics(k, size, resolution) for name, (k, size) in cameras.items()}
