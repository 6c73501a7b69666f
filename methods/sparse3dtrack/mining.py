"""Training-pair mining for 2D query matching (paper 3.2, "Tackling Label Sparsity").

Every pair is built from the budget's labels alone: template boxes and supervised target boxes are
always label rows of the same track; unlabeled frames appear only as waypoints (``via_frame``),
whose box the matcher itself predicts during training.

- ``self``: template and target are the same labelled frame (training shows them under different
  augmentations).
- ``support``: template at labelled frame a, target at another labelled frame b of the track.
- ``cycle``: a -> unlabeled neighbour u -> back to a (supervised by a's box).
- ``step``: a -> unlabeled u -> another labelled frame b (u lies between a and b, within
  ``max_gap`` of a; the box predicted at u becomes the template for b).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.data.sequence import Sequence
from bench.data.tracks import DONTCARE
from methods.sparse3dtrack.propagate import motion_scale

MINING = ("support", "self", "cycle", "step")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Pair:
    """One training sample: frames are positions in the sequence (not frame ids); boxes (x1, y1, x2, y2) px."""

    kind: str
    seq: str
    track_id: int
    template_frame: int
    template_box: Box
    target_frame: int
    target_box: Box | None
    via_frame: int | None = None


def check_strategies(strategies: Iterable[str]) -> tuple[str, ...]:
    """The strategies as a tuple in MINING order; unknown names are an error."""
    chosen = tuple(strategies) if not isinstance(strategies, str) else (strategies,)
    unknown = sorted(set(chosen) - set(MINING))
    if unknown:
        raise ValueError(f"unknown mining strategies {unknown}; choose from {MINING}")
    if not chosen:
        raise ValueError(f"no mining strategy given; choose from {MINING}")
    return tuple(s for s in MINING if s in chosen)


def label_tracks(labels: pd.DataFrame, sequences: dict[str, Sequence]) -> dict[tuple[str, int], list[tuple[int, Box]]]:
    """(seq, track_id) -> [(frame index, box), ...] in frame order, DontCare rows dropped."""
    rows = labels[(labels["cls"] != DONTCARE) & (labels["track_id"] >= 0)]
    missing = sorted(set(rows["seq"]) - set(sequences))
    if missing:
        raise ValueError(f"labels name sequences that were not given: {missing[:5]}")
    out: dict[tuple[str, int], list[tuple[int, Box]]] = {}
    for (seq, track_id), group in rows.groupby(["seq", "track_id"], sort=True):
        seq_obj = sequences[str(seq)]
        ids = seq_obj.frame_ids
        index = np.searchsorted(ids, group["frame"].to_numpy())
        index = np.clip(index, 0, len(ids) - 1)
        if not np.array_equal(ids[index], group["frame"].to_numpy()):
            bad = sorted(set(group["frame"]) - set(ids.tolist()))
            raise ValueError(f"sequence {seq}: labels name frames {bad[:5]} that the sequence does not have")
        boxes = group[["x1", "y1", "x2", "y2"]].to_numpy(dtype=np.float64)
        items = sorted((int(i), (float(b[0]), float(b[1]), float(b[2]), float(b[3])))
                       for i, b in zip(index, boxes, strict=True))
        # Two labels of one track in one frame would be a broken table; keep the first.
        seen: set[int] = set()
        out[(str(seq), int(track_id))] = [(i, b) for i, b in items if not (i in seen or seen.add(i))]
    return out


def _pick(ways: list[int], rng: np.random.Generator) -> int | None:
    """One unlabelled waypoint drawn uniformly, or None when there is none."""
    return int(ways[int(rng.integers(len(ways)))]) if len(ways) else None


def _waypoints(a: int, toward: int | None, labelled: set[int], span: tuple[int, int], num_frames: int,
               max_gap: int) -> list[int]:
    """Unlabeled frames near a: toward b (strictly between a and b) for step, else either side for cycle."""
    if toward is not None:
        step = 1 if toward > a else -1
        candidates = list(range(a + step, toward, step))[:max_gap]
    else:
        candidates = [u for u in range(a - max_gap, a + max_gap + 1) if u != a and 0 <= u < num_frames]
        # Inside the span between the first and last label the object is known to exist.
        inside = [u for u in candidates if span[0] <= u <= span[1]]
        candidates = inside or candidates
    return [u for u in candidates if u not in labelled]


def mine_pairs(labels: pd.DataFrame, sequences: dict[str, Sequence], strategies: Iterable[str],
               rng: np.random.Generator, max_gap: int = 8, reference_interval: float | None = None) -> list[Pair]:
    """Training pairs from the label table by the chosen strategies (see the module docstring).

    ``self``: one per label. ``support``: every ordered pair of distinct labels of a track (any gap).
    ``cycle``: one per label, waypoint drawn from the unlabeled frames within ``max_gap``.
    ``step``: one per ordered pair of labels with an unlabeled frame between them, waypoint drawn from
    the (up to ``max_gap``) unlabeled frames after a on the way to b. Call again (new ``rng`` state) for
    fresh waypoints. With ``reference_interval`` (s), ``max_gap`` counts frames at that interval: a sequence
    with frame interval dt uses round(max_gap * reference_interval / dt) frames (>= 1), so waypoints stay
    as close in time (and as alike) as propagation's steps need, whatever the frame rate.
    """
    if max_gap < 1:
        raise ValueError(f"max_gap must be >= 1, got {max_gap}")
    chosen = check_strategies(strategies)
    pairs: list[Pair] = []
    gaps: dict[str, int] = {}
    for (seq, track_id), items in label_tracks(labels, sequences).items():
        num_frames = sequences[seq].num_frames
        if seq not in gaps:
            gaps[seq] = max(1, round(max_gap / motion_scale(sequences[seq], reference_interval)))
        gap = gaps[seq]
        labelled = {i for i, _ in items}
        span = (items[0][0], items[-1][0])
        for a, box_a in items:
            if "self" in chosen:
                pairs.append(Pair("self", seq, track_id, a, box_a, a, box_a))
            if "cycle" in chosen:
                u = _pick(_waypoints(a, None, labelled, span, num_frames, gap), rng)
                if u is not None:
                    pairs.append(Pair("cycle", seq, track_id, a, box_a, a, box_a, via_frame=u))
            for b, box_b in items:
                if b == a:
                    continue
                if "support" in chosen:
                    pairs.append(Pair("support", seq, track_id, a, box_a, b, box_b))
                if "step" in chosen:
                    u = _pick(_waypoints(a, b, labelled, span, num_frames, gap), rng)
                    if u is not None:
                        pairs.append(Pair("step", seq, track_id, a, box_a, b, box_b, via_frame=u))
    return pairs
