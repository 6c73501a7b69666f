"""Stage 3 of BA²-Det, close -> distant: self-training with the detector's own predictions as pseudo-labels.

After a detector is trained, it predicts on the training videos. A 2D label without a 3D pseudo-label (a moving
or distant object that the reconstruction missed) takes the 3D box of the prediction that overlaps it (2D IoU
>= ``match_iou``, one-to-one per frame), if its 2D track is matched on at least ``min_hits`` frames: the
temporal consistency of the paper's tracked 2D boxes. Along each track the box size is replaced by the track's
median (an object does not change size), which also steadies the far frames with few pixels. Boxes that had a
pseudo-label from the reconstruction keep it. The detector is then trained again on the result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from bench.data.sequence import Sequence
from bench.data.tracks import BOX2D_COLUMNS, BOX3D_COLUMNS


def iou_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of 2D boxes ``(N, 4)`` x ``(M, 4)`` (x1 y1 x2 y2)."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def self_training_labels(initial: pd.DataFrame, predictions: pd.DataFrame, sequences: dict[str, Sequence],
                         match_iou: float = 0.5, min_hits: int = 2) -> pd.DataFrame:
    """``initial`` (2D labels with initial 3D pseudo-boxes or NaN) with the NaN boxes filled from matched
    predictions, per the rules above. ``sequences`` is accepted for symmetry with the other stages."""
    del sequences
    out = initial.copy().reset_index(drop=True)
    box3d = list(BOX3D_COLUMNS)
    filled = np.full((len(out), 7), np.nan)
    missing = ~np.isfinite(out[box3d].to_numpy(np.float64)).all(axis=1)
    pred_groups = predictions.groupby(["seq", "frame"]).indices
    for (seq, frame), rows in out.groupby(["seq", "frame"]).indices.items():
        rows = rows[missing[rows]]
        idx = pred_groups.get((seq, frame))
        if not len(rows) or idx is None:
            continue
        iou = iou_2d(out.loc[rows, list(BOX2D_COLUMNS)].to_numpy(np.float64),
                     predictions.iloc[idx][list(BOX2D_COLUMNS)].to_numpy(np.float64))
        r, c = linear_sum_assignment(-iou)
        ok = iou[r, c] >= match_iou
        filled[rows[r[ok]]] = predictions.iloc[idx[c[ok]]][box3d].to_numpy(np.float64)
    hit = np.isfinite(filled).all(axis=1)
    for _, rows in out.groupby(["seq", "track_id"]).indices.items():
        got = rows[hit[rows]]
        if len(got) < min_hits:
            hit[got] = False
            continue
        filled[got, 3:6] = np.median(filled[got, 3:6], axis=0)  # one size per object along its track
    out.loc[hit, box3d] = filled[hit]
    return out
