"""The interpolate labeler: exact on constant world motion under a turning camera, no extrapolation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tiny import make_dataset

from baselines.interpolate import Interpolate
from bench import firewall
from bench.data.geometry import boxes_to_world, wrap_angle
from bench.data.tracks import BOX3D_COLUMNS, validate_tracks
from bench.interface import RunContext


def _labels(tracks: pd.DataFrame, every: int) -> pd.DataFrame:
    first_last = tracks.groupby(["seq", "track_id"])["frame"].agg(["min", "max"]).reset_index()
    t = tracks.merge(first_last, on=["seq", "track_id"])
    keep = ((t["frame"] - t["min"]) % every == 0) | (t["frame"] == t["max"])
    return tracks[keep.to_numpy()].reset_index(drop=True)


def _pseudo(dataset, labels, **params):
    view = firewall.train_view(dataset.train, labels, dataset.frame_rate, budget=None)
    return Interpolate(**params).label(view, RunContext())


def test_exact_on_linear_world_motion_with_turning_camera():
    dataset = make_dataset()
    gt = dataset.train.tracks
    labels = _labels(gt, every=5)
    pseudo = _pseudo(dataset, labels)
    validate_tracks(pseudo, "pseudo")
    merged = gt.merge(pseudo, on=["seq", "frame", "track_id"], suffixes=("", "_p"))
    # The tiny world's headings change linearly too, so every covered GT box is reproduced.
    assert len(merged) == len(gt)
    for column in ("x", "y", "z", "h", "w", "l"):
        np.testing.assert_allclose(merged[column], merged[f"{column}_p"], atol=1e-6)
    np.testing.assert_allclose(wrap_angle(merged["yaw"] - merged["yaw_p"]), 0, atol=1e-6)
    np.testing.assert_allclose(merged[["x1", "y1", "x2", "y2"]].to_numpy(),
                               merged[["x1_p", "y1_p", "x2_p", "y2_p"]].to_numpy(), atol=1e-5)


def test_camera_frame_interpolation_would_be_wrong():
    """Guards the reason for world-frame interpolation: the camera turns, so camera-frame lerp drifts."""
    dataset = make_dataset()
    gt = dataset.train.tracks
    track = gt[(gt["seq"] == "0001") & (gt["track_id"] == 0)].sort_values("frame")
    a, b = track.iloc[0], track.iloc[-1]
    mid = track.iloc[len(track) // 2]
    t = (mid["frame"] - a["frame"]) / (b["frame"] - a["frame"])
    cam_lerp = (1 - t) * a[["x", "z"]].to_numpy(float) + t * b[["x", "z"]].to_numpy(float)
    assert np.abs(cam_lerp - mid[["x", "z"]].to_numpy(float)).max() > 0.3


def test_no_extrapolation_and_confidence_decay():
    dataset = make_dataset()
    gt = dataset.train.tracks
    track = gt[(gt["seq"] == "0001") & (gt["track_id"] == 1)].sort_values("frame")
    labels = track.iloc[[3, 11]]
    pseudo = _pseudo(dataset, labels, conf_halflife=2.0, min_conf=0.1)
    assert pseudo["frame"].min() == labels["frame"].min() and pseudo["frame"].max() == labels["frame"].max()
    conf = pseudo.set_index("frame")["conf"]
    f0 = int(labels["frame"].iloc[0])
    assert conf[f0] == 1.0
    assert conf[f0 + 2] == 0.5 and conf[f0 + 4] == 0.25
    assert conf.min() >= 0.1
    assert (pseudo["cls"] == "Car").all()


def test_heading_takes_the_short_way_round():
    dataset = make_dataset()
    seq = dataset.train.sequences["0000"]
    gt = dataset.train.tracks
    row = gt[(gt["seq"] == "0000")].iloc[[0]].copy()
    f0 = int(row["frame"].iloc[0])
    pose0 = seq.cam_to_world[seq.index_of(f0)]
    end = row.copy()
    end["frame"] = f0 + 4
    # World heading +170 deg at the start and -170 deg at the end: the midpoint must be 180, not 0.
    from bench.data.geometry import heading_to_yaw

    row["yaw"] = heading_to_yaw(np.array([np.radians(170)]), pose0)
    pose4 = seq.cam_to_world[seq.index_of(f0 + 4)]
    centre, _ = boxes_to_world(row[list(BOX3D_COLUMNS)].to_numpy(float), pose0)
    from bench.data.geometry import boxes_from_world

    end_box = boxes_from_world(centre, np.array([np.radians(-170)]), row[["h", "w", "l"]].to_numpy(float), pose4)
    end[list(BOX3D_COLUMNS)] = end_box
    labels = pd.concat([row, end], ignore_index=True)
    pseudo = _pseudo(dataset, labels).set_index("frame")
    mid = pseudo.loc[f0 + 2]
    _, heading = boxes_to_world(mid[list(BOX3D_COLUMNS)].to_numpy(float)[None], seq.cam_to_world[seq.index_of(f0 + 2)])
    assert abs(wrap_angle(heading[0] - np.pi)) < 1e-6
