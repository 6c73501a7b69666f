"""DEFT's online association: appearance affinity against each track's recent embeddings, vetoed by motion.

Per frame: the detector's peaks above ``det_thresh``; their embeddings; for each live track, the row-softmax
probability (over the detections and "unmatched") that each of its last ``memory`` embeddings picks each
detection, averaged; pairs whose detection overlaps the track's LSTM forecast by less than ``veto_iou`` are
vetoed (probability 0); Hungarian assignment on what is left above ``match_thresh``. Unmatched detections
scoring at least ``new_thresh`` start tracks; a track unseen for more than ``max_age`` frames ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from baselines.deft.matcher import AppearanceMatcher
from baselines.deft.motion import MotionLSTM, box_state, state_box
from bench.metrics.similarity import iou_2d


@dataclass
class Track:
    id: int
    embeddings: deque
    states: list[np.ndarray] = field(default_factory=list)  # (cx, cy, w, h) / scale per frame seen
    age: int = 0  # frames since last matched


class DeftTracker:
    def __init__(self, matcher: AppearanceMatcher, motion: MotionLSTM | None, scale: float, *, memory: int = 5,
                 history: int = 5, match_thresh: float = 0.1, new_thresh: float = 0.4, veto_iou: float = 0.0,
                 max_age: int = 3):
        self.matcher, self.motion, self.scale = matcher, motion, scale
        self.memory, self.history = memory, history
        self.match_thresh, self.new_thresh, self.veto_iou, self.max_age = match_thresh, new_thresh, veto_iou, max_age
        self.tracks: list[Track] = []
        self.next_id = 0

    def _forecast(self, track: Track) -> np.ndarray:
        last = track.states[-1]
        if self.motion is None or len(track.states) < 2:
            return state_box(last, self.scale)[0]
        d = np.diff(np.array(track.states[-(self.history + 1):]), axis=0)
        pad = np.zeros((self.history - len(d), 4))
        with torch.no_grad():
            step = self.motion(torch.from_numpy(np.concatenate([pad, d]))[None].float())[0].numpy()
        # A track unseen for a few frames moved a few steps.
        return state_box(last + step * (track.age + 1), self.scale)[0]

    @torch.no_grad()
    def step(self, embeddings: torch.Tensor, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Track ids for this frame's detections (-1: not reported)."""
        n = len(boxes)
        ids = np.full(n, -1, dtype=np.int64)
        prob = np.zeros((len(self.tracks), n))
        for r, track in enumerate(self.tracks):
            if not n:
                break
            rows = [torch.softmax(self.matcher.affinity(e[None], embeddings)[0], dim=0)[:n].numpy()
                    for e in track.embeddings]
            prob[r] = np.mean(rows, axis=0)
            if self.veto_iou > 0:
                prob[r, iou_2d(self._forecast(track)[None], boxes)[0] < self.veto_iou] = 0.0
        matched_det: set[int] = set()
        if len(self.tracks) and n:
            rr, cc = linear_sum_assignment(-prob)
            for r, c in zip(rr, cc, strict=True):
                if prob[r, c] > self.match_thresh:
                    track = self.tracks[r]
                    ids[c] = track.id
                    track.embeddings.append(embeddings[c])
                    track.states.append(box_state(boxes[c], self.scale)[0])
                    track.age = -1
                    matched_det.add(int(c))
        for track in self.tracks:
            track.age += 1
        self.tracks = [t for t in self.tracks if t.age <= self.max_age]
        for c in range(n):
            if c not in matched_det and scores[c] >= self.new_thresh:
                track = Track(self.next_id, deque([embeddings[c]], maxlen=self.memory),
                              [box_state(boxes[c], self.scale)[0]])
                self.tracks.append(track)
                ids[c] = track.id
                self.next_id += 1
        return ids
