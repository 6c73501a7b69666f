"""Waymo v2 parquet components (FRONT camera): column names, round trip, bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "formats"))
from handmade import assert_same_tracks, synth, tiny_dataset  # noqa: E402

from bench.data import DataError  # noqa: E402
from bench.data.formats import waymo  # noqa: E402


def test_round_trip_synthetic_and_v2_column_names(tmp_path):
    ds = synth("synth-waymo")
    waymo.write_dataset(ds, tmp_path)
    for component in waymo.COMPONENTS:
        assert (tmp_path / "training" / component / "0000.parquet").exists()
    names = pq.read_schema(tmp_path / "training" / "lidar_box" / "0000.parquet").names
    assert {"key.segment_context_name", "key.frame_timestamp_micros", "key.laser_object_id",
            "[LiDARBoxComponent].box.center.x", "[LiDARBoxComponent].box.heading"} <= set(names)
    assert "[CameraImageComponent].image" in pq.read_schema(tmp_path / "training" / "camera_image" /
                                                            "0000.parquet").names
    back = waymo.read_dataset(tmp_path)
    for split in ("train", "val"):
        assert_same_tracks(getattr(ds, split).tracks, getattr(back, split).tracks, atol=1e-6, yaw_atol=5e-4)
        for name, seq in getattr(ds, split).sequences.items():
            np.testing.assert_allclose(getattr(back, split).sequences[name].cam_to_world, seq.cam_to_world, atol=1e-9)


def test_hand_made_round_trip_is_exact_and_native_read_projects_2d(tmp_path):
    ds = tiny_dataset()
    waymo.write_dataset(ds, tmp_path)
    back = waymo.read_dataset(tmp_path)
    assert_same_tracks(ds.train.tracks, back.train.tracks, atol=1e-9)
    (tmp_path / "bench.json").unlink()
    native = waymo.read_dataset(tmp_path)
    real = ds.train.tracks[ds.train.tracks["track_id"] >= 0]
    columns = ["seq", "frame", "track_id", "x", "y", "z", "h", "w", "l", "yaw", "x1", "y1", "x2", "y2"]
    # The hand-made 2D boxes are projections too, so the native reader's projected boxes agree.
    assert_same_tracks(real[columns].assign(cls="x"), native.train.tracks[columns].assign(cls="x"), atol=1e-6)


def test_native_read_takes_2d_boxes_from_camera_box(tmp_path):
    ds = synth("synth-waymo")
    waymo.write_dataset(ds, tmp_path)
    (tmp_path / "bench.json").unlink()
    native = waymo.read_dataset(tmp_path)
    want = ds.train.tracks[ds.train.tracks["track_id"] >= 0].set_index(["seq", "frame", "track_id"])
    got = native.train.tracks.set_index(["seq", "frame", "track_id"])
    common = got.index.intersection(want.index)
    assert len(common) > 0.9 * len(want)  # all but boxes that fail the in-view check without the sidecar
    np.testing.assert_allclose(got.loc[common, ["x1", "y1", "x2", "y2"]], want.loc[common, ["x1", "y1", "x2", "y2"]],
                               atol=1e-6)


def test_bad_components_are_clear_errors(tmp_path):
    waymo.write_dataset(tiny_dataset(), tmp_path)
    box_path = tmp_path / "training" / "lidar_box" / "0000.parquet"
    table = pq.read_table(box_path).to_pandas()
    table.loc[2, "[LiDARBoxComponent].box.size.y"] = -1.0
    table.to_parquet(box_path, index=False)
    with pytest.raises(DataError, match=r"lidar_box/0000\.parquet: row 2 .* expected finite numbers and positive"):
        waymo.read_dataset(tmp_path)
    (tmp_path / "training" / "vehicle_pose" / "0000.parquet").unlink()
    with pytest.raises(DataError, match=r"vehicle_pose/0000\.parquet: component file is missing"):
        waymo.read_dataset(tmp_path)
