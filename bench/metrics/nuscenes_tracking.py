"""nuScenes tracking metrics (AMOTA, AMOTP, MOTAR, MOTA, MOTP, recall, IDS, FRAG, TID, LGD, MT, ML, FAF, TP, FP, FN).

Equal to nuscenes-devkit 1.2.0's ``TrackingEval`` with the ``tracking_nips_2019`` configuration (golden tests:
``tests/metrics/test_nuscenes_golden.py``, fixtures from ``scripts/golden/make_nuscenes_golden.py``), without its
dependencies on motmetrics 1.4.0 / pandas < 3, and hundreds of times faster (``docs/benchmarks.md``).

What the devkit does, step by step, and we do the same way:

1. **Filters** (``filter_eval_boxes``): keep boxes whose ego distance ``sqrt(ex^2 + ey^2)`` (``ego_translation``:
   box centre minus ego position) is strictly below the class range (50 m car/truck/bus/trailer, 40 m others);
   then drop boxes with ``num_pts == 0`` (GT: lidar + radar points; predictions default to -1 and are kept).
   The devkit also drops bicycles / motorcycles inside ``static_object.bicycle_rack`` annotations. That needs
   the bike-rack boxes of the real dataset; bench's data has none, so the filter is skipped. It would plug in
   as a third mask in :func:`_filter` (points-in-box of each bicycle/motorcycle centre against the rack boxes
   of its sample, passed in a ``racks`` column of the samples table).
2. **Track score** (``create_tracks``): every predicted box gets the mean score of its track (all boxes with its
   ``tracking_id`` in the scene that survived the filters), computed as ``np.mean`` does (pairwise summation).
3. **Interpolation** (``interpolate_tracks``): GT and predicted tracks get a linearly interpolated box at every
   keyframe of the scene between their first and last box where they have none (e.g. GT filtered for 0 points).
   The devkit weights the *right* box by ``(t_right - t) / (t_right - t_left)`` -- inverted, so a box next to
   the left keyframe is placed next to the right one (nuscenes-devkit issue #1141). Protocol ``nuscenes``
   reproduces that; ``nuscenes-fixed-interp`` uses ``(t - t_left) / (t_right - t_left)``. Only the BEV centre
   and the score of interpolated boxes matter for the metrics; the class is the right box's.
4. **Matching** (``accumulate_threshold`` + motmetrics ``MOTAccumulator.update``), per class and keyframe,
   on the BEV centre distance (computed in sklearn's expanded form, as the devkit does), pairs with
   ``d >= 2 m`` are forbidden. Per frame: (a) an object keeps its previous hypothesis if that one is present
   and within range; (b) the rest is solved by Hungarian assignment (forbidden pairs replaced by motmetrics'
   large constant, scipy's solver); a match whose object was last matched to another hypothesis is a SWITCH
   (IDS), otherwise a MATCH (TP); (c) unmatched GT are misses (FN), unmatched predictions false positives.
   Frames with neither GT nor prediction of the class are skipped (they get no frame id).
   We build candidate pairs once for all frames in numpy. In a frame where no box has two candidates the
   result of (a)+(b) is simply "every candidate pair matches"; only frames with competing candidates are
   replayed one by one, exactly as motmetrics does (step order, object order, full cost matrix), and a
   replayed frame is reused by later thresholds while its active predictions and prior partners are unchanged.
5. **Thresholds** (``compute_thresholds``): an unthresholded pass collects the scores of MATCH hypotheses
   (not SWITCH); sorted descending they give recall ``k / n_gt``; 40 recall targets ``linspace(0.1, 1, 40)``
   are turned into score thresholds by ``np.interp``; unreachable targets are NaN. Each distinct threshold is
   evaluated with the predictions of score ``>=`` threshold (one pass each).
6. **Metrics** (``nuscenes/eval/tracking/metrics.py``): MOTAR ``max(0, 1 - (FN + IDS + FP - (1 - r) P) / (r P))``
   with ``r = TP / P``; MOTA clipped at 0; MOTP = mean distance of TP + IDS; FAF = FP per frame x 100;
   MT / ML: tracked ratio >= 0.8 / < 0.2; FRAG: tracked -> missed transitions inside an object's tracked span;
   TID / LGD in seconds (0.5 s per frame) averaged over objects matched at least once (NaN if none).
   AMOTA = mean MOTAR over the 40 targets (NaN -> 0), AMOTP = mean MOTP (NaN -> 2 m); all other metrics are
   taken at the threshold with the highest MOTA (the first one among ties, i.e. the lowest threshold).
   A class without GT is NaN everywhere; a class where nothing ever matches gets the ``metric_worst`` values.
   Overall: sum over classes for mt, ml, tp, fp, fn, ids, frag; ``nanmean`` for the rest.

In bench's metric contract (:class:`NuscenesTrackingMetric`) steps 1-3 are ``eval_sequence``, one scene at a
time, and steps 4-6 ``combine_sequences``: the thresholds come from all scenes together.

Known, documented differences: the devkit silently accepts two boxes of one track in one sample; we reject
them (:class:`NuscenesDataError`), since motmetrics' result then depends on dict-order accidents. A submission
without any box crashes the devkit; here it scores like an empty tracker. Distances can differ from the
devkit's by ~1e-10 m (BLAS rounding of the expanded formula), far below the 1e-6 test tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from bench.data.formats.nuscenes_eval import (  # noqa: F401 - the boxes and their error are part of this API
    TRACKING_NAMES,
    NuscBoxes,
    NuscenesDataError,
)
from bench.metrics.base import Metric, MetricResult, per_sequence_frame

# The devkit's TRACKING_METRICS, in its order.
METRIC_NAMES: tuple[str, ...] = ("amota", "amotp", "recall", "motar", "gt", "mota", "motp", "mt", "ml", "faf",
                                 "tp", "fp", "fn", "ids", "frag", "tid", "lgd")
SUMMED_METRICS: frozenset[str] = frozenset({"mt", "ml", "tp", "fp", "fn", "ids", "frag"})
# Per-threshold metrics (the devkit's MOT_METRIC_MAP values).
THRESHOLD_METRICS: tuple[str, ...] = ("gt", "tp", "motar", "mota", "motp", "faf", "mt", "ml", "fp", "fn", "ids",
                                      "frag", "recall", "tid", "lgd")


@dataclass(frozen=True)
class TrackingConfig:
    """The devkit's tracking configuration (``configs/tracking_nips_2019.json``)."""

    class_names: tuple[str, ...]
    class_range: dict[str, float]
    dist_th_tp: float
    min_recall: float
    num_thresholds: int
    metric_worst: dict[str, float]
    max_boxes_per_sample: int = 500
    sample_period: float = 0.5  # seconds per keyframe, used by TID and LGD


TRACKING_NIPS_2019 = TrackingConfig(
    class_names=TRACKING_NAMES,
    class_range={"car": 50, "truck": 50, "bus": 50, "trailer": 50, "pedestrian": 40, "motorcycle": 40,
                 "bicycle": 40},
    dist_th_tp=2.0,
    min_recall=0.1,
    num_thresholds=40,
    metric_worst={"amota": 0.0, "amotp": 2.0, "recall": 0.0, "motar": 0.0, "mota": 0.0, "motp": 2.0, "mt": 0.0,
                  "ml": -1.0, "faf": 500, "gt": -1, "tp": 0.0, "fp": -1.0, "fn": -1.0, "ids": -1.0, "frag": -1.0,
                  "tid": 20, "lgd": 20},
)


@dataclass
class PreparedBoxes:
    """Boxes after filters, score averaging and interpolation, in the devkit's per-frame order."""

    sample: np.ndarray  # sample index (scenes in order, keyframes in time order)
    group: np.ndarray  # track index, unique per (scene, tracking_id), numbered in order of first appearance
    name: np.ndarray  # class index into config.class_names
    xy: np.ndarray
    score: np.ndarray
    track_id: np.ndarray  # tracking_id strings (GT: the devkit counts ML worst case over distinct strings)

    @property
    def n_groups(self) -> int:
        return int(self.group.max()) + 1 if len(self.group) else 0

    def rows(self, sl: slice, sample_offset: int, group_offset: int) -> PreparedBoxes:
        """The rows ``sl``, their sample and track indices counted from the given offsets."""
        return PreparedBoxes(self.sample[sl] - sample_offset, self.group[sl] - group_offset, self.name[sl],
                             self.xy[sl], self.score[sl], self.track_id[sl])

    @staticmethod
    def concatenate(parts: list[PreparedBoxes], n_samples: list[int]) -> PreparedBoxes:
        """Scenes' boxes one after another, sample and track indices shifted past the previous scenes'."""
        if not parts:
            empty = np.zeros(0, np.int64)
            return PreparedBoxes(empty, empty, empty, np.zeros((0, 2)), np.zeros(0), np.zeros(0, object))
        sample_offsets = np.cumsum([0, *n_samples[:-1]]).tolist()
        group_offsets = np.cumsum([0, *(p.n_groups for p in parts[:-1])]).tolist()
        return PreparedBoxes(
            np.concatenate([p.sample + o for p, o in zip(parts, sample_offsets, strict=True)]).astype(np.int64),
            np.concatenate([p.group + o for p, o in zip(parts, group_offsets, strict=True)]).astype(np.int64),
            np.concatenate([p.name for p in parts]).astype(np.int64),
            np.concatenate([p.xy for p in parts]).reshape(-1, 2),
            np.concatenate([p.score for p in parts]).astype(np.float64),
            np.concatenate([p.track_id for p in parts]).astype(object))


@dataclass
class SceneBoxes:
    """One scene after the devkit's per-scene steps: what :meth:`NuscenesTrackingMetric.eval_sequence` returns.

    Sample indices count the scene's keyframes in time order (``0 .. n_samples - 1``), track indices the
    scene's own tracks.
    """

    n_samples: int
    gt: PreparedBoxes
    pred: PreparedBoxes


@dataclass
class NuscenesResult:
    """Scenes combined: the devkit's overall metrics, per-class metrics and per-class threshold curves."""

    overall: dict[str, float]
    per_class: dict[str, dict[str, float]]
    curves: dict[str, dict[str, list[float]]]


@dataclass
class ClassResult:
    """Per-threshold metric arrays of one class (``num_thresholds`` long, devkit order) and the summary."""

    thresholds: np.ndarray
    recall_targets: np.ndarray
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------------
# Input preparation
# ------------------------------------------------------------------------------------------------------------
def _sample_table(gt: NuscBoxes, pred: NuscBoxes) -> pd.DataFrame:
    parts = [pd.DataFrame({"sample_token": b.sample_token, "scene": b.scene, "timestamp": b.timestamp})
             for b in (gt, pred)]
    parts += [b.samples[["sample_token", "scene", "timestamp"]] for b in (gt, pred) if b.samples is not None]
    table = pd.concat(parts, ignore_index=True).drop_duplicates("sample_token")
    table = table.astype({"sample_token": object, "scene": object, "timestamp": np.int64})
    both = pd.concat(parts, ignore_index=True).drop_duplicates(["sample_token", "scene", "timestamp"])
    if len(both) != len(table):
        bad = both[both.duplicated("sample_token", keep=False)].iloc[0]
        raise NuscenesDataError(f"sample {bad.sample_token!r} has inconsistent scene/timestamp")
    table = table.sort_values(["scene", "timestamp"], kind="stable").reset_index(drop=True)
    if table.duplicated(["scene", "timestamp"]).any():
        bad = table[table.duplicated(["scene", "timestamp"], keep=False)].iloc[0]
        raise NuscenesDataError(f"scene {bad.scene!r} has two samples with timestamp {bad.timestamp}")
    return table


def _filter(boxes: NuscBoxes, config: TrackingConfig) -> np.ndarray:
    """Range filter (strict <), then the zero-points filter; bike racks are not available (see module doc)."""
    names = boxes.tracking_name
    known = np.isin(names, list(config.class_range))
    if not known.all():
        bad = names[~known][0]
        raise NuscenesDataError(f"unknown tracking_name {bad!r}; expected one of {', '.join(config.class_names)}")
    limit = np.array([config.class_range[n] for n in names], dtype=np.float64) if len(names) else np.zeros(0)
    e = boxes.ego_translation
    ego_dist = np.sqrt(e[:, 0] ** 2 + e[:, 1] ** 2)
    return (ego_dist < limit) & (boxes.num_pts != 0) & np.isin(names, config.class_names)


def _track_means(score: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-group mean in the given element order, bit-equal to the devkit's ``np.mean`` of each group's list.

    numpy sums a contiguous float64 array pairwise: a running sum below 8 elements, 8 interleaved partial
    sums above. Short groups are summed here position by position (vectorised over groups); longer ones
    go through ``np.add.reduce`` itself. (``np.add.reduceat`` rounds differently, so it is not used.)
    """
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    s = score[order]
    sums = np.zeros(n_groups)
    for k in range(min(8, int(counts.max()) if n_groups else 0)):
        has = counts > k
        sums[has] += s[starts[has] + k]
    for g in np.flatnonzero(counts >= 8):
        sums[g] = np.add.reduce(s[starts[g]:starts[g] + counts[g]])
    return sums / counts


def _prepare(boxes: NuscBoxes, samples: pd.DataFrame, config: TrackingConfig, *, is_gt: bool,
             fixed_interp: bool) -> PreparedBoxes:
    keep = _filter(boxes, config)
    token_index = pd.Index(samples["sample_token"])
    sample = token_index.get_indexer(boxes.sample_token[keep])
    scene_of_sample = samples["scene"].to_numpy()
    ts = samples["timestamp"].to_numpy(np.int64)
    ids = boxes.tracking_id[keep]
    name_index = {n: i for i, n in enumerate(config.class_names)}
    name = np.array([name_index[n] for n in boxes.tracking_name[keep]], dtype=np.int64)
    xy = boxes.translation[keep, :2]
    score = boxes.tracking_score[keep]
    # The devkit's frame lists: samples in time order, boxes of a sample in input order.
    order = np.argsort(sample, kind="stable")
    sample, ids, name, xy, score = sample[order], ids[order], name[order], xy[order], score[order]
    key = pd.Series(scene_of_sample[sample], dtype=object) + "\x00" + pd.Series(ids, dtype=object)
    group, _ = pd.factorize(key)
    group = np.asarray(group, dtype=np.int64)
    n_groups = int(group.max()) + 1 if len(group) else 0
    if len(group):
        pair = group * len(samples) + sample
        if len(np.unique(pair)) != len(pair):
            _, first = np.unique(pair, return_index=True)
            dup = np.setdiff1d(np.arange(len(pair)), first)[0]
            raise NuscenesDataError(f"{'GT' if is_gt else 'prediction'}: tracking_id {ids[dup]!r} appears twice in "
                                    f"sample {samples['sample_token'].iloc[sample[dup]]!r}")
    if not is_gt and len(score):
        score = _track_means(score, group, n_groups)[group]

    # Interpolation over missing keyframes between consecutive boxes of a track.
    by_track = np.lexsort((sample, group))
    g_s, s_s = group[by_track], sample[by_track]
    gap = (g_s[1:] == g_s[:-1]) & (s_s[1:] - s_s[:-1] > 1)
    left, right = by_track[:-1][gap], by_track[1:][gap]
    n_missing = sample[right] - sample[left] - 1
    if n_missing.sum():
        li = np.repeat(left, n_missing)
        ri = np.repeat(right, n_missing)
        step = np.arange(n_missing.sum()) - np.repeat(np.cumsum(n_missing) - n_missing, n_missing) + 1
        s_new = sample[li] + step
        t, tl, tr = ts[s_new], ts[sample[li]], ts[sample[ri]]
        if fixed_interp:
            r = (t - tl).astype(np.float64) / (tr - tl)
        else:
            r = (tr - t).astype(np.float64) / (tr - tl)  # the devkit's weight of the right box (issue #1141)
        xy_new = (1.0 - r)[:, None] * xy[li] + r[:, None] * xy[ri]
        score_new = (1.0 - r) * score[li] + r * score[ri]
        # Interpolated boxes follow a frame's own boxes, in order of their track's first appearance.
        first_pos = np.full(n_groups, len(group), dtype=np.int64)
        np.minimum.at(first_pos, group, np.arange(len(group)))
        rank = np.concatenate([np.arange(len(group)), first_pos[group[li]]])
        is_new = np.concatenate([np.zeros(len(group), np.int64), np.ones(len(li), np.int64)])
        sample = np.concatenate([sample, s_new])
        order = np.lexsort((rank, is_new, sample))
        sample = sample[order]
        group = np.concatenate([group, group[li]])[order]
        name = np.concatenate([name, name[ri]])[order]
        xy = np.concatenate([xy, xy_new])[order]
        score = np.concatenate([score, score_new])[order]
        ids = np.concatenate([ids, ids[li]])[order]
    return PreparedBoxes(sample, group, name, xy, score, ids)


# ------------------------------------------------------------------------------------------------------------
# One class: candidate pairs, the motmetrics accumulator as event arrays, per-threshold metrics
# ------------------------------------------------------------------------------------------------------------
def _pairwise_same_sample(s_g: np.ndarray, s_p: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """All (gt, pred) index pairs sharing a sample; both inputs sorted by sample."""
    cp = np.bincount(s_p, minlength=n_samples)
    p_start = np.concatenate([[0], np.cumsum(cp)[:-1]])
    per_gt = cp[s_g]
    gi = np.repeat(np.arange(len(s_g)), per_gt)
    offset = np.arange(per_gt.sum()) - np.repeat(np.cumsum(per_gt) - per_gt, per_gt)
    pj = p_start[s_g][gi] + offset if len(gi) else np.zeros(0, np.int64)
    return gi, pj


def _bev_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise BEV distance in sklearn ``euclidean_distances``' expanded form, as the devkit computes it."""
    d2 = -2.0 * (a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1])
    d2 += a[:, 0] * a[:, 0] + a[:, 1] * a[:, 1]
    d2 += b[:, 0] * b[:, 0] + b[:, 1] * b[:, 1]
    return np.sqrt(np.maximum(d2, 0.0))


def _assign(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """motmetrics 1.4.0 ``lsa_solve_scipy``: forbidden (NaN) pairs become a large constant, then are dropped."""
    valid = np.isfinite(cost)
    if not valid.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    c = np.abs(cost[valid]).max() + 1
    big = 2 * min(cost.shape) * c + 1
    rows, cols = linear_sum_assignment(np.where(valid, cost, big))
    ok = valid[rows, cols]
    return rows[ok], cols[ok]


class _ClassData:
    """GT and predictions of one class with their candidate pairs (distance < dist_th_tp), reused by all passes."""

    def __init__(self, gt: PreparedBoxes, pred: PreparedBoxes, cls: int, n_samples: int, dist_th: float) -> None:
        gm, pm = gt.name == cls, pred.name == cls
        self.n_samples = n_samples
        self.g_sample, self.g_obj, self.g_xy = gt.sample[gm], gt.group[gm], gt.xy[gm]
        self.g_track_ids = gt.track_id[gm]
        self.p_sample, self.p_hyp = pred.sample[pm], pred.group[pm]
        self.p_xy, self.p_score = pred.xy[pm], pred.score[pm]
        gi, pj = _pairwise_same_sample(self.g_sample, self.p_sample, n_samples)
        d = _bev_distance(self.g_xy[gi], self.p_xy[pj])
        close = d < dist_th  # the devkit sets d >= dist_th_tp to NaN: "no pair"
        self.pair_g, self.pair_p, self.pair_d = gi[close], pj[close], d[close]
        self.pair_sample = self.g_sample[self.pair_g]
        self.pair_start = np.searchsorted(self.pair_sample, np.arange(n_samples + 1))
        self._replay_cache: dict[tuple[int, bytes, tuple[int, ...]], list[tuple[int, int, float]]] = {}
        self.g_start = np.concatenate([[0], np.cumsum(np.bincount(self.g_sample, minlength=n_samples))])
        self.p_start = np.concatenate([[0], np.cumsum(np.bincount(self.p_sample, minlength=n_samples))])
        # GT boxes per object in time order, for MT/ML/FRAG/TID/LGD.
        self.by_obj = np.lexsort((self.g_sample, self.g_obj))
        obj_sorted = self.g_obj[self.by_obj]
        self.obj_starts = np.flatnonzero(np.r_[True, obj_sorted[1:] != obj_sorted[:-1]]) if len(obj_sorted) else \
            np.zeros(0, np.int64)
        self.obj_of_sorted = np.cumsum(np.r_[True, obj_sorted[1:] != obj_sorted[:-1]]) - 1 if len(obj_sorted) else \
            np.zeros(0, np.int64)

    def matches(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The accumulator's MATCH/SWITCH events for the active predictions: (gt idx, pred idx, dist, is_switch)."""
        keep = active[self.pair_p]
        gi, pj, d, s = self.pair_g[keep], self.pair_p[keep], self.pair_d[keep], self.pair_sample[keep]
        n_g, n_p = len(self.g_sample), len(self.p_sample)
        contested = (np.bincount(gi, minlength=n_g)[gi] > 1) | (np.bincount(pj, minlength=n_p)[pj] > 1)
        hard = np.unique(s[contested])
        if len(hard):
            easy = ~np.isin(s, hard)
            gi_e, pj_e, d_e, s_e = gi[easy], pj[easy], d[easy], s[easy]
            extra = self._replay(hard, gi_e, pj_e, s_e, active)
            gi = np.concatenate([gi_e, extra[0]])
            pj = np.concatenate([pj_e, extra[1]])
            d = np.concatenate([d_e, extra[2]])
            s = np.concatenate([s_e, self.g_sample[extra[0]]])
        # SWITCH: the object's previous match (in any earlier frame) was another hypothesis.
        order = np.lexsort((s, self.g_obj[gi]))
        gi, pj, d = gi[order], pj[order], d[order]
        obj, hyp = self.g_obj[gi], self.p_hyp[pj]
        switch = np.zeros(len(gi), bool)
        switch[1:] = (obj[1:] == obj[:-1]) & (hyp[1:] != hyp[:-1])
        return gi, pj, d, switch

    def _replay(self, hard: np.ndarray, gi_e: np.ndarray, pj_e: np.ndarray, s_e: np.ndarray,
                active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """motmetrics' update() for frames with competing candidates, in frame order."""
        last: dict[int, int] = {}  # object -> hypothesis of its latest match
        easy_obj, easy_hyp = self.g_obj[gi_e].tolist(), self.p_hyp[pj_e].tolist()
        easy_end = np.searchsorted(s_e, hard)  # s_e is sorted by sample
        pos = 0
        out_g: list[int] = []
        out_p: list[int] = []
        out_d: list[float] = []
        for s, end in zip(hard.tolist(), easy_end.tolist(), strict=True):
            last.update(zip(easy_obj[pos:end], easy_hyp[pos:end], strict=True))
            pos = end
            g0, g1 = int(self.g_start[s]), int(self.g_start[s + 1])
            p0, p1 = int(self.p_start[s]), int(self.p_start[s + 1])
            on = active[p0:p1]
            # A frame's outcome depends only on its active predictions and its objects' previous partners;
            # higher score thresholds often leave both unchanged, so passes share the replayed frames.
            key = (s, on.tobytes(), tuple(last.get(o, -1) for o in self.g_obj[g0:g1].tolist()))
            cached = self._replay_cache.get(key)
            if cached is None:
                cached = self._replay_frame(s, g0, g1, p0 + np.flatnonzero(on), last)
                self._replay_cache[key] = cached
            for g, p, d in cached:
                last[int(self.g_obj[g])] = int(self.p_hyp[p])
                out_g.append(g)
                out_p.append(p)
                out_d.append(d)
        return np.array(out_g, np.int64), np.array(out_p, np.int64), np.array(out_d, np.float64)

    def _replay_frame(self, s: int, g0: int, g1: int, p_idx: np.ndarray, last: dict[int, int]
                      ) -> list[tuple[int, int, float]]:
        """One motmetrics update() (steps a and b) for sample ``s``; returns its (gt, pred, distance) matches."""
        sl = slice(self.pair_start[s], self.pair_start[s + 1])
        on = np.isin(self.pair_p[sl], p_idx)
        pg, pp, pd_ = self.pair_g[sl][on], self.pair_p[sl][on], self.pair_d[sl][on]
        dist = np.full((g1 - g0, len(p_idx)), np.nan)
        dist[pg - g0, np.searchsorted(p_idx, pp)] = pd_
        oids, hids = self.g_obj[g0:g1], self.p_hyp[p_idx]
        o_used = np.zeros(g1 - g0, bool)
        h_used = np.zeros(len(p_idx), bool)
        out: list[tuple[int, int, float]] = []
        # (a) keep previous pairs that are still possible, objects in frame order.
        for i, o in enumerate(oids.tolist()):
            if o not in last:
                continue
            j = np.flatnonzero(~h_used & (hids == last[o]))
            if len(j) and np.isfinite(dist[i, j[0]]):
                o_used[i] = h_used[j[0]] = True
                out.append((g0 + i, int(p_idx[j[0]]), float(dist[i, j[0]])))
        # (b) Hungarian on the rest (used rows / columns forbidden, full matrix as motmetrics passes it).
        cost = dist.copy()
        cost[o_used, :] = np.nan
        cost[:, h_used] = np.nan
        for i, j in zip(*_assign(cost), strict=True):
            out.append((g0 + int(i), int(p_idx[j]), float(dist[i, j])))
        return out

    def evaluate(self, active: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
        """Metrics of one pass (predictions with ``active``) and the scores of MATCH (not SWITCH) hypotheses."""
        gi, pj, d, switch = self.matches(active)
        n_gt = len(self.g_sample)
        tp = int((~switch).sum())
        ids = int(switch.sum())
        fn = n_gt - len(gi)
        fp = int(active.sum()) - len(gi)
        frames = np.unique(np.concatenate([self.g_sample, self.p_sample[active]]))
        n_det = tp + ids
        matched = np.zeros(n_gt, bool)
        matched[gi] = True
        out: dict[str, float] = {"gt": float(n_gt), "tp": float(tp), "fp": float(fp), "fn": float(fn),
                                 "ids": float(ids)}
        recall = tp / n_gt
        nominator = (fn + ids + fp) - (1 - recall) * n_gt
        denominator = recall * n_gt
        out["motar"] = math.nan if denominator == 0 else max(0.0, 1 - 1.0 * nominator / denominator)
        out["mota"] = max(0.0, 1.0 - (fn + ids + fp) / n_gt)
        out["motp"] = math.nan if n_det == 0 else float(d.sum()) / n_det
        out["faf"] = fp / len(frames) * 100
        out["recall"] = n_det / n_gt
        out.update(self._object_metrics(matched, frames))
        return out, self.p_score[pj[~switch]]

    def _object_metrics(self, matched: np.ndarray, frames: np.ndarray) -> dict[str, float]:
        """MT, ML, FRAG, TID, LGD from each object's per-frame tracked / missed sequence."""
        fr = np.searchsorted(frames, self.g_sample[self.by_obj])  # frame ids count only frames with boxes
        hit = matched[self.by_obj]
        obj = self.obj_of_sorted
        starts = self.obj_starts
        n_obj = len(starts)
        length = np.diff(np.r_[starts, len(hit)])
        tracked = np.add.reduceat(hit.astype(np.int64), starts)
        ratio = tracked / length
        out = {"mt": float((ratio >= 0.8).sum()), "ml": float((ratio < 0.2).sum())}
        pos = np.arange(len(hit))
        last_hit = np.maximum.reduceat(np.where(hit, pos, -1), starts)[obj]
        frag = (~hit[1:]) & hit[:-1] & (obj[1:] == obj[:-1]) & (pos[1:] < last_hit[1:])
        out["frag"] = float(frag.sum())
        big = np.iinfo(np.int64).max
        first_fr = fr[starts]
        last_fr = fr[np.r_[starts[1:], len(hit)] - 1]
        first_hit_fr = np.minimum.reduceat(np.where(hit, fr, big), starts)
        last_hit_fr = np.maximum.reduceat(np.where(hit, fr, -1), starts)
        seen = tracked > 0
        n_seen = int(seen.sum())
        if n_seen == 0:
            out["tid"] = out["lgd"] = math.nan
            return out
        out["tid"] = float(((first_hit_fr[seen] - first_fr[seen]) * 0.5).sum()) / n_seen
        gap = np.zeros(n_obj, np.int64)
        hit_idx = np.flatnonzero(hit)
        h_obj, h_fr = obj[hit_idx], fr[hit_idx]
        inner = h_obj[1:] == h_obj[:-1]
        np.maximum.at(gap, h_obj[1:][inner], (h_fr[1:] - h_fr[:-1] - 1)[inner])
        gap = np.maximum(gap, first_hit_fr - first_fr)
        gap = np.maximum(gap, np.where(seen, last_fr - last_hit_fr, 0))
        out["lgd"] = float((gap[seen] * 0.5).sum()) / n_seen
        return out


def _thresholds(scores: np.ndarray, gt_count: int, config: TrackingConfig) -> tuple[np.ndarray, np.ndarray]:
    """The devkit's ``compute_thresholds``: score thresholds for the recall targets, NaN where unreachable."""
    n = config.num_thresholds
    if len(scores) == 0:
        return np.full(n, np.nan), np.full(n, np.nan)
    scores = np.sort(scores)[::-1]
    rec = np.arange(1, len(scores) + 1) / gt_count
    rec_interp = np.linspace(config.min_recall, 1, n).round(12)
    thresholds = np.interp(rec_interp, rec, scores, right=0)
    thresholds[rec_interp > rec.max()] = np.nan
    return thresholds[::-1].copy(), rec_interp[::-1].copy()


def _evaluate_class(data: _ClassData, config: TrackingConfig) -> ClassResult:
    n = config.num_thresholds
    n_gt = len(data.g_sample)
    if n_gt == 0:
        return ClassResult(np.full(n, np.nan), np.full(n, np.nan), metrics={m: math.nan for m in METRIC_NAMES})
    _, match_scores = data.evaluate(np.ones(len(data.p_sample), bool))
    thresholds, recalls = _thresholds(match_scores, n_gt, config)
    result = ClassResult(thresholds, recalls)
    valid = thresholds[~np.isnan(thresholds)]
    if len(valid) == 0:
        worst = dict(config.metric_worst)
        worst.update({"ml": float(len(set(data.g_track_ids.tolist()))), "gt": float(n_gt), "fn": float(n_gt),
                      "fp": math.nan, "ids": math.nan, "frag": math.nan})
        result.curves = {m: np.full(n, float(worst[m])) for m in THRESHOLD_METRICS}
    else:
        per_threshold = {}
        for thr in np.unique(valid).tolist():
            per_threshold[thr], _ = data.evaluate(data.p_score >= thr)
        result.curves = {m: np.array([math.nan if math.isnan(t) else per_threshold[t][m] for t in thresholds.tolist()])
                         for m in THRESHOLD_METRICS}
    best = None if np.all(np.isnan(result.curves["mota"])) else int(np.nanargmax(result.curves["mota"]))
    metrics = {m: math.nan for m in METRIC_NAMES}
    if best is not None:
        for m in THRESHOLD_METRICS:
            metrics[m] = float(result.curves[m][best])
    for avg, curve in (("amota", "motar"), ("amotp", "motp")):
        values = result.curves[curve].copy()
        if not np.all(np.isnan(values)):
            values[np.isnan(values)] = config.metric_worst[avg]
            metrics[avg] = float(np.nanmean(values))
    result.metrics = metrics
    return result


def combine_classes(per_class: dict[str, dict[str, float]]) -> dict[str, float]:
    """The devkit's overall numbers: sums for counts, ``nanmean`` for the rest (NaN if a metric is NaN everywhere)."""
    out = {}
    for m in METRIC_NAMES:
        values = np.array([per_class[c][m] for c in per_class], dtype=np.float64)
        if m in SUMMED_METRICS:
            out[m] = float(np.nansum(values))
        else:
            out[m] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    return out


class NuscenesTrackingMetric(Metric):
    """nuScenes tracking (AMOTA, AMOTP and the rest of :data:`METRIC_NAMES`) as a :class:`~bench.metrics.base.Metric`.

    The devkit's steps split at the point where the whole split starts to matter:

    * ``eval_sequence(gt, pred)``, one scene's boxes: the filters, the track scores and the interpolation
      (steps 1-3 of the module doc) are per scene, and give a :class:`SceneBoxes`.
    * ``combine_sequences({scene: SceneBoxes})``: matching, the recall targets and score thresholds (from the
      MATCH scores of all scenes together), the per-threshold metrics and AMOTA/AMOTP (steps 4-6), per
      class, then the classes combined (:func:`combine_classes`); gives a :class:`NuscenesResult`. Matching
      is per scene, but it runs at the thresholds that only the whole split decides, so it belongs here.
    * ``summary(result)``: the overall metrics (keys :data:`METRIC_NAMES`) and ``"<metric>/<class>"``.

    The devkit has no per-scene numbers; ``combine_sequences({scene: result})`` of one scene is that scene
    scored on its own (its own thresholds), which is what the protocol reports per sequence.
    ``eval_sequences(gt, pred)`` does ``eval_sequence`` for every scene of a split in one vectorised pass
    (the same results, ``tests/metrics/test_metric_contract.py``).
    """

    FIELDS: ClassVar[tuple[str, ...]] = METRIC_NAMES

    def __init__(self, config: TrackingConfig = TRACKING_NIPS_2019, *, fixed_interpolation: bool = False) -> None:
        self.config = config
        self.fixed_interpolation = fixed_interpolation

    def _prepare_both(self, gt: NuscBoxes, pred: NuscBoxes) -> tuple[pd.DataFrame, PreparedBoxes, PreparedBoxes]:
        samples = _sample_table(gt, pred)
        return (samples, _prepare(gt, samples, self.config, is_gt=True, fixed_interp=self.fixed_interpolation),
                _prepare(pred, samples, self.config, is_gt=False, fixed_interp=self.fixed_interpolation))

    def eval_sequence(self, gt: NuscBoxes, pred: NuscBoxes) -> SceneBoxes:  # type: ignore[override]
        """One scene's GT and predicted boxes (and their ``samples``) after filters, track scores, interpolation."""
        samples, gt_p, pred_p = self._prepare_both(gt, pred)
        scenes = set(samples["scene"])
        if len(scenes) > 1:
            raise ValueError(f"eval_sequence scores one scene, got {len(scenes)}; eval_sequences splits a whole split")
        return SceneBoxes(len(samples), gt_p, pred_p)

    def eval_sequences(self, gt: NuscBoxes, pred: NuscBoxes) -> dict[str, SceneBoxes]:
        """``{scene: eval_sequence(its boxes)}`` for every scene of ``gt``/``pred`` (and their ``samples``), in
        scene order, from one pass over all boxes: the steps are per box or per track, and tracks never
        cross scenes, so each scene's rows of the whole-split arrays are exactly its own result."""
        samples, gt_p, pred_p = self._prepare_both(gt, pred)
        scene = samples["scene"].to_numpy()
        starts = np.flatnonzero(np.r_[True, scene[1:] != scene[:-1]]) if len(scene) else np.zeros(0, np.int64)
        bounds = np.append(starts, len(scene))
        # Both prepared tables are sorted by sample, and samples by scene: each scene is one block of rows.
        g_rows = [int(r) for r in np.searchsorted(gt_p.sample, bounds)]
        p_rows = [int(r) for r in np.searchsorted(pred_p.sample, bounds)]
        out: dict[str, SceneBoxes] = {}
        g_groups = p_groups = 0  # tracks are numbered in order of first appearance, so scene after scene
        for i, (first, end) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)):
            g = gt_p.rows(slice(g_rows[i], g_rows[i + 1]), first, g_groups)
            p = pred_p.rows(slice(p_rows[i], p_rows[i + 1]), first, p_groups)
            g_groups += g.n_groups
            p_groups += p.n_groups
            out[str(scene[first])] = SceneBoxes(end - first, g, p)
        return out

    def combine_sequences(self, results: dict[str, SceneBoxes]) -> NuscenesResult:
        """All scenes (in name order, so the order of the dict does not matter) scored together, per class."""
        names = sorted(results)
        n_samples = [results[n].n_samples for n in names]
        gt = PreparedBoxes.concatenate([results[n].gt for n in names], n_samples)
        pred = PreparedBoxes.concatenate([results[n].pred for n in names], n_samples)
        per_class: dict[str, dict[str, float]] = {}
        curves: dict[str, dict[str, list[float]]] = {}
        for c, name in enumerate(self.config.class_names):
            res = _evaluate_class(_ClassData(gt, pred, c, sum(n_samples), self.config.dist_th_tp), self.config)
            per_class[name] = res.metrics
            curves[name] = {"threshold": res.thresholds.tolist(), "recall_target": res.recall_targets.tolist(),
                            **{m: v.tolist() for m, v in res.curves.items()}}
        return NuscenesResult(combine_classes(per_class), per_class, curves)

    def summary(self, result: NuscenesResult) -> dict[str, float]:
        out = dict(result.overall)
        for name, metrics in result.per_class.items():
            out.update({f"{m}/{name}": v for m, v in metrics.items()})
        return out


def scene_boxes(boxes: NuscBoxes, scene: str) -> NuscBoxes:
    """The boxes (and samples) of one scene: ``eval_sequence``'s input, cut from a whole split."""
    keep = boxes.scene == scene
    samples = None if boxes.samples is None else boxes.samples[boxes.samples["scene"].to_numpy() == scene]
    optional = {k: None if getattr(boxes, k) is None else getattr(boxes, k)[keep]
                for k in ("size", "rotation", "velocity")}
    return NuscBoxes(boxes.sample_token[keep], boxes.scene[keep], boxes.timestamp[keep], boxes.translation[keep],
                     boxes.tracking_id[keep], boxes.tracking_name[keep], boxes.tracking_score[keep],
                     boxes.ego_translation[keep], boxes.num_pts[keep], samples=samples, **optional)


def evaluate_boxes(gt: NuscBoxes, pred: NuscBoxes, config: TrackingConfig = TRACKING_NIPS_2019, *,
                   fixed_interpolation: bool = False, protocol: str | None = None,
                   per_scene: bool = False) -> MetricResult:
    """Score ``pred`` against ``gt`` as nuscenes-devkit's TrackingEval does, through :class:`NuscenesTrackingMetric`.

    ``summary`` holds the overall metrics (keys as :data:`METRIC_NAMES`) and ``"<metric>/<class>"`` per class;
    ``extras["per_class"]`` the per-class dicts and ``extras["curves"]`` the per-threshold arrays. With
    ``per_scene``, ``per_sequence`` holds the overall metrics of each scene evaluated on its own (thresholds
    of that scene alone; the devkit has no per-scene numbers).
    """
    metric = NuscenesTrackingMetric(config, fixed_interpolation=fixed_interpolation)
    scenes = metric.eval_sequences(gt, pred)
    result = metric.combine_sequences(scenes)
    rows = {scene: metric.combine_sequences({scene: r}).overall for scene, r in scenes.items()} if per_scene else {}
    name = protocol or ("nuscenes-fixed-interp" if fixed_interpolation else "nuscenes")
    return MetricResult(protocol=name, summary=metric.summary(result), per_sequence=per_sequence_frame(rows),
                        extras={"per_class": result.per_class, "curves": result.curves, "config": "tracking_nips_2019",
                                "bike_rack_filter": "skipped (no bike-rack annotations)"})


def evaluate_protocol(gt: Any, pred: Any, *, sequences: Any = None, fixed_interpolation: bool = False,
                      config: TrackingConfig = TRACKING_NIPS_2019, per_sequence: bool = True,
                      **opts: Any) -> MetricResult:
    """Protocol ``nuscenes``: ``gt``/``pred`` are :class:`NuscBoxes` or bench track tables (+ ``sequences``).

    Track tables are moved to the global frame with each frame's ``cam_to_world`` (see
    :func:`bench.data.formats.nuscenes_eval.tracks_to_boxes`). ``per_sequence`` adds per-scene rows.
    """
    if not isinstance(gt, NuscBoxes):
        from bench.data.formats.nuscenes_eval import tracks_to_boxes

        gt = tracks_to_boxes(gt, sequences, is_gt=True)
        pred = tracks_to_boxes(pred, sequences, is_gt=False)
    return evaluate_boxes(gt, pred, config, fixed_interpolation=fixed_interpolation, per_scene=per_sequence)


def evaluate_protocol_fixed_interp(gt: Any, pred: Any, *, sequences: Any = None, **opts: Any) -> MetricResult:
    """Protocol ``nuscenes-fixed-interp``: as ``nuscenes`` but interpolating with the correct weights."""
    return evaluate_protocol(gt, pred, sequences=sequences, fixed_interpolation=True, **opts)
