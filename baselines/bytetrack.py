"""``bytetrack``: ByteTrack-style two-stage association (Zhang et al., ECCV 2022) on public detections.

Re-implemented from the paper: detections are split by score into high (>= ``track_thresh``) and low
(>= ``low_thresh``); tracked and lost tracks are Kalman-predicted (constant velocity on centre, aspect
ratio and height, noise proportional to the height) and matched first to the high detections by IoU
(Hungarian, IoU >= ``match_iou``), then the tracks still unmatched to the low detections (IoU >=
``second_iou``): low-score boxes are mostly occluded objects, so they keep tracks alive instead of being
thrown away. High detections left over start tentative tracks (score >= ``new_track_thresh``), confirmed by
a second match; a track lost for more than ``track_buffer`` frames is removed. Learns nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from baselines.sort import frames_of, iou_matrix, match, require_detections, tracks_table
from bench.interface import Method, RunContext, SplitView, TrainView

_STD_POS, _STD_VEL = 1.0 / 20, 1.0 / 160  # ByteTrack's noise, relative to the box height


def _xyah(box: np.ndarray) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + w / 2, box[1] + h / 2, w / max(h, 1e-6), h])


def _box(x: np.ndarray) -> np.ndarray:
    h = max(x[3], 1e-6)
    w = x[2] * h
    return np.array([x[0] - w / 2, x[1] - h / 2, x[0] + w / 2, x[1] + h / 2])


class _Track:
    F = np.eye(8) + np.eye(8, k=4)
    H = np.eye(4, 8)

    def __init__(self, box: np.ndarray, score: float) -> None:
        z = _xyah(box)
        self.x = np.concatenate([z, np.zeros(4)])
        h = z[3]
        std = [2 * _STD_POS * h, 2 * _STD_POS * h, 1e-2, 2 * _STD_POS * h,
               10 * _STD_VEL * h, 10 * _STD_VEL * h, 1e-5, 10 * _STD_VEL * h]
        self.P = np.diag(np.square(std))
        self.score = score
        self.id = -1
        self.confirmed = False
        self.lost_for = 0

    def predict(self) -> None:
        h = self.x[3]
        std = [_STD_POS * h, _STD_POS * h, 1e-2, _STD_POS * h, _STD_VEL * h, _STD_VEL * h, 1e-5, _STD_VEL * h]
        self.x = self.F @ self.x
        self.P = self.F @ self.P @ self.F.T + np.diag(np.square(std))

    def update(self, box: np.ndarray, score: float) -> None:
        h = self.x[3]
        r = np.diag(np.square([_STD_POS * h, _STD_POS * h, 1e-1, _STD_POS * h]))
        s = self.H @ self.P @ self.H.T + r
        gain = np.linalg.solve(s, self.H @ self.P).T
        self.x = self.x + gain @ (_xyah(box) - self.H @ self.x)
        self.P = (np.eye(8) - gain @ self.H) @ self.P
        self.score = score
        self.lost_for = 0


def bytetrack_sequence(frames: list[tuple[int, np.ndarray, np.ndarray]], seq: str, *, track_thresh: float,
                       low_thresh: float, new_track_thresh: float, match_iou: float, second_iou: float,
                       track_buffer: int) -> list[tuple]:
    active: list[_Track] = []  # confirmed tracks, matched or lost (lost_for > 0)
    tentative: list[_Track] = []
    next_id = 0
    out: list[tuple] = []
    for count, (frame, boxes, scores) in enumerate(frames):
        high = scores >= track_thresh
        low = (scores >= low_thresh) & ~high
        hb, hs, lb, ls = boxes[high], scores[high], boxes[low], scores[low]
        for t in active + tentative:
            t.predict()
        updated: list[_Track] = []
        pred = np.array([_box(t.x) for t in active]).reshape(-1, 4)
        pairs, left, new = match(iou_matrix(pred, hb), match_iou)
        for r, c in pairs:
            active[r].update(hb[c], float(hs[c]))
            updated.append(active[r])
        # Second stage: low-score boxes only for the tracks the first stage left.
        rest = [active[r] for r in left]
        pred = np.array([_box(t.x) for t in rest]).reshape(-1, 4)
        pairs2, _, _ = match(iou_matrix(pred, lb), second_iou)
        for r, c in pairs2:
            rest[r].update(lb[c], float(ls[c]))
            updated.append(rest[r])
        # Tentative tracks against the high boxes the first stage left; a match confirms them.
        hb_left = hb[new]
        hs_left = hs[new]
        pred = np.array([_box(t.x) for t in tentative]).reshape(-1, 4)
        pairs3, _, unused = match(iou_matrix(pred, hb_left), match_iou)
        for r, c in pairs3:
            t = tentative[r]
            t.update(hb_left[c], float(hs_left[c]))
            t.confirmed, t.id = True, next_id
            next_id += 1
            active.append(t)
            updated.append(t)
        tentative = []
        for c in unused:
            if hs_left[c] >= new_track_thresh:
                t = _Track(hb_left[c], float(hs_left[c]))
                if count == 0:  # the first frame's tracks are confirmed at once, as ByteTrack does
                    t.confirmed, t.id = True, next_id
                    next_id += 1
                    active.append(t)
                    updated.append(t)
                else:
                    tentative.append(t)
        seen = {id(t) for t in updated}
        for t in active:
            if id(t) not in seen:
                t.lost_for += 1
        active = [t for t in active if t.lost_for <= track_buffer]
        for t in updated:
            out.append((seq, frame, t.id, t.score, *_box(t.x)))
    return out


class ByteTrack(Method):
    """ByteTrack's association (no detector of its own) on the split's public detections."""

    outputs = "2d-tracks"
    sees_identities = False  # it uses no label at all

    def __init__(self, track_thresh: float = 0.5, low_thresh: float = 0.1, new_track_thresh: float = 0.6,
                 match_iou: float = 0.2, second_iou: float = 0.5, track_buffer: int = 30) -> None:
        super().__init__(track_thresh=track_thresh, low_thresh=low_thresh, new_track_thresh=new_track_thresh,
                         match_iou=match_iou, second_iou=second_iou, track_buffer=track_buffer)
        if not 0.0 <= low_thresh <= track_thresh <= 1.0:
            raise ValueError(f"expected 0 <= low_thresh <= track_thresh <= 1, got {low_thresh}, {track_thresh}")
        if track_buffer < 0:
            raise ValueError(f"track_buffer must be >= 0, got {track_buffer}")
        self.track_thresh, self.low_thresh = float(track_thresh), float(low_thresh)
        self.new_track_thresh, self.match_iou, self.second_iou = (float(new_track_thresh), float(match_iou),
                                                                  float(second_iou))
        self.track_buffer = int(track_buffer)

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        require_detections(train, "bytetrack")

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        require_detections(split, "bytetrack")
        rows: list[tuple] = []
        for i, (name, seq) in enumerate(sorted(split.sequences.items())):
            rows += bytetrack_sequence(
                frames_of(split.detections, name, seq.frame_ids), name, track_thresh=self.track_thresh,
                low_thresh=self.low_thresh, new_track_thresh=self.new_track_thresh, match_iou=self.match_iou,
                second_iou=self.second_iou, track_buffer=self.track_buffer)
            ctx.progress(i + 1, len(split.sequences), "bytetrack")
        return tracks_table(rows, "bytetrack")
