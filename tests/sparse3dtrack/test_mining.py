"""Sample mining: each strategy yields exactly the pairs it should, from the budget's labels only."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from bench.data.sequence import Sequence
from bench.data.tracks import DONTCARE, make_tracks
from methods.sparse3dtrack.mining import MINING, mine_pairs

FIRST_ID = 100  # frame ids differ from positions: pairs must carry positions


@cache  # mining never modifies its inputs
def _world() -> tuple[pd.DataFrame, dict[str, Sequence]]:
    """One 20-frame sequence; track 1 labelled at positions 2, 6, 10, track 2 at 15 only, a DontCare at 3."""
    t = 20
    seq = Sequence(name="s", images=np.zeros((t, 16, 16, 3), np.uint8), intrinsics=np.eye(3),
                   cam_to_world=np.repeat(np.eye(4)[None], t, 0), timestamps=np.arange(t) * 0.1, image_size=(16, 16),
                   frame_ids=np.arange(FIRST_ID, FIRST_ID + t))
    rows = [(1, 2), (1, 6), (1, 10), (2, 15)]
    labels = make_tracks(dict(
        seq=["s"] * 5, frame=[FIRST_ID + f for _, f in rows] + [FIRST_ID + 3], track_id=[i for i, _ in rows] + [-1],
        cls=["Car"] * 4 + [DONTCARE],
        x1=[float(f) for _, f in rows] + [0.0], y1=[1.0] * 5, x2=[f + 5.0 for _, f in rows] + [4.0], y2=[6.0] * 5))
    return labels, {"s": seq}


def _box(frame: int) -> tuple[float, float, float, float]:
    return (float(frame), 1.0, frame + 5.0, 6.0)


LABELLED = {1: {2, 6, 10}, 2: {15}}


def _mine(strategies, seed=0, max_gap=3):
    labels, seqs = _world()
    return mine_pairs(labels, seqs, strategies, np.random.default_rng(seed), max_gap=max_gap)


def test_self_pairs_one_per_label():
    got = {(p.track_id, p.template_frame, p.target_frame, p.template_box, p.target_box, p.via_frame)
           for p in _mine(["self"])}
    assert got == {(1, f, f, _box(f), _box(f), None) for f in (2, 6, 10)} | {(2, 15, 15, _box(15), _box(15), None)}


def test_support_pairs_every_ordered_pair_of_a_tracks_labels():
    pairs = _mine(["support"])
    got = {(p.track_id, p.template_frame, p.target_frame) for p in pairs}
    assert got == {(1, a, b) for a in (2, 6, 10) for b in (2, 6, 10) if a != b}  # any gap; track 2 has one label
    assert len(pairs) == 6
    assert all(p.template_box == _box(p.template_frame) and p.target_box == _box(p.target_frame) for p in pairs)


def test_cycle_waypoints_are_unlabeled_neighbours_and_return_to_the_label():
    expected = {(1, 2): {3, 4, 5}, (1, 6): {3, 4, 5, 7, 8, 9}, (1, 10): {7, 8, 9},  # inside the labelled span
                (2, 15): {12, 13, 14, 16, 17, 18}}  # one label: either side within max_gap
    seen: dict[tuple[int, int], set[int]] = {k: set() for k in expected}
    for seed in range(60):
        pairs = _mine(["cycle"], seed=seed)
        assert len(pairs) == 4  # one per label
        for p in pairs:
            assert p.kind == "cycle" and p.target_frame == p.template_frame and p.target_box == p.template_box
            seen[(p.track_id, p.template_frame)].add(p.via_frame)
    assert seen == expected


def test_step_waypoints_lie_between_two_labels():
    seen: dict[tuple[int, int, int], set[int]] = {}
    for seed in range(60):
        for p in _mine(["step"], seed=seed):
            assert p.target_box == _box(p.target_frame) and p.template_box == _box(p.template_frame)
            seen.setdefault((p.track_id, p.template_frame, p.target_frame), set()).add(p.via_frame)
    assert seen == {(1, 2, 6): {3, 4, 5}, (1, 2, 10): {3, 4, 5}, (1, 6, 2): {3, 4, 5}, (1, 6, 10): {7, 8, 9},
                    (1, 10, 6): {7, 8, 9}, (1, 10, 2): {7, 8, 9}}  # at most max_gap=3 steps from the template


def test_pairs_use_only_label_frames_and_boxes():
    for seed in range(5):
        for p in _mine(MINING, seed=seed, max_gap=8):
            labelled = LABELLED[p.track_id]
            assert p.template_frame in labelled and p.target_frame in labelled
            assert p.template_box == _box(p.template_frame) and p.target_box == _box(p.target_frame)
            assert p.via_frame is None or (p.via_frame not in labelled and 0 <= p.via_frame < 20)
            assert p.track_id != -1  # DontCare rows never become queries


def test_strategy_switch_and_errors():
    kinds = {p.kind for p in _mine(["support", "self"])}
    assert kinds == {"support", "self"}
    assert {p.kind for p in _mine(MINING)} == set(MINING)
    with pytest.raises(ValueError, match="unknown mining"):
        _mine(["support", "flip"])
    labels, seqs = _world()
    with pytest.raises(ValueError, match="not given"):
        mine_pairs(labels.assign(seq="other"), seqs, MINING, np.random.default_rng(0))
    with pytest.raises(ValueError, match="does not have"):
        mine_pairs(labels.assign(frame=labels["frame"] + 50), seqs, MINING, np.random.default_rng(0))
