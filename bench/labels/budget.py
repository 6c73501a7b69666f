"""SPOT-style label budgets: at most k human labels per track, nested across budgets.

SPOT (and Sparse3DTrack after it) labels one frame near the centre of each of k equal segments
of a track: base_i = i*L/k + L/(2k), drawn uniformly among eligible frames within
+-max(1, L/(8k)), only where the object is not heavily occluded (KITTI occlusion 0/1, nuScenes
visibility 2-4). L is the track's length in frames from its first to its last appearance.

Drawn independently per k, those sets are never nested: the centres of the 2 halves (L/4, 3L/4)
are never centres of the 4 quarters (L/8, 3L/8, ...). We want nesting (the 4-label set contains
the 2-label set) so that a budget curve measures more labels and nothing else. So the sampler
builds the sets as a binary tree of segments:

* level k=2 is SPOT exactly: one label near the centre of each half;
* level 2k splits every segment of level k in two. The half that already holds a label (the
  parent's, which sits near the parent's centre, i.e. at the inner edge of that half) keeps it;
  the empty half gets a new label drawn by the SPOT rule for budget 2k around its own centre.

By construction the budget-k set is the budget-k/2 set plus new labels, and every one of the k
equal segments holds exactly one label (when it has an eligible frame), as in SPOT; the cost is
that inherited labels sit up to L/(2k) from their segment's centre instead of L/(8k). Each
(seed, seq, track_id, level) has its own random stream, so the draw for budget 4 is the same
whether you asked for 4 or 16. Budgets that are not powers of two (1, 3, 5, ...) take plain SPOT
for that k and are not nested.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from bench.data.tracks import DONTCARE, sort_tracks

K_LEVELS = (2, 4, 8, 16)


def default_visible(tracks: pd.DataFrame) -> np.ndarray:
    """Frames a labeller would use: KITTI occlusion 0/1 and, where known, nuScenes visibility 2-4.

    Real KITTI has no visibility bin (0 = unknown) and real nuScenes no occlusion level (0), so
    each dataset is judged by the column it has; the synthetic world has both and must pass both.
    """
    occlusion = tracks["occlusion"].to_numpy()
    visibility = tracks["visibility"].to_numpy()
    return (occlusion >= 0) & (occlusion <= 1) & ((visibility == 0) | (visibility >= 2))


def _rng(seed: int, seq: str, track_id: int, level: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(str(seq).encode()), int(track_id) & 0xFFFFFFFF, level])


def _draw(rng: np.random.Generator, offsets: np.ndarray, eligible: np.ndarray, lo: float, hi: float,
          base: float, half_width: float) -> int | None:
    """SPOT's draw inside segment [lo, hi): an eligible row whose frame offset lies within +-half_width of
    ``base``, the window widened until one does. Returns the row's index, or None if the segment has none."""
    inside = eligible & (offsets >= lo) & (offsets < hi)
    if not inside.any():
        return None
    width = half_width
    while True:
        candidates = np.flatnonzero(inside & (np.abs(offsets - base) <= width))
        if len(candidates):
            return int(rng.choice(candidates))
        width *= 2


def _spot(offsets: np.ndarray, eligible: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """Plain SPOT for one track and one k: one draw per segment."""
    n = offsets[-1] + 1  # track length L in frames, first to last appearance
    out = []
    for i in range(k):
        lo, hi = i * n / k, (i + 1) * n / k
        pick = _draw(rng, offsets, eligible, lo, hi, lo + n / (2 * k), max(1.0, n / (8 * k)))
        if pick is not None:
            out.append(pick)
    return out


def _nested(offsets: np.ndarray, eligible: np.ndarray, k: int, seed: int, seq: str, track_id: int) -> list[int]:
    """Rows of one track for a power-of-two k, by the binary-tree scheme."""
    n = offsets[-1] + 1
    picks = _spot(offsets, eligible, 2, _rng(seed, seq, track_id, 2))
    level = 2
    while level < k:
        level *= 2
        rng = _rng(seed, seq, track_id, level)
        for i in range(level):
            lo, hi = i * n / level, (i + 1) * n / level
            if any(lo <= offsets[p] < hi for p in picks):
                continue  # this half inherited its parent's label
            pick = _draw(rng, offsets, eligible, lo, hi, lo + n / (2 * level), max(1.0, n / (8 * level)))
            if pick is not None:
                picks.append(pick)
    return sorted(picks)


def sample_budget(tracks: pd.DataFrame, k: int, seed: int = 0,
                  visible: Callable[[pd.DataFrame], np.ndarray] | None = None) -> pd.DataFrame:
    """The budget-k label table: at most k rows per (seq, track_id), plus every DontCare row.

    ``visible(tracks) -> bool mask`` says which rows a labeller may pick (default:
    :func:`default_visible`). Deterministic per (seed, seq, track_id); nested over k = 2, 4, 8, 16, ...
    """
    if k < 1:
        raise ValueError(f"label budget k must be >= 1, got {k}")
    tracks = sort_tracks(tracks)
    dontcare = (tracks["cls"] == DONTCARE).to_numpy()
    eligible_all = (visible or default_visible)(tracks).astype(bool) & ~dontcare
    power_of_two = k >= 2 and (k & (k - 1)) == 0
    keep = np.zeros(len(tracks), dtype=bool)
    frames_all = tracks["frame"].to_numpy()
    real = tracks[~dontcare]
    for (seq, track_id), rows in real.groupby(["seq", "track_id"], sort=False).indices.items():
        index = real.index.to_numpy()[rows]  # rows are already in frame order (sorted table)
        eligible = eligible_all[index]
        # Segments are cut in frames from the first to the last appearance, so a gap in the labels
        # (an object hidden for a while) does not shift them.
        frames = frames_all[index]
        offsets = (frames - frames[0]).astype(np.float64)
        if power_of_two:
            picks = _nested(offsets, eligible, k, seed, seq, track_id)
        else:
            picks = _spot(offsets, eligible, k, _rng(seed, seq, track_id, 1000 + k))  # apart from tree levels
        keep[index[picks]] = True
    return tracks[keep | dontcare].reset_index(drop=True)


def density_reduction(gt: pd.DataFrame, labels: pd.DataFrame) -> float:
    """How many times fewer boxes a budget needs than dense labels (DontCare regions not counted)."""
    dense = int((gt["cls"] != DONTCARE).sum())
    sparse = int((labels["cls"] != DONTCARE).sum())
    return float("inf") if sparse == 0 else dense / sparse
