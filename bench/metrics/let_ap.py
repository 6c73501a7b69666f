"""Waymo 3D detection AP: LET-3D-AP / LET-3D-APL / LET-3D-APH and plain 3D AP / APH.

Equal to the official metric op of ``waymo-open-dataset-tf-2-12-0==1.6.7``
(``py_metrics_ops.detection_metrics``; C++ in ``metrics/{iou,matcher,metrics_utils,detection_metrics}.cc``),
which the golden tests check on generated cases (``scripts/golden/make_waymo_golden.py``). What the op does,
and we do the same way:

* Boxes are 7-DoF in the vehicle frame: centre x y z, length, width, height, heading.
* Objects are split into breakdown shards (``OBJECT_TYPE``: one per type; ``RANGE``: type x centre range
  [0, 30), [30, 50), [50, inf) from the vehicle origin). Matching happens per frame inside a shard.
* For each score cutoff (0.00, 0.01, ..., 0.99, 1.0) the predictions with ``score >= cutoff`` are matched to
  the ground truth by a maximum-weight assignment. An edge exists only where IoU >= the type's threshold
  (vehicle 0.5, others 0.3) and, with LET, the longitudinal affinity LA > 0; its weight is
  ``round(IoU * LA * 1e6)`` in float32 (``LA = 1`` without LET).
* LET (arXiv 2206.07705): seen from the sensor (camera at (1.43, 0, 2.18)), the prediction centre P slides
  along its line of sight to ``(G.P / |P|^2) P`` before the IoU with the ground truth G is taken, and
  ``LA = clamp(1 - |(|P| cos(theta) - |G|)| / max(0.1 |G|, 0.5), 0, 1)``.
* A matched pair whose heading accuracy ``1 - |dheading| / pi`` is <= 0 (heading exactly flipped) is
  neither TP nor FP, and its ground truth is not a FN (an official quirk we keep).
* Precision, recall, and the LA- and heading-weighted precisions per cutoff; recall 0 forces precision 1;
  AP is the trapezoid area under the max-precision envelope with points inserted every 0.05 of recall and
  the fake (r=0, p=1) point overwritten, all in float32 as the op does.

Our implementation batches all candidate pairs of all frames in numpy (IoU via the shared convex polygon
intersection of :mod:`bench.metrics.similarity`) and runs ``scipy.optimize.linear_sum_assignment`` only
for frames with edges, once per distinct prediction subset rather than once per cutoff.

In bench's metric contract (:class:`WaymoDetectionMetric`) the matching is ``eval_sequence``: per-cutoff
TP/FP/FN counts of one sequence's frames, which add up; the precision/recall curves and their AP are
``combine_sequences``, over the counts of all sequences.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from bench.data.formats.waymo_eval import (  # noqa: F401 - the objects and their loader are part of this API
    WaymoObjects,
    load_waymo_parquet,
)
from bench.metrics.base import Metric, MetricResult
from bench.metrics.similarity import convex_intersection_area

TYPE_UNKNOWN, TYPE_VEHICLE, TYPE_PEDESTRIAN, TYPE_SIGN, TYPE_CYCLIST = 0, 1, 2, 3, 4
TYPE_NAMES = {TYPE_VEHICLE: "TYPE_VEHICLE", TYPE_PEDESTRIAN: "TYPE_PEDESTRIAN", TYPE_SIGN: "TYPE_SIGN",
              TYPE_CYCLIST: "TYPE_CYCLIST"}
# bench track-table classes -> Waymo label types.
CLASS_TO_TYPE = {"Car": TYPE_VEHICLE, "Van": TYPE_VEHICLE, "Truck": TYPE_VEHICLE,
                 "Pedestrian": TYPE_PEDESTRIAN, "Cyclist": TYPE_CYCLIST}
# Camera location in the vehicle frame used by the official LET tool (compute_detection_let_metrics_main.cc).
CAMERA_LOCATION = (1.43, 0.0, 2.18)
RANGE_BINS = ("[0, 30)", "[30, 50)", "[50, +inf)")

_EPS = 1e-6  # iou.cc kEpsilon
_MIN_DIM, _MAX_DIM = 1e-2, 1e6  # iou.cc: boxes outside these dimensions have IoU 0
_MAX_IOU = 1000 * 1000  # matcher weight quantisation


@dataclass(frozen=True)
class LetConfig:
    """``Config.LongitudinalErrorTolerantConfig`` with TYPE_RANGE_ALIGNED alignment."""

    sensor_location: tuple[float, float, float] = CAMERA_LOCATION
    longitudinal_tolerance_percentage: float = 0.1
    min_longitudinal_tolerance_meter: float = 0.5


def _default_cutoffs() -> tuple[float, ...]:
    return tuple(i * 0.01 for i in range(100)) + (1.0,)


@dataclass(frozen=True)
class DetectionConfig:
    """The subset of the Waymo metrics ``Config`` proto that 3D detection AP uses."""

    iou_thresholds: tuple[float, ...] = (0.0, 0.5, 0.3, 0.3, 0.3)  # indexed by type
    score_cutoffs: tuple[float, ...] = field(default_factory=_default_cutoffs)
    desired_recall_delta: float = 0.05
    breakdowns: tuple[str, ...] = ("OBJECT_TYPE",)  # "OBJECT_TYPE" and/or "RANGE"
    difficulty_levels: tuple[int, ...] = (2,)
    min_heading_accuracy: float = 0.0
    min_precision: float = 0.0
    let: LetConfig | None = None


LET_CONFIG = DetectionConfig(let=LetConfig())
PLAIN_3D_CONFIG = DetectionConfig()
# BA²-Det (paper 002, Table 1) reports 3D AP at IoU 0.05 for every type ("3D AP@0.05"): a match asks only for some
# overlap, so a monocular detector whose depth is off by a metre at range still counts. The op takes any thresholds.
LOOSE_IOU = 0.05
LOOSE_3D_CONFIG = DetectionConfig(iou_thresholds=(0.0,) + (LOOSE_IOU,) * 4)
# The range shards' names in summary keys (RANGE_BINS are the op's).
RANGE_KEYS = ("0-30m", "30-50m", "50m+")


@dataclass
class BreakdownResult:
    """AP family of one breakdown shard at one difficulty level, with the per-cutoff P/R points."""

    name: str
    ap: float
    aph: float
    apl: float
    precision: np.ndarray
    recall: np.ndarray
    precision_ha: np.ndarray
    precision_la: np.ndarray
    num_gt: int


# --------------------------------------------------------------------------------------------- geometry
def _bev_corners(boxes: np.ndarray) -> np.ndarray:
    """Counter-clockwise BEV corners ``(N, 4, 2)`` of vehicle-frame boxes."""
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    dx = np.array([0.5, -0.5, -0.5, 0.5])[None] * boxes[:, 3:4]
    dy = np.array([0.5, 0.5, -0.5, -0.5])[None] * boxes[:, 4:5]
    x = boxes[:, 0:1] + c[:, None] * dx - s[:, None] * dy
    y = boxes[:, 1:2] + s[:, None] * dx + c[:, None] * dy
    return np.stack([x, y], axis=-1)


def pairwise_iou_3d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3D IoU of paired vehicle-frame boxes ``(P, 7), (P, 7) -> (P,)`` as ``iou.cc::ComputeIoU3d``."""
    a = np.asarray(a, np.float64).reshape(-1, 7)
    b = np.asarray(b, np.float64).reshape(-1, 7)
    out = np.zeros(len(a))
    z_lo = np.maximum(a[:, 2] - a[:, 5] * 0.5, b[:, 2] - b[:, 5] * 0.5)
    z_hi = np.minimum(a[:, 2] + a[:, 5] * 0.5, b[:, 2] + b[:, 5] * 0.5)
    dims = np.concatenate([a[:, 3:6], b[:, 3:6]], axis=1)
    ok = (dims > _MIN_DIM).all(1) & (dims < _MAX_DIM).all(1) & (z_lo <= z_hi)
    # Only footprints whose circumscribed circles meet can intersect.
    reach = 0.5 * (np.hypot(a[:, 3], a[:, 4]) + np.hypot(b[:, 3], b[:, 4]))
    ok &= np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1]) <= reach
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return out
    area = convex_intersection_area(_bev_corners(a[idx]), _bev_corners(b[idx]))
    inter = area * (z_hi[idx] - z_lo[idx])
    union = a[idx, 3] * a[idx, 4] * a[idx, 5] + b[idx, 3] * b[idx, 4] * b[idx, 5] - inter
    iou = np.where(union > _EPS, inter / np.where(union > _EPS, union, 1.0), 0.0)
    out[idx] = np.clip(iou, 0.0, 1.0)
    return out


def let_align(pred_xyz: np.ndarray, gt_xyz: np.ndarray, let: LetConfig) -> tuple[np.ndarray, np.ndarray]:
    """Paired centres -> (prediction centres slid along their line of sight, longitudinal affinity).

    Centres are returned relative to the sensor (as the op computes the IoU there; IoU is translation-invariant).
    """
    sensor = np.asarray(let.sensor_location, np.float64)
    p = pred_xyz - sensor
    g = gt_xyz - sensor
    dot = (p * g).sum(1)
    p_range = np.maximum(np.linalg.norm(p, axis=1), _EPS)
    g_range = np.maximum(np.linalg.norm(g, axis=1), _EPS)
    cos = dot / g_range / p_range
    # The op stores the tolerance in a float (iou.cc), so it is float32-rounded.
    tol = np.maximum(let.longitudinal_tolerance_percentage * g_range,
                     np.float64(np.float32(let.min_longitudinal_tolerance_meter))).astype(np.float32)
    la = np.clip(1.0 - np.abs((p_range * cos - g_range) / tol.astype(np.float64)), 0.0, 1.0)
    multiplier = dot / np.maximum((p * p).sum(1), _EPS)
    return p * multiplier[:, None], la


def heading_accuracy(pred_heading: np.ndarray, gt_heading: np.ndarray) -> np.ndarray:
    """``1 - |heading error| / pi`` with the error wrapped to [0, pi], as ``ComputeHeadingAccuracy``."""
    def normalize(x: np.ndarray) -> np.ndarray:
        return (((x + np.pi) % (2 * np.pi)) - np.pi).astype(np.float32)
    diff = np.abs(normalize(pred_heading) - normalize(gt_heading)).astype(np.float64)
    diff = np.where(diff > np.pi, 2 * np.pi - diff, diff)
    return np.clip(1.0 - diff / np.pi, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------- matching
def _shards(objects: WaymoObjects, generator: str) -> np.ndarray:
    """Shard index per object (-1: in no shard), as the OBJECT_TYPE / RANGE breakdown generators."""
    t = objects.types
    if generator == "OBJECT_TYPE":
        return np.where(t > 0, t - 1, -1)
    if generator == "RANGE":
        r = np.linalg.norm(objects.boxes[:, :3], axis=1)
        bin_ = np.where(r < 30.0, 0, np.where(r < 50.0, 1, 2))
        return np.where(t > 0, 3 * (t - 1) + bin_, -1)
    raise ValueError(f"unsupported breakdown generator {generator!r}; use OBJECT_TYPE or RANGE")


def _shard_name(generator: str, shard: int) -> str:
    if generator == "OBJECT_TYPE":
        return f"OBJECT_TYPE_{TYPE_NAMES[shard + 1]}"
    return f"RANGE_{TYPE_NAMES[shard // 3 + 1]}_{RANGE_BINS[shard % 3]}"


def _candidate_pairs(pred: WaymoObjects, gt: WaymoObjects, p_shard: np.ndarray, g_shard: np.ndarray,
                     config: DetectionConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All (pred, gt) pairs in the same frame and shard that can match: indices, IoU and LA (float32)."""
    pk = pd.DataFrame({"frame": pred.frame_ids, "shard": p_shard, "p": np.arange(len(pred))})[p_shard >= 0]
    gk = pd.DataFrame({"frame": gt.frame_ids, "shard": g_shard, "g": np.arange(len(gt))})[g_shard >= 0]
    pairs = pk.merge(gk, on=["frame", "shard"])
    pi, gi = pairs["p"].to_numpy(), pairs["g"].to_numpy()
    pb, gb = pred.boxes[pi], gt.boxes[gi]
    if config.let is not None:
        aligned, la = let_align(pb[:, :3], gb[:, :3], config.let)
        sensor = np.asarray(config.let.sensor_location)
        pb = np.concatenate([aligned, pb[:, 3:]], axis=1)
        gb = np.concatenate([gb[:, :3] - sensor, gb[:, 3:]], axis=1)
        keep = la.astype(np.float32) != 0.0
    else:
        la = np.ones(len(pi))
        keep = np.ones(len(pi), bool)
    iou = np.zeros(len(pi), np.float32)
    iou[keep] = pairwise_iou_3d(pb[keep], gb[keep]).astype(np.float32)
    threshold = np.asarray(config.iou_thresholds, np.float32)[pred.types[pi]]
    keep &= iou >= threshold
    return pi[keep], gi[keep], iou[keep], la[keep].astype(np.float32)


def _accumulate(pred: WaymoObjects, gt: WaymoObjects, generator: str, config: DetectionConfig,
                frame_groups: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """tp, fp, HA and LA sums ``(groups, shards, cutoffs)`` and fn ``(groups, shards, levels, cutoffs)``.

    Frames are summed into groups (``frame_groups[frame_id]``; one group when None), e.g. one per sequence.

    Matching decomposes over the connected components of the can-match graph (edges never cross frames or
    shards), so objects without edges are counted in bulk, one-edge components (the common case) are counted
    vectorised, and only the rest go through the Hungarian, once per distinct prediction subset.
    """
    cutoffs = np.asarray(config.score_cutoffs, np.float32)
    levels = np.asarray(config.difficulty_levels)
    n_cut, n_lvl = len(cutoffs), len(levels)
    n_shards = 4 if generator == "OBJECT_TYPE" else 12
    p_shard, g_shard = _shards(pred, generator), _shards(gt, generator)
    # Cutoff k keeps the predictions with score >= cutoffs[k], i.e. prediction i for k < n_kept[i].
    n_kept = np.searchsorted(cutoffs, pred.scores.astype(np.float32), side="right")
    pi, gi, iou, la = _candidate_pairs(pred, gt, p_shard, g_shard, config)
    if config.let is None:
        la = np.ones(len(pi), np.float32)
    ha = heading_accuracy(pred.boxes[pi, 6], gt.boxes[gi, 6])
    weight = np.round((iou * la).astype(np.float32) * np.float32(_MAX_IOU)).astype(np.int64)
    g_fn = gt.difficulty[None, :] <= levels[:, None]  # (levels, gts): would count as a FN when unmatched
    p_fp = ~pred.overlap_nlz

    # Contributions on cutoff ranges [lo, hi): summed through difference arrays at the end.
    acc: dict[str, list[np.ndarray]] = {k: [] for k in ("frame", "shard", "lo", "hi", "tp", "fp", "ha", "la", "fn")}

    def add(frame, shard, lo, hi, tp=0.0, fp=0.0, sum_ha=0.0, sum_la=0.0, fn=None) -> None:
        size = len(np.atleast_1d(shard))
        acc["frame"].append(np.broadcast_to(frame, size))
        acc["shard"].append(np.broadcast_to(shard, size))
        acc["lo"].append(np.broadcast_to(lo, size))
        acc["hi"].append(np.broadcast_to(hi, size))
        for key, value in (("tp", tp), ("fp", fp), ("ha", sum_ha), ("la", sum_la)):
            acc[key].append(np.broadcast_to(np.asarray(value, np.float64), size))
        acc["fn"].append(np.zeros((n_lvl, size)) if fn is None else np.broadcast_to(fn, (n_lvl, size)))

    p_edge = np.zeros(len(pred), bool)
    p_edge[pi] = True
    g_edge = np.zeros(len(gt), bool)
    g_edge[gi] = True
    # Objects without edges: a FP at every cutoff that keeps it / a FN at every cutoff.
    lone_p = np.flatnonzero((p_shard >= 0) & ~p_edge & p_fp)
    add(pred.frame_ids[lone_p], p_shard[lone_p], 0, n_kept[lone_p], fp=1.0)
    lone_g = np.flatnonzero((g_shard >= 0) & ~g_edge)
    add(gt.frame_ids[lone_g], g_shard[lone_g], 0, n_cut, fn=g_fn[:, lone_g])

    if len(pi):
        n_nodes = len(pred) + len(gt)
        graph = coo_matrix((np.ones(len(pi)), (pi, len(pred) + gi)), shape=(n_nodes, n_nodes))
        component = connected_components(graph, directed=False)[1][pi]
        single = np.bincount(component)[component] == 1
        # One prediction, one ground truth, one edge: matched while the prediction is kept, else a FN.
        p, g, h = pi[single], gi[single], ha[single]
        good = (h > config.min_heading_accuracy).astype(np.float64)
        add(pred.frame_ids[p], p_shard[p], 0, n_kept[p], tp=good, sum_ha=h * good, sum_la=la[single] * good)
        add(pred.frame_ids[p], p_shard[p], n_kept[p], n_cut, fn=g_fn[:, g])
        multi = np.flatnonzero(~single)
        order = multi[np.argsort(component[multi], kind="stable")]
        bounds = np.flatnonzero(np.diff(component[order])) + 1
        for edges in np.split(order, bounds) if len(order) else []:
            _match_component(edges, pi, gi, weight, ha, la, n_kept, p_shard, p_fp, g_fn, n_cut, config,
                             functools.partial(add, pred.frame_ids[pi[edges[0]]]))

    shard = np.concatenate(acc["shard"]).astype(np.int64)
    frame = np.concatenate(acc["frame"]).astype(np.int64)
    group = np.zeros(len(frame), np.int64) if frame_groups is None else np.asarray(frame_groups)[frame]
    n_groups = 1 if frame_groups is None else int(np.max(frame_groups, initial=-1)) + 1
    lo = np.concatenate(acc["lo"]).astype(np.int64)
    hi = np.concatenate(acc["hi"]).astype(np.int64)
    stats = {}
    for key in ("tp", "fp", "ha", "la"):
        stats[key] = _range_sum((group, shard), lo, hi, np.concatenate(acc[key]), (n_groups, n_shards), n_cut)
    fn = np.concatenate(acc["fn"], axis=1)
    stats["fn"] = np.stack([_range_sum((group, shard), lo, hi, fn[li], (n_groups, n_shards), n_cut)
                            for li in range(n_lvl)], axis=2)
    return stats


def _range_sum(index: tuple[np.ndarray, ...], lo: np.ndarray, hi: np.ndarray, values: np.ndarray,
               shape: tuple[int, ...], n: int) -> np.ndarray:
    """Sums of ``values`` added at ``index`` on the last-axis ranges [lo, hi): an array ``shape + (n,)``."""
    diff = np.zeros((*shape, n + 1))
    np.add.at(diff, (*index, lo), values)
    np.add.at(diff, (*index, hi), -values)
    return np.cumsum(diff[..., :n], axis=-1)


def _match_component(edges: np.ndarray, pi: np.ndarray, gi: np.ndarray, weight: np.ndarray, ha: np.ndarray,
                     la: np.ndarray, n_kept: np.ndarray, p_shard: np.ndarray, p_fp: np.ndarray, g_fn: np.ndarray,
                     n_cut: int, config: DetectionConfig, add: Any) -> None:
    """Hungarian matching of one connected component, once per distinct prediction subset (cutoff range)."""
    preds, p_loc = np.unique(pi[edges], return_inverse=True)
    gts, g_loc = np.unique(gi[edges], return_inverse=True)
    # Rows by descending score, so that each cutoff keeps a prefix of them.
    p_order = np.argsort(-n_kept[preds], kind="stable")
    rank = np.empty_like(p_order)
    rank[p_order] = np.arange(len(preds))
    r_idx, c_idx = rank[p_loc], g_loc
    w = np.zeros((len(preds), len(gts)), np.int64)
    w[r_idx, c_idx] = weight[edges]
    ok = np.zeros(w.shape, bool)
    ok[r_idx, c_idx] = True
    h = np.zeros(w.shape, np.float32)
    h[r_idx, c_idx] = ha[edges]
    lam = np.zeros(w.shape, np.float32)
    lam[r_idx, c_idx] = la[edges]
    kept = n_kept[preds[p_order]]
    fp_able = p_fp[preds[p_order]]
    fn_able = g_fn[:, gts]
    shard = p_shard[preds[0]]
    # n rows are kept on the cutoffs [kept[n], kept[n - 1]) (kept is non-increasing).
    upper = np.concatenate([[n_cut], kept])
    lower = np.concatenate([kept, [0]])
    for n in range(len(preds) + 1):
        lo, hi = lower[n], upper[n]
        if hi <= lo:
            continue
        matched_g = np.zeros(len(gts), bool)
        tp = fp = 0
        sum_ha = sum_la = 0.0
        if n:
            r, c = linear_sum_assignment(w[:n], maximize=True)
            valid = ok[r, c]
            r, c = r[valid], c[valid]
            good = h[r, c] > config.min_heading_accuracy
            tp = int(good.sum())
            sum_ha = float(h[r, c][good].sum())
            sum_la = float(lam[r, c][good].sum())
            matched_g[c] = True  # matched, even with a flipped heading, is never a FN
            unmatched = np.ones(n, bool)
            unmatched[r] = False
            fp = int((unmatched & fp_able[:n]).sum())
        add(shard, lo, hi, tp=tp, fp=fp, sum_ha=sum_ha, sum_la=sum_la,
            fn=fn_able[:, ~matched_g].sum(1)[:, None])


# --------------------------------------------------------------------------------------------- AP
def mean_average_precision(precisions: np.ndarray, recalls: np.ndarray, recall_delta: float = 0.05) -> float:
    """``metrics_utils.cc::ComputeMeanAveragePrecision`` in float32."""
    f32 = np.float32
    if len(precisions) == 0:
        return 0.0
    table: dict[float, np.float32] = {0.0: f32(1.0)}
    for p, r in zip(np.asarray(precisions, f32), np.asarray(recalls, f32), strict=True):
        table[float(r)] = max(table.get(float(r), f32(0.0)), p)
    keys = sorted(table)
    delta = f32(recall_delta)
    limit = f32(delta + f32(1e-6))
    pr: list[tuple[np.float32, np.float32]] = []
    last_recall = f32(keys[0])
    max_precision = f32(0.0)
    for r in reversed(keys):
        r32 = f32(r)
        while f32(last_recall - r32) > limit:
            last_recall = f32(last_recall - delta)
            pr.append((max_precision, last_recall))
        max_precision = max(table[r], max_precision)
        pr.append((max_precision, r32))
        last_recall = r32
    if len(pr) >= 2:
        pr[-1] = (pr[-2][0], pr[-1][1])
    area = f32(0.0)
    for (p0, r0), (p1, r1) in zip(pr[:-1], pr[1:], strict=True):
        area = f32(float(area) + 0.5 * float(f32(r0 - r1)) * float(f32(p0 + p1)))
    return float(area)


def _pr_curves(st: dict[str, np.ndarray], level: int, config: DetectionConfig) -> tuple[np.ndarray, ...]:
    """Per-cutoff precision (plain, HA- and LA-weighted) and recall of one shard (1-D stats, fn ``(levels, C)``)."""
    tp, fp, fn = st["tp"], st["fp"], st["fn"][level]
    det = tp + fp
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(det > 0, (tp.astype(np.float32) / det).astype(np.float32), 0.0).astype(np.float32)
        prec_ha = np.where(det > 0, (st["ha"].astype(np.float32) / det).astype(np.float32), 0.0).astype(np.float32)
        prec_la = np.where(det > 0, (st["la"].astype(np.float32) / det).astype(np.float32), 0.0).astype(np.float32)
        rec = np.where(tp + fn > 0, (tp.astype(np.float32) / (tp + fn)).astype(np.float32), 0.0).astype(np.float32)
    for p in (prec, prec_ha, prec_la):
        p[p < config.min_precision] = 0.0
        p[rec == 0.0] = 1.0
    return prec, prec_ha, prec_la, rec


@dataclass
class DetectionCounts:
    """What the op accumulates frame by frame for one breakdown generator, at every score cutoff.

    ``tp``, ``fp`` and the heading- and longitudinal-affinity-weighted TP sums ``ha``/``la`` are
    ``(shards, cutoffs)``, ``fn`` is ``(shards, levels, cutoffs)``, ``num_gt`` ``(shards, levels)``. Frames
    are matched independently, so the counts of several sequences simply add up.
    """

    tp: np.ndarray
    fp: np.ndarray
    ha: np.ndarray
    la: np.ndarray
    fn: np.ndarray
    num_gt: np.ndarray

    @staticmethod
    def total(parts: list[DetectionCounts], zero: DetectionCounts) -> DetectionCounts:
        """The sum of ``parts`` (``zero``, for its shapes, when there are none), in their order."""
        if not parts:
            return zero
        return DetectionCounts(**{k: np.stack([getattr(p, k) for p in parts]).sum(0)
                                  for k in ("tp", "fp", "ha", "la", "fn", "num_gt")})


def _shard_count(generator: str) -> int:
    return 4 if generator == "OBJECT_TYPE" else 12


class WaymoDetectionMetric(Metric):
    """Waymo 3D detection AP (LET-3D-AP/APL/APH with :data:`LET_CONFIG`, 3D AP/APH with :data:`PLAIN_3D_CONFIG`)
    as a :class:`~bench.metrics.base.Metric`.

    * ``eval_sequence(gt, pred)``, one sequence's :class:`WaymoObjects`: every frame matched at every score
      cutoff, per breakdown shard; gives ``{generator: DetectionCounts}`` (the op has no per-sequence AP).
    * ``combine_sequences({seq: counts})``: the counts summed over sequences, then precision/recall per
      cutoff and the AP family per shard and difficulty level (the curves need all frames at once); gives
      ``{breakdown name: BreakdownResult}`` as :func:`detection_metrics`.
    * ``summary(result)``: per type and the mean over the types with ground truth at ``level``; APL only
      with LET (without it LA is 1 and APL is AP).

    ``eval_sequences(gt, pred, sequence_of_frame)`` does ``eval_sequence`` for every sequence of a split in
    one matching pass (the counts of each sequence are the same).
    """

    FIELDS: ClassVar[Mapping[str, str]] = {"AP": "ap", "APL": "apl", "APH": "aph"}

    def __init__(self, config: DetectionConfig = LET_CONFIG, *, level: int = 2, tag: str = "") -> None:
        self.config = config
        self.level = level
        self.tag = tag  # appended to the summary names, e.g. "@0.05" for the loose IoU

    def eval_sequence(self, gt: WaymoObjects, pred: WaymoObjects) -> dict[str, DetectionCounts]:  # type: ignore[override]
        return self._counts(gt, pred, None)[0]

    def eval_sequences(self, gt: WaymoObjects, pred: WaymoObjects,
                       sequence_of_frame: Sequence[str]) -> dict[str, dict[str, DetectionCounts]]:
        """``{seq: eval_sequence(its frames)}``, in name order; ``sequence_of_frame[frame_id]`` names the
        sequence of every frame id of ``gt`` and ``pred`` (dense ids, as :func:`tracks_to_waymo` gives)."""
        names = sorted(set(sequence_of_frame))
        index = {name: i for i, name in enumerate(names)}
        frame_groups = np.array([index[name] for name in sequence_of_frame], np.int64)
        return dict(zip(names, self._counts(gt, pred, frame_groups), strict=True))

    def _counts(self, gt: WaymoObjects, pred: WaymoObjects,
                frame_groups: np.ndarray | None) -> list[dict[str, DetectionCounts]]:
        """Counts of each group of frames (``frame_groups[frame_id]``; one group when None), one matching pass."""
        levels = np.asarray(self.config.difficulty_levels)
        g_group = np.zeros(len(gt), np.int64) if frame_groups is None else np.asarray(frame_groups)[gt.frame_ids]
        n_groups = 1 if frame_groups is None else int(np.max(frame_groups, initial=-1)) + 1
        out: list[dict[str, DetectionCounts]] = [{} for _ in range(n_groups)]
        for generator in self.config.breakdowns:
            stats = _accumulate(pred, gt, generator, self.config, frame_groups)
            n_shards = _shard_count(generator)
            g_shard = _shards(gt, generator)
            in_shard = g_shard >= 0
            num_gt = np.stack([np.bincount(g_group[m] * n_shards + g_shard[m], minlength=n_groups * n_shards)
                               for m in (in_shard & (gt.difficulty <= level) for level in levels)], axis=-1)
            num_gt = num_gt.reshape(n_groups, n_shards, len(levels))
            for group in range(n_groups):
                out[group][generator] = DetectionCounts(
                    stats["tp"][group], stats["fp"][group], stats["ha"][group], stats["la"][group],
                    stats["fn"][group], num_gt[group])
        return out

    def _zero(self, generator: str) -> DetectionCounts:
        shape = (_shard_count(generator), len(self.config.score_cutoffs))
        n_lvl = len(self.config.difficulty_levels)
        return DetectionCounts(np.zeros(shape), np.zeros(shape), np.zeros(shape), np.zeros(shape),
                               np.zeros((shape[0], n_lvl, shape[1])), np.zeros((shape[0], n_lvl), np.int64))

    def combine_sequences(self, results: dict[str, dict[str, DetectionCounts]]) -> dict[str, BreakdownResult]:
        """AP, APL and APH of every shard and level from the summed counts (sequences in name order)."""
        names = sorted(results)
        delta = self.config.desired_recall_delta
        out: dict[str, BreakdownResult] = {}
        for generator in self.config.breakdowns:
            counts = DetectionCounts.total([results[n][generator] for n in names], self._zero(generator))
            for shard in range(_shard_count(generator)):
                st = {"tp": counts.tp[shard], "fp": counts.fp[shard], "ha": counts.ha[shard], "la": counts.la[shard],
                      "fn": counts.fn[shard]}
                for li, level in enumerate(self.config.difficulty_levels):
                    prec, prec_ha, prec_la, rec = _pr_curves(st, li, self.config)
                    name = f"{_shard_name(generator, shard)}_LEVEL_{level}"
                    out[name] = BreakdownResult(
                        name=name, ap=mean_average_precision(prec, rec, delta),
                        aph=mean_average_precision(prec_ha, rec, delta),
                        apl=mean_average_precision(prec_la, rec, delta),
                        precision=prec, recall=rec, precision_ha=prec_ha, precision_la=prec_la,
                        num_gt=int(counts.num_gt[shard, li]))
        return out

    def summary(self, result: Mapping[str, BreakdownResult]) -> dict[str, float]:
        """``LET-3D-AP``, ``LET-3D-APL``, ``LET-3D-APH`` (or ``3D-AP``, ``3D-APH``) with :attr:`tag` appended, each
        ``/<TYPE>`` too, and ``/<TYPE>/<range>`` (``0-30m``, ``30-50m``, ``50m+``) when the config breaks down by
        range. Types and shards without ground truth at ``level`` are left out (the op gives them AP 0)."""
        prefix = "3D-" if self.config.let is None else "LET-3D-"
        out: dict[str, float] = {}
        for label, attr in self.FIELDS.items():
            if attr == "apl" and self.config.let is None:
                continue
            name = f"{prefix}{label}{self.tag}"
            values = []
            for tname in TYPE_NAMES.values():
                short = tname.removeprefix("TYPE_")
                r = result.get(f"OBJECT_TYPE_{tname}_LEVEL_{self.level}")
                if r is None or r.num_gt == 0:
                    continue
                out[f"{name}/{short}"] = getattr(r, attr)
                values.append(getattr(r, attr))
                for bin_name, key in zip(RANGE_BINS, RANGE_KEYS, strict=True):
                    r = result.get(f"RANGE_{tname}_{bin_name}_LEVEL_{self.level}")
                    if r is not None and r.num_gt > 0:
                        out[f"{name}/{short}/{key}"] = getattr(r, attr)
            out[name] = float(np.mean(values)) if values else 0.0
        return out


def detection_metrics(pred: WaymoObjects, gt: WaymoObjects,
                      config: DetectionConfig = LET_CONFIG) -> dict[str, BreakdownResult]:
    """Waymo 3D detection metrics for every breakdown shard and difficulty level, keyed like the official
    ``config_util_py.get_breakdown_names_from_config`` (e.g. ``OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2``): all
    frames as one sequence through :class:`WaymoDetectionMetric`."""
    metric = WaymoDetectionMetric(config)
    return metric.combine_sequences({"all": metric.eval_sequence(gt, pred)})


# --------------------------------------------------------------------------------------------- bench adapters
# KITTI camera (x right, y down, z forward) -> Waymo vehicle (x forward, y left, z up), before the mount shift.
CAMERA_TO_VEHICLE_ROTATION = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def tracks_to_waymo(tracks: pd.DataFrame, frame_index: dict[tuple[str, int], int] | None = None,
                    camera_mount: tuple[float, float, float] = CAMERA_LOCATION,
                    ) -> tuple[WaymoObjects, dict[tuple[str, int], int]]:
    """bench track table (KITTI camera boxes) -> vehicle-frame :class:`WaymoObjects`.

    The camera sits at ``camera_mount`` in the vehicle frame (default: where the LET tool puts the sensor, so
    LET's line of sight is the camera's). Classes outside Car/Van/Truck/Pedestrian/Cyclist (DontCare, Misc,
    ...) are dropped. ``frame_index`` maps (seq, frame) to the op's frame id; pass the GT's to the predictions.
    """
    from bench.data.geometry import boxes_to_world

    frame_index = dict(frame_index or {})
    mapped = tracks["cls"].map(CLASS_TO_TYPE)
    df = tracks[mapped.notna().to_numpy()]
    types = mapped[mapped.notna()].to_numpy(np.int64)
    keys = list(zip(df["seq"].astype(str), df["frame"].astype(int), strict=True))
    for key in keys:
        frame_index.setdefault(key, len(frame_index))
    frame_ids = np.array([frame_index[k] for k in keys], np.int64)
    cam_to_vehicle = np.eye(4)
    cam_to_vehicle[:3, :3] = CAMERA_TO_VEHICLE_ROTATION
    cam_to_vehicle[:3, 3] = camera_mount
    kitti = df[["x", "y", "z", "h", "w", "l", "yaw"]].to_numpy(np.float64)
    centres, headings = boxes_to_world(kitti, cam_to_vehicle)
    boxes = np.column_stack([centres, kitti[:, 5], kitti[:, 4], kitti[:, 3], headings])
    return WaymoObjects(boxes, types, frame_ids, scores=df["score"].to_numpy(np.float64)), frame_index


def evaluate_protocol(gt: Any, pred: Any, *, sequences: Any = None, per_sequence: bool = True,
                      camera_mount: tuple[float, float, float] = CAMERA_LOCATION, **opts: Any) -> MetricResult:
    """Protocol ``waymo-let``: LET-3D-AP/APL/APH, 3D AP/APH (the LET tool's IoU: 0.5 vehicles, 0.3 others) and
    3D AP/APH at IoU 0.05 (``3D-AP@0.05``, BA²-Det's loose match) of bench track tables (or :class:`WaymoObjects`),
    overall, per type and per type by range (0-30, 30-50, 50+ m).

    ``gt``/``pred`` are track tables (camera-frame KITTI boxes) or ready ``WaymoObjects`` pairs; the latter come
    from :func:`bench.data.formats.waymo_eval.load_waymo_parquet`. ``sequences`` is accepted for the common
    protocol signature; the camera -> vehicle conversion does not need poses. Returns a ``MetricResult``.
    """
    if isinstance(gt, WaymoObjects):
        g, p, seq_of_frame = gt, pred, None
    else:
        g, index = tracks_to_waymo(gt, camera_mount=camera_mount)
        p, index = tracks_to_waymo(pred, index, camera_mount=camera_mount)
        seq_of_frame = {fid: seq for (seq, _), fid in index.items()}
    by_range = ("OBJECT_TYPE", "RANGE")
    metrics = (WaymoDetectionMetric(replace(LET_CONFIG, breakdowns=by_range)),
               WaymoDetectionMetric(replace(PLAIN_3D_CONFIG, breakdowns=by_range)),
               WaymoDetectionMetric(replace(LOOSE_3D_CONFIG, breakdowns=by_range), tag=f"@{LOOSE_IOU}"))
    if per_sequence and seq_of_frame is not None:
        frames = [seq_of_frame[i] for i in range(len(seq_of_frame))]
        results = [m.eval_sequences(g, p, frames) for m in metrics]
    else:
        results = [{"all": m.eval_sequence(g, p)} for m in metrics]
    let, plain, loose = (m.combine_sequences(r) for m, r in zip(metrics, results, strict=True))
    summary = {**metrics[0].summary(let), **metrics[1].summary(plain), **metrics[2].summary(loose)}
    rows = []
    for seq in sorted(results[0]) if per_sequence and seq_of_frame is not None else []:
        for m, r in zip(metrics, results, strict=True):
            rows += [(seq, k, v) for k, v in m.summary(m.combine_sequences({seq: r[seq]})).items() if "/" not in k]
    per_seq = pd.DataFrame(rows, columns=["seq", "metric", "value"])
    extras = {"breakdowns": {k: {"ap": r.ap, "aph": r.aph, "apl": r.apl, "num_gt": r.num_gt}
                             for k, r in let.items()},
              "breakdowns_3d": {k: {"ap": r.ap, "aph": r.aph, "num_gt": r.num_gt} for k, r in plain.items()},
              f"breakdowns_3d@{LOOSE_IOU}": {k: {"ap": r.ap, "aph": r.aph, "num_gt": r.num_gt}
                                             for k, r in loose.items()}}
    return MetricResult(protocol="waymo-let", summary=summary, per_sequence=per_seq, extras=extras)
