"""``sort``: SORT (Bewley et al., ICIP 2016), Kalman filter + IoU Hungarian on public detections.

Re-implemented from the paper: each track is a constant-velocity Kalman filter on (centre x, centre y,
area, aspect ratio), the aspect ratio held constant; every frame the tracks are predicted, matched to the
detections by the Hungarian algorithm on IoU (pairs under ``iou_threshold`` rejected), updated, and
unmatched detections start tracks. A track is output once it has ``min_hits`` consecutive updates (or in
the first ``min_hits`` frames of a video) and dies after ``max_age`` frames without one. Detections
scoring under ``det_thresh`` are ignored.

It learns nothing: ``fit`` only checks that the training videos ship detections. The defaults below were
chosen on a development world (synth-mot, data seed 7: scripts/tune_sort.py), never on the validation
split; the profiles repeat them under ``methods.sort``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from bench.data.tracks import empty_tracks, make_tracks, sort_tracks
from bench.interface import Method, RunContext, SplitView, TrainView

BOX = ["x1", "y1", "x2", "y2"]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` boxes (x1 y1 x2 y2)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match(score: np.ndarray, threshold: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Hungarian assignment maximising ``score`` (N x M); pairs scoring under ``threshold`` are left unmatched."""
    if score.size == 0:
        return [], list(range(score.shape[0])), list(range(score.shape[1]))
    rows, cols = linear_sum_assignment(-score)
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if score[r, c] >= threshold]
    used_r, used_c = {r for r, _ in pairs}, {c for _, c in pairs}
    return (pairs, [r for r in range(score.shape[0]) if r not in used_r],
            [c for c in range(score.shape[1]) if c not in used_c])


def frames_of(detections: pd.DataFrame, seq: str, frame_ids: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Per frame of a sequence: (frame id, boxes (N, 4), scores (N,)), frames without detections included."""
    rows = detections[detections["seq"] == seq] if len(detections) else detections
    groups = rows.groupby("frame").indices if len(rows) else {}
    boxes, scores = (rows[BOX].to_numpy(np.float64), rows["score"].to_numpy(np.float64)) if len(rows) else (
        np.zeros((0, 4)), np.zeros(0))
    out = []
    for frame in frame_ids:
        idx = groups.get(int(frame))
        if idx is None:
            out.append((int(frame), np.zeros((0, 4)), np.zeros(0)))
        else:
            out.append((int(frame), boxes[idx], scores[idx]))
    return out


def tracks_table(rows: list[tuple], source: str) -> pd.DataFrame:
    """(seq, frame, track id, score, x1, y1, x2, y2) tuples -> a 2D track table of pedestrians."""
    if not rows:
        return empty_tracks()
    df = pd.DataFrame(rows, columns=["seq", "frame", "track_id", "score", *BOX])
    df["cls"] = "Pedestrian"
    return sort_tracks(make_tracks(df, source=source))


def require_detections(view: SplitView, name: str) -> None:
    if not len(view.detections):
        raise ValueError(f"{name} tracks public detections, and split {view.name!r} has none "
                         "(MOT17's det/det.txt, or synth-mot)")


def _to_z(box: np.ndarray) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + w / 2, box[1] + h / 2, w * h, w / max(h, 1e-6)])


def _to_box(x: np.ndarray) -> np.ndarray:
    w = np.sqrt(max(x[2] * x[3], 1e-6))
    h = max(x[2], 1e-6) / w
    return np.array([x[0] - w / 2, x[1] - h / 2, x[0] + w / 2, x[1] + h / 2])


class _SortTrack:
    """One SORT track: a constant-velocity Kalman filter on (cx, cy, area, aspect), SORT's noise settings."""

    F = np.eye(7) + np.eye(7, k=4)[:7]  # cx, cy, area += their velocities; aspect ratio constant
    H = np.eye(4, 7)
    R = np.diag([1.0, 1.0, 10.0, 10.0])
    Q = np.diag([1.0, 1.0, 1.0, 1.0, 0.01, 0.01, 1e-4])

    def __init__(self, box: np.ndarray, track_id: int) -> None:
        self.x = np.zeros(7)
        self.x[:4] = _to_z(box)
        self.P = np.diag([10.0, 10.0, 10.0, 10.0, 1e4, 1e4, 1e4])
        self.id = track_id
        self.since_update = 0
        self.hit_streak = 0

    def predict(self) -> np.ndarray:
        if self.x[6] + self.x[2] <= 0:
            self.x[6] = 0.0  # the area would turn negative
        self.x = self.F @ self.x
        self.P = self.F @ self.P @ self.F.T + self.Q
        if self.since_update > 0:
            self.hit_streak = 0
        self.since_update += 1
        return _to_box(self.x)

    def update(self, box: np.ndarray) -> None:
        y = _to_z(box) - self.H @ self.x
        s = self.H @ self.P @ self.H.T + self.R
        gain = np.linalg.solve(s, self.H @ self.P).T
        self.x = self.x + gain @ y
        self.P = (np.eye(7) - gain @ self.H) @ self.P
        self.since_update = 0
        self.hit_streak += 1


def sort_sequence(frames: list[tuple[int, np.ndarray, np.ndarray]], seq: str, *, max_age: int, min_hits: int,
                  iou_threshold: float, det_thresh: float) -> list[tuple]:
    tracks: list[_SortTrack] = []
    next_id = 0
    out: list[tuple] = []
    for count, (frame, boxes, scores) in enumerate(frames):
        keep = scores >= det_thresh
        boxes, scores = boxes[keep], scores[keep]
        predicted = np.array([t.predict() for t in tracks]).reshape(-1, 4)
        finite = np.isfinite(predicted).all(axis=1)
        tracks = [t for t, ok in zip(tracks, finite, strict=True) if ok]
        predicted = predicted[finite]
        pairs, _, new = match(iou_matrix(predicted, boxes), iou_threshold)
        score_of: dict[int, float] = {}
        for r, c in pairs:
            tracks[r].update(boxes[c])
            score_of[tracks[r].id] = float(scores[c])
        for c in new:
            tracks.append(_SortTrack(boxes[c], next_id))
            tracks[-1].hit_streak = 1
            score_of[next_id] = float(scores[c])
            next_id += 1
        for t in tracks:
            if t.since_update == 0 and (t.hit_streak >= min_hits or count < min_hits):
                out.append((seq, frame, t.id, score_of[t.id], *_to_box(t.x)))
        tracks = [t for t in tracks if t.since_update <= max_age]
    return out


class Sort(Method):
    """SORT on the split's public detections."""

    outputs = "2d-tracks"
    # It uses no label at all; declaring so keeps it in the id-free regime of the comparison with nkf-em.
    sees_identities = False

    def __init__(self, max_age: int = 20, min_hits: int = 1, iou_threshold: float = 0.05,
                 det_thresh: float = 0.2) -> None:
        super().__init__(max_age=max_age, min_hits=min_hits, iou_threshold=iou_threshold, det_thresh=det_thresh)
        if max_age < 0 or min_hits < 0:
            raise ValueError(f"max_age and min_hits must be >= 0, got {max_age}, {min_hits}")
        if not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
        self.max_age, self.min_hits = int(max_age), int(min_hits)
        self.iou_threshold, self.det_thresh = float(iou_threshold), float(det_thresh)

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        require_detections(train, "sort")

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        require_detections(split, "sort")
        rows: list[tuple] = []
        for i, (name, seq) in enumerate(sorted(split.sequences.items())):
            rows += sort_sequence(frames_of(split.detections, name, seq.frame_ids), name, max_age=self.max_age,
                                  min_hits=self.min_hits, iou_threshold=self.iou_threshold,
                                  det_thresh=self.det_thresh)
            ctx.progress(i + 1, len(split.sequences), "sort")
        return tracks_table(rows, "sort")
