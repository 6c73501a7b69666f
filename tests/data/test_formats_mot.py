"""MOTChallenge: a real MOT17 gt.txt line, distractor classes, bad input, round trips."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "formats"))
from handmade import assert_same_tracks, synth, tiny_dataset  # noqa: E402

from bench.data import DataError  # noqa: E402
from bench.data.formats import mot  # noqa: E402


def test_real_mot17_gt_line(tmp_path):
    # MOT17-02 gt.txt, first line: a static person, not considered by the evaluation, fully visible.
    path = tmp_path / "gt.txt"
    path.write_text("1,1,912,484,97,109,0,7,1\n1,2,1338,418,167,379,1,1,0.45\n2,2,1340,418,167,379,1,1,0.1\n")
    t = mot.read_gt(path, "MOT17-02-FRCNN")
    first = t.iloc[0]
    assert (first["frame"], first["track_id"], first["cls"]) == (0, 0, "static_person")
    assert first[["x1", "y1", "x2", "y2"]].tolist() == [912.0, 484.0, 1009.0, 593.0]
    assert first["score"] == 0.0  # the 'consider' flag
    assert first["visibility"] == 4 and first["occlusion"] == 0
    assert t["cls"].tolist()[1:] == ["Pedestrian", "Pedestrian"]
    assert t["visibility"].tolist()[1:] == [2, 1]  # 0.45 -> 40-60 %, 0.1 -> 0-40 %
    assert np.isnan(t["x"]).all()
    # Results files (and MOT15 gt) have 10 columns ending in world x, y, z.
    path.write_text("1,3,10,20,30,40,0.8,-1,-1,-1\n")
    row = mot.read_gt(path, "s").iloc[0]
    assert (row["cls"], row["score"], row["x2"], row["track_id"]) == ("Pedestrian", 0.8, 40.0, 2)


def test_distractor_classes_keep_their_names_and_crowd_is_dontcare(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("".join(f"1,{cid},0,0,10,10,0,{cid},1\n" for cid in range(1, 14)))
    t = mot.read_gt(path, "s")
    names = dict(zip(t["x2"] * 0 + t.index, t["cls"], strict=True))
    assert set(mot.MOT_DISTRACTOR_CLASSES) <= set(names.values())
    assert (t["cls"] == "DontCare").sum() == 1 and t.loc[t["cls"] == "DontCare", "track_id"].item() == -1


GOOD = "1,1,10,20,30,40,1,1,1"


@pytest.mark.parametrize("bad, message", [
    ("1,2,10,20,30", "5 columns, expected 6 to 10"),
    ("1,2,10,20,30,40,1,1,1,0,0", "11 columns, expected 6 to 10"),
    ("1,2,10,nan,30,40,1,1,1", "'bb_top' is 'nan', expected a finite number"),
    ("1,2,10,20,-30,40,1,1,1", "box size -30.0 x 40.0"),
    ("1,1,11,21,30,40,1,1,1", "duplicate (frame 1, id 1); first on line 1"),
    ("1,2,10,20,30,40,1,99,1", "class 99"),
    ("0,2,10,20,30,40,1,1,1", "frames are 1-based"),
])
def test_bad_gt_lines_name_file_and_line(tmp_path, bad, message):
    path = tmp_path / "gt.txt"
    path.write_text(f"{GOOD}\n{bad}\n")
    with pytest.raises(DataError) as err:
        mot.read_gt(path, "s")
    assert str(err.value).startswith(f"{path}:2: ") and message in str(err.value)


def test_round_trip_hand_made_and_results(tmp_path):
    ds = tiny_dataset()
    mot.write_dataset(ds, tmp_path / "mot")
    back = mot.read_dataset(tmp_path / "mot")
    for split in ("train", "val"):
        assert_same_tracks(getattr(ds, split).tracks, getattr(back, split).tracks, atol=2e-6)
        for name, seq in getattr(ds, split).sequences.items():
            np.testing.assert_allclose(getattr(back, split).sequences[name].cam_to_world, seq.cam_to_world)
    assert (tmp_path / "mot" / "train" / "0000" / "img1" / "000001.jpg").exists()
    results = ds.train.tracks[ds.train.tracks["cls"] != "DontCare"].assign(score=0.5, cls="Pedestrian")
    mot.write_results(tmp_path / "res", results)
    got = mot.read_results(tmp_path / "res")
    columns = ["seq", "frame", "track_id", "x1", "y1", "x2", "y2"]
    assert_same_tracks(results[columns].assign(score=1.0), got[columns].assign(score=1.0), atol=2e-6)


def test_round_trip_synthetic_with_public_detections(tmp_path):
    ds = synth("synth-mot")
    mot.write_dataset(ds, tmp_path)
    back = mot.read_dataset(tmp_path)
    for split in ("train", "val"):
        assert_same_tracks(getattr(ds, split).tracks, getattr(back, split).tracks, atol=2e-6)
        pd.testing.assert_frame_equal(back.meta["public_detections"][split], ds.meta["public_detections"][split])
    # The native det.txt files hold the same detections (frames 1-based, ids -1).
    (tmp_path / "bench.json").unlink()
    # (Without bench.json the MOT17 split rule applies, so compare all detections together.)
    native = pd.concat(mot.read_dataset(tmp_path).meta["public_detections"].values())
    expected = pd.concat(ds.meta["public_detections"].values())
    assert len(native) == len(expected)
    for column in ("score", "x1", "y2"):
        np.testing.assert_allclose(np.sort(native[column]), np.sort(expected[column]), atol=1e-5)


def test_seqinfo_and_images_are_checked(tmp_path):
    mot.write_dataset(tiny_dataset(), tmp_path)
    folder = tmp_path / "train" / "0000"
    (folder / "img1" / "000003.jpg").unlink()
    with pytest.raises(DataError, match=r"img1/000003\.jpg: image is missing \(seqinfo\.ini says seqLength=6\)"):
        mot.read_dataset(tmp_path)
    info = folder / "seqinfo.ini"
    info.write_text(info.read_text().replace("imWidth=48\n", ""))
    with pytest.raises(DataError, match=r"seqinfo\.ini: \[Sequence\] has no imwidth"):
        mot.read_dataset(tmp_path)
