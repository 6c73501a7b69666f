"""MOTChallenge (MOT17) protocol: TrackEval's MotChallenge2DBox preprocessing, then the shared scoring.

The preprocessing (which predictions are distractor matches and which GT is evaluated) is
:func:`preprocess_mot17_sequence`; scoring is :func:`bench.metrics.tracking.score_tracking`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bench.metrics.base import MetricResult
from bench.metrics.tracking import EPS, box_columns, frame_count, frame_slices, score_tracking, sequence_data

# MOTChallenge class ids (TrackEval's MotChallenge2DBox); readers may give names or the numeric ids as strings.
MOT_CLASS_IDS: dict[str, int] = {
    "pedestrian": 1, "person_on_vehicle": 2, "car": 3, "bicycle": 4, "motorbike": 5, "non_mot_vehicle": 6,
    "static_person": 7, "distractor": 8, "occluder": 9, "occluder_on_ground": 10, "occluder_full": 11,
    "reflection": 12, "crowd": 13,
}
MOT17_DISTRACTORS: tuple[int, ...] = (2, 7, 8, 12)


def mot_class_ids(cls: pd.Series) -> np.ndarray:
    """Class names or numeric strings -> MOTChallenge class ids (0 for anything else)."""
    names = cls.astype(str).str.strip().str.lower().str.replace(" ", "_")
    ids = names.map(MOT_CLASS_IDS)
    numeric = pd.to_numeric(names, errors="coerce")
    return ids.fillna(numeric).fillna(0).to_numpy(dtype=int)


def evaluate_mot17(gt: pd.DataFrame, pred: pd.DataFrame, *, sequences: dict[str, Any] | None = None) -> MetricResult:
    """MOTChallenge (MOT17) protocol as TrackEval's MotChallenge2DBox preprocesses it.

    Every prediction is a pedestrian. Per frame, predictions that Hungarian-match (IoU >= 0.5) a GT box of a
    distractor class (person on vehicle, static person, distractor, reflection) are removed; then only
    pedestrian GT that is not zero-marked is evaluated. As bench.data.formats.mot reads gt.txt, the GT ``score``
    holds MOT's ``consider`` flag (0 = zero-marked) and ``cls`` the MOT class name.
    """
    seqs = sorted(set(gt["seq"]) | set(pred["seq"]) | set(sequences or {}))
    gt_by_seq = dict(tuple(gt.groupby("seq", sort=False)))
    pred_by_seq = dict(tuple(pred.groupby("seq", sort=False)))
    out: dict[str, dict[str, Any]] = {}
    for seq in seqs:
        g = gt_by_seq.get(seq, gt.iloc[:0])
        p = pred_by_seq.get(seq, pred.iloc[:0])
        out[seq] = preprocess_mot17_sequence(seq, frame_count(seq, g, p, sequences), g, p)
    return score_tracking("mot17", {"pedestrian": out}, threshold=0.5, headline="pedestrian")


def preprocess_mot17_sequence(seq: str, n: int, g: pd.DataFrame, p: pd.DataFrame) -> dict[str, Any]:
    """One sequence's TrackEval data dict after MOT17's rules (distractor matches removed, pedestrian GT kept)."""
    from scipy.optimize import linear_sum_assignment

    from bench.metrics.similarity import iou_2d

    g_cls = mot_class_ids(g["cls"])
    g_keep_all = (g["score"].to_numpy() != 0) & (g_cls == 1)
    g_ids, p_ids = g["track_id"].to_numpy(), p["track_id"].to_numpy()
    g_box, p_box = box_columns(g, ("x1", "y1", "x2", "y2")), box_columns(p, ("x1", "y1", "x2", "y2"))
    gid_f, pid_f, sims = [], [], []
    for gi, pi in zip(frame_slices(g["frame"].to_numpy(), n, seq), frame_slices(p["frame"].to_numpy(), n, seq),
                      strict=True):
        sim = iou_2d(g_box[gi], p_box[pi])
        keep_p = np.ones(len(pi), bool)
        if len(gi) and len(pi):
            score = np.where(sim < 0.5 - EPS, 0.0, sim)
            rows, cols = linear_sum_assignment(-score)
            ok = score[rows, cols] > EPS
            rows, cols = rows[ok], cols[ok]
            keep_p[cols[np.isin(g_cls[gi][rows], MOT17_DISTRACTORS)]] = False
        keep_g = g_keep_all[gi]
        gid_f.append(g_ids[gi][keep_g])
        pid_f.append(p_ids[pi][keep_p])
        sims.append(sim[keep_g][:, keep_p])
    return sequence_data(seq, gid_f, pid_f, sims)
