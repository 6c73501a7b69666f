"""nuScenes: tables the official devkit loads, reader round trips, tracking submissions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "formats"))
from handmade import assert_same_tracks, synth, tiny_dataset  # noqa: E402

from bench.data import DataError  # noqa: E402
from bench.data.formats import nuscenes  # noqa: E402
from bench.data.geometry import box_center  # noqa: E402

REPO = Path(__file__).parents[2]
DEVKIT_PYTHON = REPO / ".venvs" / "nuscenes" / "bin" / "python"
DEVKIT_SCRIPT = REPO / "tests" / "fixtures" / "formats" / "nuscenes_devkit_boxes.py"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    ds = synth("synth-nuscenes")
    root = tmp_path_factory.mktemp("nuscenes")
    nuscenes.write_dataset(ds, root, version="v1.0-trainval")
    return ds, root, nuscenes.read_dataset(root)


def test_round_trip_synthetic(exported):
    ds, _, back = exported
    for split in ("train", "val"):
        assert_same_tracks(getattr(ds, split).tracks, getattr(back, split).tracks, atol=1e-6, yaw_atol=5e-4)
        for name, seq in getattr(ds, split).sequences.items():
            got = getattr(back, split).sequences[name]
            np.testing.assert_allclose(got.cam_to_world, seq.cam_to_world, atol=1e-9)
            np.testing.assert_allclose(got.intrinsics, seq.intrinsics)
            np.testing.assert_allclose(got.timestamps, seq.timestamps - seq.timestamps[0], atol=1e-6)
            assert len(got.meta["sample_tokens"]) == seq.num_frames


def test_round_trip_hand_made_is_exact(tmp_path):
    ds = tiny_dataset()
    nuscenes.write_dataset(ds, tmp_path, version="v1.0-mini")
    back = nuscenes.read_dataset(tmp_path)
    for split in ("train", "val"):
        assert_same_tracks(getattr(ds, split).tracks, getattr(back, split).tracks, atol=1e-9)


def test_global_boxes_follow_the_nuscenes_conventions(exported):
    ds, root, _ = exported
    anns = json.loads((root / "v1.0-trainval" / "sample_annotation.json").read_text())
    first = ds.train.tracks[ds.train.tracks["track_id"] >= 0].iloc[0]
    token = nuscenes.token("sample_annotation", first["seq"], first["frame"], first["track_id"])
    ann = next(a for a in anns if a["token"] == token)
    assert ann["size"] == pytest.approx([first["w"], first["l"], first["h"]])  # w l h
    seq = ds.train.sequences[first["seq"]]
    box = first[["x", "y", "z", "h", "w", "l", "yaw"]].to_numpy(dtype=float)
    centre = seq.cam_to_world[seq.index_of(first["frame"])] @ np.append(box_center(box)[0], 1.0)
    assert ann["translation"] == pytest.approx(centre[:3].tolist())  # the geometric centre, global frame
    assert ann["visibility_token"] == str(first["visibility"])
    extras = ds.meta["box_extras"].reset_index()
    expected = extras[(extras["seq"] == first["seq"]) & (extras["frame"] == first["frame"])
                      & (extras["track_id"] == first["track_id"])]["num_lidar_pts"].item()
    assert ann["num_lidar_pts"] == expected


@pytest.mark.skipif(not DEVKIT_PYTHON.exists(),
                    reason="needs .venvs/nuscenes with nuscenes-devkit 1.2.0 (build it: "
                           "scripts/make_nuscenes_venv.sh); the devkit needs numpy<2, so not in the main environment")
def test_nuscenes_devkit_loads_the_export_and_its_boxes_match(exported, tmp_path):
    ds, root, back = exported
    out = tmp_path / "devkit.json"
    subprocess.run([str(DEVKIT_PYTHON), str(DEVKIT_SCRIPT), str(root), "v1.0-trainval", str(out)], check=True,
                   timeout=120)
    devkit = json.loads(out.read_text())
    assert devkit["n_scenes"] == len(ds.train.sequences) + len(ds.val.sequences)
    assert devkit["n_samples"] == ds.train.num_frames + ds.val.num_frames
    ours = pd.concat([ds.train.tracks, ds.val.tracks])
    ours = ours[ours["track_id"] >= 0]
    assert len(devkit["boxes"]) == len(ours)
    by_token = {nuscenes.token("sample_annotation", r.seq, r.frame, r.track_id): r
                for r in ours.itertuples(index=False)}
    for box in devkit["boxes"]:
        row = by_token[box["token"]]
        ours_box = np.array([row.x, row.y, row.z, row.h, row.w, row.l, row.yaw])
        # get_sample_data gives boxes in the camera frame: centre = our bottom centre lifted by h/2.
        np.testing.assert_allclose(box["center"], box_center(ours_box)[0], atol=1e-6)
        np.testing.assert_allclose(box["wlh"], [row.w, row.l, row.h], atol=1e-9)
        # The box's x axis (its heading) equals KITTI's (cos yaw, 0, -sin yaw) up to the camera pitch.
        np.testing.assert_allclose(box["x_axis"], [np.cos(row.yaw), 0.0, -np.sin(row.yaw)], atol=0.03)
        assert box["visibility"] == str(row.visibility)
        assert box["category"] == nuscenes.CATEGORY_OF[row.cls]


def test_tracking_submission_round_trip(exported, tmp_path):
    _, _, back = exported
    sequences = {**back.train.sequences, **back.val.sequences}
    tracks = back.val.tracks[back.val.tracks["track_id"] >= 0].assign(score=0.7)
    path = nuscenes.write_tracking_submission(tmp_path / "sub.json", tracks, sequences)
    data = json.loads(path.read_text())
    assert set(data["meta"]) == {"use_camera", "use_lidar", "use_radar", "use_map", "use_external"}
    assert len(data["results"]) == sum(s.num_frames for s in sequences.values())  # every sample listed
    box = next(b for boxes in data["results"].values() for b in boxes)
    assert box["tracking_name"] in nuscenes.TRACKING_NAMES and isinstance(box["tracking_score"], float)
    tokens = {t for s in sequences.values() for t in s.meta["sample_tokens"]}
    boxes = nuscenes.read_tracking_submission(path, tokens)
    got = nuscenes.submission_to_tracks(boxes, sequences)
    expected = tracks.assign(cls=tracks["cls"].map(nuscenes.TRACKING_NAME_OF))
    expected = expected[expected["cls"].notna()].astype({"cls": object})
    columns = ["seq", "frame", "track_id", "cls", "score", "x", "y", "z", "h", "w", "l"]
    assert_same_tracks(expected[columns].assign(yaw=0.0), got[columns].assign(yaw=0.0), atol=1e-6)


def _submission(tmp_path, boxes_for_token):
    box = {"sample_token": "t1", "translation": [1.0, 2.0, 0.5], "size": [1.8, 4.0, 1.5], "rotation": [1, 0, 0, 0],
           "velocity": [0.0, 0.0], "tracking_id": "7", "tracking_name": "car", "tracking_score": 0.5}
    path = tmp_path / "sub.json"
    path.write_text(json.dumps({"meta": {}, "results": {"t1": boxes_for_token(box)}}))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda b: [dict(b, tracking_name="van")], "tracking_name 'van'"),
    (lambda b: [dict(b, tracking_score="high")], "tracking_score 'high', expected a finite float"),
    (lambda b: [dict(b, size=[1.0, -1.0, 1.0])], "expected w l h > 0"),
    (lambda b: [{k: v for k, v in b.items() if k != "rotation"}], "missing keys ['rotation']"),
    (lambda b: [b] * 501, "501 boxes, at most 500"),
    (lambda b: [dict(b, sample_token="t2")], "differs from its key"),
])
def test_bad_submissions_name_the_file_and_place(tmp_path, edit, message):
    path = _submission(tmp_path, edit)
    with pytest.raises(DataError) as err:
        nuscenes.read_tracking_submission(path, {"t1"})
    assert str(err.value).startswith(f"{path}: results['t1']") and message in str(err.value)
    with pytest.raises(DataError, match="unknown sample token"):
        nuscenes.read_tracking_submission(_submission(tmp_path, lambda b: [b]), {"other"})


def test_broken_tables_are_clear_errors(tmp_path):
    nuscenes.write_dataset(tiny_dataset(), tmp_path, version="v1.0-mini")
    table = tmp_path / "v1.0-mini" / "sample_annotation.json"
    anns = json.loads(table.read_text())
    anns[0]["instance_token"] = "nope"
    table.write_text(json.dumps(anns))
    with pytest.raises(DataError, match=r"sample_annotation\.json: annotation .* unknown token 'nope'"):
        nuscenes.read_dataset(tmp_path)
    (tmp_path / "v1.0-mini" / "ego_pose.json").unlink()
    with pytest.raises(DataError, match=r"ego_pose\.json: table is missing"):
        nuscenes.read_dataset(tmp_path)
