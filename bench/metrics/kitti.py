"""The official KITTI tracking protocol (``kitti-2d``), preprocessing exactly as TrackEval's Kitti2DBox.

Per class (car, pedestrian) and frame:

1. GT of the class and of its distractor class (van for car, person sitting for pedestrian) is kept;
   predictions of the class are kept.
2. Predictions are Hungarian-matched to that GT at 2D IoU >= 0.5; predictions matched to a distractor,
   an occluded (occlusion > 2) or a truncated (truncation > 0) GT box are removed.
3. Unmatched predictions are removed if at most 25 px tall or more than 50 % inside a DontCare region.
4. Only GT of the class with occlusion <= 2 and truncation <= 0 is evaluated.

Then CLEAR / Identity / HOTA at IoU 0.5, through TrackEval's metric classes.

``kitti-2d-scaled`` is the same protocol with its one pixel rule (step 3's 25 px) scaled to each sequence's image
height: 25 px at KITTI's 375 rows, so 8.5 px at synth-kitti's 128. At a third of KITTI's resolution the fixed rule
would forgive every unmatched prediction under KITTI's 73 px, i.e. most false positives, while the world's own
labelling already scales its cut-off (``bench/data/synth/labels.py``). It is for synthetic worlds rendered at
another size; real KITTI is scored with ``kitti-2d`` and its 25 px exactly. The height used is in the result's
extras (``min_height``), and the protocol's own name is in every table that shows it.

Occlusion and truncation are the integer levels the official readers make of the label columns
(``int(...)``, so an object-style truncation fraction of 0.3 is level 0 and is evaluated); class names are
matched in any case. ``bench.data.formats.kitti.read_labels`` reads them that way, and
tests/metrics/test_kitti_official_reading.py compares bench with TrackEval's own pipeline on such files.

``Person_sitting``: TrackEval's class map has no ``person_sitting`` and its ``valid_filter`` is a no-op
(the ``continue`` only leaves the inner loop), so a raw KITTI label with ``Person_sitting`` makes TrackEval
fail to read the file; TrackEval's own copy of the KITTI GT renames the class to ``Person``. We read both
names as the pedestrian distractor, which is what TrackEval computes on its GT copy and what the KITTI
devkit intends (person_sitting is pedestrian's "neighbouring class"). Classes TrackEval does not know in
a *prediction* file also make it fail; we ignore them, since they can never match the evaluated class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from bench.data.tracks import DONTCARE
from bench.metrics.similarity import ioa_2d, iou_2d
from bench.metrics.tracking import frame_count, frame_slices, score_tracking, sequence_data

MAX_OCCLUSION = 2
MAX_TRUNCATION = 0
MIN_HEIGHT = 25.0
KITTI_IMAGE_ROWS = 375  # the height MIN_HEIGHT is stated at (KITTI tracking images are 370-376 rows)
IOU_THRESHOLD = 0.5
DISTRACTORS: dict[str, str] = {"car": "van", "pedestrian": "person"}
_EPS = float(np.finfo(float).eps)
_BOX = ["x1", "y1", "x2", "y2"]


def kitti_class(cls: pd.Series) -> np.ndarray:
    """Track-table class names -> TrackEval's KITTI class names (lower case; Person_sitting -> person)."""
    names = cls.astype(str).str.lower().to_numpy(dtype=object)
    names[names == "person_sitting"] = "person"
    return names


def preprocess_sequence(seq: str, n_frames: int, gt: pd.DataFrame, pred: pd.DataFrame, cls: str,
                        min_height: float = MIN_HEIGHT) -> dict[str, Any]:
    """One sequence and class -> TrackEval's preprocessed data dict (see the module docstring)."""
    distractor = DISTRACTORS[cls]
    gt_cls = kitti_class(gt["cls"])
    is_dontcare = gt_cls == DONTCARE.lower()
    regions = gt[is_dontcare]
    keep = (gt["track_id"].to_numpy() >= 0) & ~is_dontcare & np.isin(gt_cls, [cls, distractor])
    g, g_cls = gt[keep], gt_cls[keep]
    p = pred[(kitti_class(pred["cls"]) == cls) & (pred["track_id"].to_numpy() >= 0)]

    g_ids, g_box = g["track_id"].to_numpy(), g[_BOX].to_numpy(dtype=float)
    g_occ, g_trunc = g["occlusion"].to_numpy(), g["truncation"].to_numpy()
    g_eval = (g_cls == cls) & (g_occ <= MAX_OCCLUSION) & (g_trunc <= MAX_TRUNCATION)
    p_ids, p_box = p["track_id"].to_numpy(), p[_BOX].to_numpy(dtype=float)
    r_box = regions[_BOX].to_numpy(dtype=float)

    gt_ids, tracker_ids, sims = [], [], []
    frames = zip(frame_slices(g["frame"].to_numpy(), n_frames, seq), frame_slices(p["frame"].to_numpy(), n_frames, seq),
                 frame_slices(regions["frame"].to_numpy(), n_frames, seq), strict=True)
    for gi, pi, ri in frames:
        sim = iou_2d(g_box[gi], p_box[pi])
        remove = np.zeros(len(pi), bool)
        unmatched = np.ones(len(pi), bool)
        if len(gi) and len(pi):
            score = np.where(sim < IOU_THRESHOLD - _EPS, 0.0, sim)
            rows, cols = linear_sum_assignment(-score)
            ok = score[rows, cols] > _EPS
            rows, cols = rows[ok], cols[ok]
            unmatched[cols] = False
            # Matched to GT that is not evaluated (distractor, occluded, truncated): neither TP nor FP.
            remove[cols[~g_eval[gi][rows]]] = True
        boxes = p_box[pi]
        too_small = boxes[:, 3] - boxes[:, 1] <= min_height + _EPS
        in_dontcare = (ioa_2d(boxes, r_box[ri]) > 0.5 + _EPS).any(axis=1)
        remove |= unmatched & (too_small | in_dontcare)
        keep_g = g_eval[gi]
        gt_ids.append(g_ids[gi][keep_g])
        tracker_ids.append(p_ids[pi][~remove])
        sims.append(sim[keep_g][:, ~remove])
    return sequence_data(seq, gt_ids, tracker_ids, sims)


def evaluate_kitti_2d(gt: pd.DataFrame, pred: pd.DataFrame, *, sequences: dict[str, Any] | None = None,
                      classes: tuple[str, ...] = ("car", "pedestrian"), headline: str = "car",
                      scale_pixels: bool = False) -> Any:
    """The KITTI tracking benchmark's 2D protocol; the summary is the ``headline`` class, all classes in extras.

    ``scale_pixels``: scale the 25 px rule to each sequence's image height (``kitti-2d-scaled``; needs
    ``sequences``)."""
    for cls in classes:
        if cls not in DISTRACTORS:
            raise ValueError(f"kitti-2d evaluates classes {sorted(DISTRACTORS)}, not {cls!r}")
    if headline not in classes:
        raise ValueError(f"kitti-2d: headline class {headline!r} is not among the evaluated classes {classes}")
    seqs = sorted(set(gt["seq"]) | set(pred["seq"]) | set(sequences or {}))
    gt_by_seq = dict(tuple(gt.groupby("seq", sort=False)))
    pred_by_seq = dict(tuple(pred.groupby("seq", sort=False)))
    per_class: dict[str, dict[str, dict[str, Any]]] = {cls: {} for cls in classes}
    min_heights: dict[str, float] = {}
    for seq in seqs:
        g = gt_by_seq.get(seq, gt.iloc[:0])
        p = pred_by_seq.get(seq, pred.iloc[:0])
        n = frame_count(seq, g, p, sequences)
        min_heights[seq] = scaled_min_height(seq, sequences) if scale_pixels else MIN_HEIGHT
        for cls in classes:
            per_class[cls][seq] = preprocess_sequence(seq, n, g, p, cls, min_heights[seq])
    name = "kitti-2d-scaled" if scale_pixels else "kitti-2d"
    result = score_tracking(name, per_class, threshold=IOU_THRESHOLD, headline=headline)
    heights = set(min_heights.values())
    result.extras["min_height"] = heights.pop() if len(heights) == 1 else min_heights
    return result


def evaluate_kitti_2d_scaled(gt: pd.DataFrame, pred: pd.DataFrame, *, sequences: dict[str, Any] | None = None,
                             **options: Any) -> Any:
    """``kitti-2d`` with the 25 px rule scaled to the image height (see the module docstring)."""
    return evaluate_kitti_2d(gt, pred, sequences=sequences, scale_pixels=True, **options)


def scaled_min_height(seq: str, sequences: dict[str, Any] | None) -> float:
    """KITTI's 25 px at 375 rows, scaled to the height of ``seq``'s images."""
    if not sequences or seq not in sequences:
        raise ValueError(f"kitti-2d-scaled needs the sequences' image sizes; none given for {seq!r}")
    height = sequences[seq].image_size[1]
    return MIN_HEIGHT * float(height) / KITTI_IMAGE_ROWS
