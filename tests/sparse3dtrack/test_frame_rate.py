"""Frame-rate scaling of propagation and mining: 10 Hz video behaves exactly as before, 2 Hz video gets
a wider search window, a shorter extrapolation cap (in frames) and closer waypoints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from methods.sparse3dtrack.config import VARIANTS
from methods.sparse3dtrack.mining import mine_pairs
from methods.sparse3dtrack.propagate import frame_interval, motion_scale, propagate

# Accept every match and never leave the image: which frames a run visits depends only on the span rules.
ACCEPT_ALL = {"conf_drop": 0.0, "conf_update": 0.0, "min_size": 0.0, "min_visible": 0.0, "dedupe_iou": 1.0}


def _slowed(sequences: dict, factor: float) -> dict:
    """The same videos with timestamps stretched ``factor`` times (10 Hz -> 10 / factor Hz)."""
    return {n: dataclasses.replace(s, timestamps=s.timestamps * factor) for n, s in sequences.items()}


@pytest.fixture(scope="module")
def trained(smoke):
    from bench.labels import sample_budget
    from methods.sparse3dtrack.config import module_profile
    from methods.sparse3dtrack.matching import train_matcher
    from methods.sparse3dtrack.propagate import encode_sequence

    labels = sample_budget(smoke.train.tracks, 4, seed=0)
    labels = labels[labels["cls"] != "DontCare"].reset_index(drop=True)
    matcher, _ = train_matcher(smoke.train.sequences, labels, module_profile("matcher", "smoke"), seed=0)
    features = {n: encode_sequence(matcher, s) for n, s in smoke.train.sequences.items()}
    return smoke, labels, matcher, features


def test_motion_scale_from_timestamps(smoke):
    seq = next(iter(smoke.train.sequences.values()))
    assert frame_interval(seq) == pytest.approx(0.1)
    assert motion_scale(seq, 0.1) == 1.0  # exactly: the tuned settings stay bit-identical at 10 Hz
    assert motion_scale(_slowed({"a": seq}, 5.0)["a"], 0.1) == 5.0
    assert motion_scale(seq, None) == 1.0
    one = dataclasses.replace(seq, timestamps=seq.timestamps[:1], images=seq.images[:1], intrinsics=seq.intrinsics[:1],
                              cam_to_world=seq.cam_to_world[:1], frame_ids=seq.frame_ids[:1])
    assert np.isnan(frame_interval(one)) and motion_scale(one, 0.1) == 1.0


def test_ten_hz_propagation_is_unchanged_by_the_scaling(trained):
    dataset, labels, matcher, features = trained
    for cfg in ({}, ACCEPT_ALL):
        scaled = propagate(matcher, dataset.train.sequences, labels, cfg, features=features)
        plain = propagate(matcher, dataset.train.sequences, labels,
                          {**cfg, "reference_interval": None, "span_interval": None}, features=features)
        pd.testing.assert_frame_equal(scaled, plain)


def test_two_hz_extrapolates_the_same_time_in_fewer_frames(trained):
    """max_extrapolate 8 frames at 10 Hz is 0.8 s: round(8 * 0.1 / 0.5) = 2 frames at 2 Hz."""
    dataset, labels, matcher, features = trained
    sequences = _slowed(dataset.train.sequences, 5.0)
    out = propagate(matcher, sequences, labels, {**ACCEPT_ALL, "max_extrapolate": 8}, features=features)
    for (seq, track_id), rows in labels.groupby(["seq", "track_id"]):
        index_of = sequences[seq].index_of
        labelled = sorted(index_of(int(f)) for f in rows["frame"])
        got = {index_of(int(f)) for f in out[(out["seq"] == seq) & (out["track_id"] == track_id)]["frame"]}
        expected = set(range(max(0, labelled[0] - 2), labelled[-1] + 3)) & set(range(sequences[seq].num_frames))
        assert got == expected


def test_two_hz_fills_spans_between_labels_by_interpolation(trained):
    dataset, labels, matcher, features = trained
    sequences = _slowed(dataset.train.sequences, 5.0)
    # Interpolation between labels belongs to the motion variant (the paper's path matches every frame).
    motion = VARIANTS["motion"]["propagate"]
    out = propagate(matcher, sequences, labels, {**motion, "span_conf": 0.4}, features=features)
    keys = ["seq", "frame", "track_id"]
    checked = 0
    for (seq, track_id), rows in labels.groupby(["seq", "track_id"]):
        rows = rows.sort_values("frame")
        frames, boxes = rows["frame"].to_numpy(), rows[["x1", "y1", "x2", "y2"]].to_numpy(float)
        got = out[(out["seq"] == seq) & (out["track_id"] == track_id)].set_index("frame")
        for (fa, ba), (fb, bb) in zip(zip(frames, boxes, strict=True), zip(frames[1:], boxes[1:], strict=True),
                                      strict=False):
            for f in range(fa + 1, fb):  # smoke frame ids are 0..T-1, so ids are indices
                if f not in got.index:
                    continue  # dropped as a duplicate of another track's box
                np.testing.assert_allclose(got.loc[f, ["x1", "y1", "x2", "y2"]].to_numpy(float),
                                           ba + (bb - ba) * (f - fa) / (fb - fa), atol=1e-9)
                assert got.loc[f, "conf"] == 0.4
                checked += 1
    assert checked > 0 and not out.duplicated(keys).any()
    with pytest.raises(ValueError, match="span_conf"):
        propagate(matcher, sequences, labels, {"span_conf": 0.0}, features=features)


def test_the_search_window_grows_with_the_frame_interval(trained):
    _, _, matcher, _ = trained
    prior = torch.tensor([[100.0, 40.0, 120.0, 60.0]])
    default = matcher.window_mask(prior, 16, 52)
    assert torch.equal(matcher.window_mask(prior, 16, 52, torch.tensor([matcher.window_margin])), default)
    wide = matcher.window_mask(prior, 16, 52, 5 * matcher.window_margin)
    assert bool((wide | ~default).all()) and wide.sum() > default.sum()  # a strict superset
    # The cosine window is flatter: a cell 40 px right of the prior's centre is penalised less.
    cell = (0, 0, 6, (110 + 40) // 8)
    assert matcher.window_weights(prior, 16, 52, 5 * matcher.window_margin)[cell] > \
        matcher.window_weights(prior, 16, 52)[cell]


def test_mining_waypoints_keep_their_time_gap(smoke):
    labels = smoke.train.tracks
    labels = labels[labels["cls"] != "DontCare"]
    from bench.labels import sample_budget

    labels = sample_budget(labels, 4, seed=0)
    seqs = smoke.train.sequences
    ten = mine_pairs(labels, seqs, ["cycle", "step"], np.random.default_rng(3), 8, 0.1)
    assert ten == mine_pairs(labels, seqs, ["cycle", "step"], np.random.default_rng(3), 8, None)
    two = mine_pairs(labels, _slowed(seqs, 5.0), ["cycle", "step"], np.random.default_rng(3), 8, 0.1)
    assert two and all(abs(p.via_frame - p.template_frame) <= 2 for p in two)
    assert max(abs(p.via_frame - p.template_frame) for p in ten) > 2  # at 10 Hz they reach farther
