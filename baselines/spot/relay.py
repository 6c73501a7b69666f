"""SPOT's sampler state: relay frames per track, and how unlabelled frames are drawn from it.

Each track keeps its *relay frames*: frames with a box and a confidence, first its labelled key frames
(confidence 1), then the frames whose teacher pseudo label passed the IoU filter. An unlabelled frame for a
training pair is drawn in one of two modes (SPOT ``sampler.py:_sample_unlabeled_frames``):

- *propagating*, with probability ``1 - |relay| / L`` (``L`` the video's length: the share of the video not
  reached yet): a frame not explored yet within ``propagating_step`` frames of a relay frame;
- *reviewing* otherwise: a frame already explored (a relay frame that is not a key frame), so the teacher
  looks at it again and a better pseudo label can replace the old one.

The search region of that frame comes from a coarse box: the linear interpolation of the two nearest relay
boxes around it (the nearest one when it lies outside them). Accepted pseudo labels wait in ``pending`` and
join the relay set when :meth:`TrackRelay.commit` is called (SPOT: after each epoch), replacing an entry only
with a higher confidence.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrackRelay:
    """The relay state of one labelled track (``frames`` are indices 0..length-1 into its video)."""

    seq: str
    track_id: int
    cls: str
    length: int
    keys: dict[int, np.ndarray]
    relay: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)
    pending: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError(f"track {self.seq}/{self.track_id} has no labelled frame")
        for frame, box in self.keys.items():
            self.relay.setdefault(frame, (np.asarray(box, dtype=float), 1.0))

    # ---- sampling ---------------------------------------------------------------------------------------
    def p_propagate(self) -> float:
        """SPOT's probability of the propagating mode: the share of the video without a relay frame."""
        return max(0.0, 1.0 - len(self.relay) / self.length)

    def frontier(self, step: int = 1) -> list[int]:
        """Frames not explored yet within ``step`` of a relay frame, in order."""
        out = set()
        for frame in self.relay:
            for d in range(1, step + 1):
                for f in (frame - d, frame + d):
                    if 0 <= f < self.length and f not in self.relay:
                        out.add(f)
        return sorted(out)

    def explored(self) -> list[int]:
        """Relay frames that came from pseudo labels (the reviewing mode's candidates), in order."""
        return sorted(f for f in self.relay if f not in self.keys)

    def sample(self, rng: np.random.Generator, step: int = 1) -> tuple[int, str] | None:
        """An unlabelled frame and the mode that chose it ("propagate" or "review"); None if there is none.

        A mode without candidates falls back to the other (early on nothing is explored, so reviewing
        propagates; once the whole video is relayed there is nothing left to propagate into)."""
        propagate = rng.random() < self.p_propagate()
        frontier, explored = self.frontier(step), self.explored()
        first, second = (frontier, explored) if propagate else (explored, frontier)
        modes = ("propagate", "review") if propagate else ("review", "propagate")
        for candidates, mode in ((first, modes[0]), (second, modes[1])):
            if candidates:
                return int(candidates[rng.integers(len(candidates))]), mode
        return None

    # ---- boxes around a frame -------------------------------------------------------------------------------
    def coarse_box(self, frame: int) -> np.ndarray:
        """The linear interpolation of the nearest relay boxes before and after ``frame`` (or the nearest one)."""
        frames = sorted(f for f in self.relay if f != frame)
        i = bisect.bisect_left(frames, frame)
        before = frames[i - 1] if i > 0 else None
        after = frames[i] if i < len(frames) else None
        if before is None or after is None:
            nearest = after if before is None else before
            assert nearest is not None  # the key frames are never removed, so the relay set is never empty
            return self.relay[nearest][0].copy()
        t = (frame - before) / (after - before)
        return (1 - t) * self.relay[before][0] + t * self.relay[after][0]

    def nearest_key(self, frame: int) -> int:
        """The labelled key frame nearest to ``frame`` (the teacher's template; earlier one on a tie)."""
        return min(self.keys, key=lambda f: (abs(f - frame), f))

    def nearest_relay(self, frame: int) -> int:
        """The relay frame nearest to ``frame`` other than itself (the student's template)."""
        others = [f for f in self.relay if f != frame] or list(self.relay)
        return min(others, key=lambda f: (abs(f - frame), f))

    # ---- pseudo labels --------------------------------------------------------------------------------------
    def propose(self, frame: int, box: np.ndarray, confidence: float, threshold: float) -> bool:
        """SPOT's IoU filter: keep a teacher pseudo label when its predicted IoU reaches ``threshold``."""
        if frame in self.keys or confidence < threshold:
            return False
        held = self.pending.get(frame)
        if held is None or confidence > held[1]:
            self.pending[frame] = (np.asarray(box, dtype=float), float(confidence))
        return True

    def commit(self) -> int:
        """Move accepted pseudo labels into the relay set (a higher confidence replaces); how many changed."""
        changed = 0
        for frame, (box, conf) in sorted(self.pending.items()):
            held = self.relay.get(frame)
            if held is None or conf > held[1]:
                self.relay[frame] = (box, conf)
                changed += 1
        self.pending.clear()
        return changed
