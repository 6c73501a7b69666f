"""CenterTrack's tracker: greedy association by the predicted tracking offset, with birth and death.

Each detection is moved back to where the network thinks it was in the previous frame
(``centre + tracking``) and matched to the nearest live track of the same class, greedily by
distance. A pair is invalid when its squared pixel distance exceeds the area of either box (as in
CenterTrack). Unmatched detections above ``new_thresh`` start tracks; unmatched tracks survive
``max_age`` frames unseen (their last position is kept, so a briefly missed object can re-join).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from baselines.centertrack.decode import Detections


@dataclass
class Track:
    track_id: int
    cls: int
    centre: np.ndarray
    box: np.ndarray
    age: int = 0  # frames since last matched


@dataclass
class Tracker:
    new_thresh: float = 0.4  # a detection must score this much to start a track
    match_thresh: float = 0.3  # detections below this are ignored altogether (CenterTrack's track_thresh)
    max_age: int = 3
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 0

    def reset(self) -> None:
        self.tracks, self.next_id = [], 0

    def step(self, dets: Detections) -> np.ndarray:
        """Associate one frame's detections; returns the track id of each detection (-1: not output)."""
        ids = np.full(len(dets), -1, dtype=np.int64)
        live = dets.score >= self.match_thresh
        cand = np.flatnonzero(live)
        matched_tracks: set[int] = set()
        if len(cand) and self.tracks:
            prev = dets.centre[cand] + dets.tracking[cand]
            t_ct = np.stack([t.centre for t in self.tracks])
            dist = ((prev[:, None, :] - t_ct[None]) ** 2).sum(-1)
            det_area = np.prod(dets.boxes[cand, 2:] - dets.boxes[cand, :2], axis=1)
            trk_area = np.array([np.prod(t.box[2:] - t.box[:2]) for t in self.tracks])
            same_cls = dets.cls[cand][:, None] == np.array([t.cls for t in self.tracks])[None]
            invalid = (dist > det_area[:, None]) | (dist > trk_area[None]) | ~same_cls
            dist = np.where(invalid, np.inf, dist)
            # Greedy: repeatedly take the globally closest valid pair.
            order = np.argsort(dist, axis=None, kind="stable")
            used_d: set[int] = set()
            for flat in order:
                d, t = divmod(int(flat), len(self.tracks))
                if not np.isfinite(dist[d, t]):
                    break
                if d in used_d or t in matched_tracks:
                    continue
                used_d.add(d)
                matched_tracks.add(t)
                track = self.tracks[t]
                track.centre, track.box, track.age = dets.centre[cand[d]], dets.boxes[cand[d]], 0
                ids[cand[d]] = track.track_id
        survivors = [t for i, t in enumerate(self.tracks) if i in matched_tracks]
        for i, t in enumerate(self.tracks):
            if i not in matched_tracks:
                t.age += 1
                if t.age <= self.max_age:
                    survivors.append(t)
        for d in cand:
            if ids[d] < 0 and dets.score[d] >= self.new_thresh:
                survivors.append(Track(self.next_id, int(dets.cls[d]), dets.centre[d], dets.boxes[d]))
                ids[d] = self.next_id
                self.next_id += 1
        self.tracks = survivors
        return ids
