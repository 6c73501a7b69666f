"""KITTI tracking: real devkit lines, bad input naming file:line, round trips (hand-made and synthetic)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "formats"))
from handmade import assert_same_tracks, synth, tiny_dataset  # noqa: E402

from bench.data import DataError  # noqa: E402
from bench.data.formats import kitti  # noqa: E402

# From the KITTI tracking devkit's readme / label_02 files.
REAL_LINES = """\
0 -1 DontCare -1 -1 -10 219.31 188.49 245.50 218.56 -1000 -1000 -1000 -10 -1 -1 -1
0 0 Van 0 0 -1.793451 296.744956 161.752147 455.226042 292.372804 2.000000 1.823255 4.433886 -4.552284 1.858523 \
13.410495 -2.115488
1 2 Person_sitting 1 2 0.1 10 20 30 60 1.2 0.6 0.8 1.0 1.6 8.0 0.3
1 3 Tram 2 1 0.1 10 20 30 60 3.5 2.5 15.0 5.0 1.6 30.0 0.3
1 4 Misc 0 3 0.1 10 20 30 60 1.0 1.0 1.0 5.0 1.6 30.0 0.3
"""


def test_real_kitti_label_lines_parse(tmp_path):
    path = tmp_path / "0000.txt"
    path.write_text(REAL_LINES)
    t = kitti.read_labels(path)
    dontcare, van = t.iloc[0], t.iloc[1]
    assert dontcare["cls"] == "DontCare" and dontcare["track_id"] == -1
    assert (dontcare["x1"], dontcare["y1"], dontcare["x2"], dontcare["y2"]) == (219.31, 188.49, 245.50, 218.56)
    assert np.isnan(dontcare[["x", "y", "z", "h", "w", "l", "yaw"]].to_numpy(dtype=float)).all()
    assert van["cls"] == "Van" and van["track_id"] == 0 and van["frame"] == 0 and van["seq"] == "0000"
    assert van[["x1", "y1", "x2", "y2"]].tolist() == [296.744956, 161.752147, 455.226042, 292.372804]
    assert van[["h", "w", "l"]].tolist() == [2.0, 1.823255, 4.433886]
    assert van[["x", "y", "z", "yaw"]].tolist() == [-4.552284, 1.858523, 13.410495, -2.115488]
    assert van["score"] == 1.0 and van["occlusion"] == 0 and van["truncation"] == 0
    # KITTI classes outside ours keep their names (the evaluation treats them as neighbours to ignore).
    assert t["cls"].tolist()[2:] == ["Person_sitting", "Tram", "Misc"]
    assert t["truncation"].tolist()[2:] == [1, 2, 0] and t["occlusion"].tolist()[2:] == [2, 1, 3]


def test_results_files_have_the_score_column(tmp_path):
    gt = kitti.read_labels(_write(tmp_path / "0000.txt", REAL_LINES))
    results = gt.assign(score=np.linspace(0.1, 0.9, len(gt)))
    kitti.write_results(tmp_path / "results", results)
    line = (tmp_path / "results" / "0000.txt").read_text().splitlines()[1]
    assert len(line.split()) == 18
    assert_same_tracks(results, kitti.read_results(tmp_path / "results"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GOOD = "0 1 Car 0 0 0.1 10 20 30 60 1.5 1.6 3.9 1.0 1.6 20.0 0.3"


@pytest.mark.parametrize("bad, message", [
    ("0 2 Car 0 0 0.1 10 20 30 60 1.5 1.6 3.9 1.0 1.6 20.0", "16 columns, expected 17"),
    ("0 2 Car 0 0 0.1 10 20 30 60 nan 1.6 3.9 1.0 1.6 20.0 0.3", "'h' is 'nan', expected a finite number"),
    ("0 2 Car 0 0 0.1 10 20 30 60 1.5 1.6 3.9 inf 1.6 20.0 0.3", "'x' is 'inf', expected a finite number"),
    ("0 2 Car 0 0 0.1 10 20 30 60 1.5 -1.6 3.9 1.0 1.6 20.0 0.3", "3D size h w l = 1.5 -1.6 3.9"),
    ("0 1 Car 0 0 0.1 10 20 30 60 1.5 1.6 3.9 1.0 1.6 20.0 0.3", "duplicate (frame 0, track_id 1); first on line 1"),
    ("0 2 Bus 0 0 0.1 10 20 30 60 1.5 1.6 3.9 1.0 1.6 20.0 0.3", "type 'Bus' is not a KITTI type"),
    ("0 2 Car 0 0 0.1 30 20 10 60 1.5 1.6 3.9 1.0 1.6 20.0 0.3", "needs x2 >= x1"),
    ("0 x Car 0 0 0.1 10 20 30 60 1.5 1.6 3.9 1.0 1.6 20.0 0.3", "'track_id' is 'x', expected an integer"),
])
def test_bad_label_lines_name_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path / "0007.txt", f"{GOOD}\n{bad}\n")
    with pytest.raises(DataError) as err:
        kitti.read_labels(path)
    assert str(err.value).startswith(f"{path}:2: ")
    assert message in str(err.value)


def test_calib_lines(tmp_path):
    numbers = " ".join(["1.0"] * 12)
    path = _write(tmp_path / "c.txt", f"P0: {numbers}\nP2: 721.5 0 609.6 44.9 0 721.5 172.9 0.2 0 0 1 0.003\n"
                                      f"R_rect {' '.join(['1'] * 9)}\nTr_velo_cam {numbers}\nTr_imu_velo {numbers}\n")
    calib = kitti.read_calib(path)
    assert calib["P2"][0, 0] == 721.5 and calib["R_rect"].shape == (3, 3)
    _write(path, "P2: 1 2 3\n")
    with pytest.raises(DataError, match=r"c\.txt:1: P2 has 3 numbers, expected 12"):
        kitti.read_calib(path)


def test_round_trip_hand_made(tmp_path):
    ds = tiny_dataset()
    kitti.write_dataset(ds, tmp_path)
    back = kitti.read_dataset(tmp_path)
    for split in ("train", "val"):
        assert_same_tracks(getattr(ds, split).tracks, getattr(back, split).tracks, atol=2e-6)
        for name, seq in getattr(ds, split).sequences.items():
            got = getattr(back, split).sequences[name]
            assert np.array_equal(seq.images, got.load_images())
            np.testing.assert_allclose(got.intrinsics, seq.intrinsics)
            # OXTS keeps rotations absolute and translations relative to the first frame (as pykitti).
            np.testing.assert_allclose(got.cam_to_world[:, :3, :3], seq.cam_to_world[:, :3, :3], atol=1e-9)
            shift = seq.cam_to_world[:, :3, 3] - got.cam_to_world[:, :3, 3]
            np.testing.assert_allclose(shift, np.repeat(shift[:1], len(shift), axis=0), atol=1e-7)
            np.testing.assert_allclose(got.timestamps, seq.timestamps)


def test_oxts_mercator_matches_the_devkit_formula():
    # One OXTS row 100 m east and 50 m north of the first, heading 30 degrees, like the devkit computes.
    poses = np.repeat(np.eye(4)[None], 2, axis=0)
    poses[1, :3, 3] = [100.0, 50.0, 2.0]
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    poses[1, :3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    oxts = kitti.imu_poses_to_oxts(poses)
    scale = np.cos(np.radians(oxts[0, 0]))
    er = 6378137.0
    east = scale * er * np.radians(oxts[1, 1] - oxts[0, 1])
    mercator = np.log(np.tan(np.radians(90 + oxts[:, 0]) / 2))
    north = scale * er * (mercator[1] - mercator[0])
    assert east == pytest.approx(100.0, abs=1e-6) and north == pytest.approx(50.0, abs=1e-6)
    assert oxts[1, 5] == pytest.approx(np.pi / 6)
    np.testing.assert_allclose(kitti.oxts_to_imu_poses(oxts), poses, atol=1e-8)


def test_round_trip_synthetic(tmp_path):
    ds = synth("synth-kitti")
    kitti.write_dataset(ds, tmp_path)
    back = kitti.read_dataset(tmp_path)
    for split in ("train", "val"):
        assert_same_tracks(getattr(ds, split).tracks, getattr(back, split).tracks, atol=2e-6)
    assert back.data_hash == ds.data_hash and back.frame_rate == ds.frame_rate
    for name, layers in ds.train.layers.items():
        for key, array in layers.items():
            np.testing.assert_array_equal(back.train.layers[name][key], array)
    pd.testing.assert_frame_equal(back.meta["box_extras"], ds.meta["box_extras"])
    # Without the sidecar the native files alone still give the same boxes (the columns KITTI has).
    (tmp_path / "bench.json").unlink()
    native = kitti.read_dataset(tmp_path)
    both = pd.concat([ds.train.tracks, ds.val.tracks])
    got = pd.concat([native.train.tracks, native.val.tracks])
    columns = ["seq", "frame", "track_id", "cls", "x1", "y1", "x2", "y2", "x", "y", "z", "h", "w", "l", "yaw",
               "occlusion", "truncation"]
    assert_same_tracks(both[columns].assign(score=1.0), got[columns].assign(score=1.0), atol=2e-6)


def test_missing_and_inconsistent_images_name_the_file(tmp_path):
    ds = tiny_dataset()
    kitti.write_dataset(ds, tmp_path)
    image_dir = tmp_path / "training" / "image_02" / "0000"
    (image_dir / "000002.png").unlink()
    with pytest.raises(DataError, match=r"0000/000002\.png: image is missing"):
        kitti.read_dataset(tmp_path)
    shutil.copy(image_dir / "000001.png", image_dir / "000002.png")
    from bench.data.formats.common import write_png

    write_png(image_dir / "000003.png", np.zeros((10, 10, 3), dtype=np.uint8))
    with pytest.raises(DataError, match=r"0000/000003\.png: image is 10x10, expected 48x32"):
        kitti.read_dataset(tmp_path)
    write_png(image_dir / "000003.png", np.zeros((32, 48, 3), dtype=np.uint8))
    for extra in sorted(image_dir.glob("*.png"))[-2:]:
        extra.unlink()
    with pytest.raises(DataError, match=r"label_02/0000\.txt: labels for frame 5, but .* images for 0\.\.3"):
        kitti.read_dataset(tmp_path)


def test_sidecar_listing_an_unknown_sequence_is_an_error(tmp_path):
    kitti.write_dataset(tiny_dataset(), tmp_path)
    text = (tmp_path / "bench.json").read_text().replace('"0002"', '"0042"')
    (tmp_path / "bench.json").write_text(text)
    with pytest.raises(DataError, match=r"bench\.json: lists sequences \['0042'\]"):
        kitti.read_dataset(tmp_path)
