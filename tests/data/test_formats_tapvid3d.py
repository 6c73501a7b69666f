"""TAPVid-3D npz: ground truth and prediction files, round trips and bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "formats"))
from handmade import assert_same_tracks, synth, tiny_dataset  # noqa: E402

from bench.data import DataError  # noqa: E402
from bench.data.formats import tapvid3d  # noqa: E402


def test_round_trip_synthetic_dense(tmp_path):
    ds = synth("synth-dense")
    tapvid3d.write_dataset(ds, tmp_path)
    with np.load(tmp_path / "train" / "0000.npz", allow_pickle=True) as z:
        assert set(tapvid3d.GT_KEYS) <= set(z.files)
        assert z["tracks_XYZ"].shape[2] == 3 and z["visibility"].shape == z["tracks_XYZ"].shape[:2]
    back = tapvid3d.read_dataset(tmp_path)
    for split in ("train", "val"):
        want, got = getattr(ds, split), getattr(back, split)
        assert_same_tracks(want.tracks, got.tracks)
        for name, points in want.points.items():
            np.testing.assert_array_equal(got.points[name].xyz, points.xyz.astype(np.float32))
            np.testing.assert_array_equal(got.points[name].visible, points.visible)
            np.testing.assert_allclose(got.points[name].queries, points.queries, atol=1e-4)
            seq = want.sequences[name]
            np.testing.assert_allclose(got.sequences[name].cam_to_world, seq.cam_to_world, atol=1e-9)
            np.testing.assert_allclose(got.sequences[name].intrinsics, seq.intrinsics, atol=1e-4)
            # JPEG, as TAPVid-3D stores frames: close, not equal.
            assert np.abs(got.sequences[name].images.astype(int) - seq.images).mean() < 6


def test_predictions_round_trip_and_shape_check(tmp_path):
    xyz, vis = np.random.default_rng(0).normal(size=(5, 7, 3)), np.ones((5, 7), dtype=bool)
    path = tapvid3d.write_predictions(tmp_path / "p.npz", xyz, vis)
    got_xyz, got_vis = tapvid3d.read_predictions(path, (5, 7))
    np.testing.assert_allclose(got_xyz, xyz, atol=1e-6)
    assert got_vis.all()
    with pytest.raises(DataError, match=r"p\.npz: tracks_XYZ \(5, 7, 3\) / visibility \(5, 7\), expected \(5, 8, 3\)"):
        tapvid3d.read_predictions(path, (5, 8))
    np.savez(tmp_path / "q.npz", tracks_xyz=xyz, visible=vis)  # the README's names, not the code's
    with pytest.raises(DataError, match=r"q\.npz: missing keys \['tracks_XYZ', 'visibility'\]"):
        tapvid3d.read_predictions(tmp_path / "q.npz")


def test_bad_ground_truth_files(tmp_path):
    ds = tiny_dataset(with_points=True)
    seq, points = ds.train.sequences["0000"], ds.train.points["0000"]
    path = tmp_path / "v.npz"
    tapvid3d.write_video(path, seq, points)
    got_seq, got_points = tapvid3d.read_video(path)
    np.testing.assert_allclose(got_points.xyz, points.xyz, atol=1e-5)
    with np.load(path, allow_pickle=True) as z:
        data = dict(z)
    np.savez(path, **{**data, "visibility": data["visibility"][:, :3]})
    with pytest.raises(DataError, match=r"v\.npz: visibility has shape \(6, 3\), expected \(6, 5\)"):
        tapvid3d.read_video(path)
    bad = data["tracks_XYZ"].copy()
    bad[data["visibility"]] = np.nan
    np.savez(path, **{**data, "tracks_XYZ": bad})
    with pytest.raises(DataError, match="non-finite values at visible points"):
        tapvid3d.read_video(path)
    np.savez(path, **{k: v for k, v in data.items() if k != "fx_fy_cx_cy"})
    with pytest.raises(DataError, match=r"missing keys \['fx_fy_cx_cy'\]"):
        tapvid3d.read_video(path)
