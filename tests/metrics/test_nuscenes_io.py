"""nuScenes inputs: the dataroot / submission readers (vs the devkit on the stored case), bad input, and the
``nuscenes`` protocol on bench track tables."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data.formats.nuscenes_eval import load_nuscenes_eval, tracks_to_boxes
from bench.data.sequence import DataError, Sequence
from bench.data.tracks import make_tracks
from bench.metrics import evaluate
from bench.metrics.nuscenes_tracking import METRIC_NAMES, NuscBoxes, NuscenesDataError, _track_means, evaluate_boxes

CASE = Path(__file__).resolve().parents[1] / "fixtures" / "metrics" / "nuscenes" / "dataroot_case"


def test_dataroot_and_submission_readers_give_the_devkit_numbers() -> None:
    gt, pred = load_nuscenes_eval(CASE / "dataroot", CASE / "submission.json")
    assert set(gt.tracking_name) <= {"car", "pedestrian"}  # the barrier annotations are not tracking classes
    expected = json.loads((CASE / "expected.json").read_text())
    result = evaluate_boxes(gt, pred)
    for metric in METRIC_NAMES:
        theirs = expected["overall"][metric]
        if theirs is None:
            assert math.isnan(result.summary[metric])
        else:
            assert result.summary[metric] == pytest.approx(theirs, abs=1e-6), metric


def _copy_case(tmp_path: Path) -> tuple[Path, dict]:
    shutil.copytree(CASE / "dataroot", tmp_path / "dataroot")
    return tmp_path / "dataroot", json.loads((CASE / "submission.json").read_text())


def test_submission_missing_a_sample_names_the_file(tmp_path: Path) -> None:
    root, sub = _copy_case(tmp_path)
    del sub["results"][next(iter(sub["results"]))]
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(sub))
    with pytest.raises(NuscenesDataError, match="pred.json: results lack 1 of"):
        load_nuscenes_eval(root, path)


def test_submission_unknown_token_and_duplicate_track(tmp_path: Path) -> None:
    root, sub = _copy_case(tmp_path)
    path = tmp_path / "pred.json"
    bad = json.loads(json.dumps(sub))
    bad["results"]["no-such-sample"] = []
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError, match="no-such-sample"):
        load_nuscenes_eval(root, path)
    token = next(t for t, boxes in sub["results"].items() if boxes)
    sub["results"][token].append(dict(sub["results"][token][0]))
    path.write_text(json.dumps(sub))
    with pytest.raises(NuscenesDataError, match="twice"):
        load_nuscenes_eval(root, path)


def test_track_means_equal_numpy_mean_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    group = rng.permutation(np.repeat(np.arange(40), rng.integers(1, 30, size=40)))
    score = rng.random(len(group))
    ours = _track_means(score, group, 40)
    assert all(ours[g] == np.mean(list(score[group == g])) for g in range(40))


# ---------------------------------------------------------------------------------------------------------
# Track tables -> the nuscenes protocol
# ---------------------------------------------------------------------------------------------------------
def _sequence(n: int = 8) -> Sequence:
    # KITTI camera looking along world +x, y down: camera axes as columns in the world frame.
    rot = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    poses = np.repeat(np.eye(4)[None], n, axis=0)
    poses[:, :3, :3] = rot
    poses[:, :3, 3] = np.stack([np.arange(n) * 5.0 + 100.0, np.full(n, 20.0), np.full(n, 1.6)], axis=1)
    return Sequence(name="s0", images=np.zeros((n, 4, 4, 3), np.uint8), intrinsics=np.eye(3), cam_to_world=poses,
                    timestamps=np.arange(n) * 0.5, image_size=(4, 4))


def _tracks(n: int = 8, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for tid, (cls, x0, z0) in enumerate([("Car", -3.0, 15.0), ("Pedestrian", 2.0, 9.0), ("Cyclist", 4.0, 25.0),
                                         ("Van", -6.0, 30.0)]):
        for f in range(n):
            dx, dz = rng.normal(0, noise, size=2)
            rows.append({"seq": "s0", "frame": f, "track_id": tid, "cls": cls, "score": 0.8, "x1": 0.0, "y1": 0.0,
                         "x2": 1.0, "y2": 1.0, "x": x0 + dx,
                         "y": 1.6, "z": z0 + dz, "h": 1.5, "w": 1.8, "l": 4.0, "yaw": 0.0})
    return make_tracks(rows)


def test_tracks_to_boxes_places_boxes_in_the_world() -> None:
    seq = _sequence()
    boxes = tracks_to_boxes(_tracks(), {"s0": seq}, is_gt=True)
    assert isinstance(boxes, NuscBoxes) and len(boxes) == 32
    first = np.flatnonzero(boxes.sample_token == boxes.samples["sample_token"].iloc[0])
    # The car at camera (x=-3, y=1.6 bottom, z=15), h=1.5: centre (-3, 0.85, 15) -> world.
    car = first[boxes.tracking_name[first] == "car"]
    centres = boxes.translation[car]
    assert any(np.allclose(c, [115.0, 23.0, 1.6 - 0.85]) for c in centres)
    assert set(boxes.tracking_name) == {"car", "pedestrian", "bicycle"}
    assert np.allclose(boxes.ego_translation, boxes.translation - seq.cam_to_world[0, :3, 3] -
                       np.array([5.0, 0, 0]) * (boxes.timestamp[:, None] / 500_000))


def test_protocol_on_track_tables_perfect_and_switch() -> None:
    seqs = {"s0": _sequence()}
    gt = _tracks()
    pred = _tracks(noise=0.05, seed=1)
    result = evaluate("nuscenes", gt, pred, sequences=seqs)
    assert result.protocol == "nuscenes"
    assert result.summary["amota"] == pytest.approx(1.0)
    assert result.summary["ids"] == 0 and result.summary["fp"] == 0 and result.summary["fn"] == 0
    assert 0 < result.summary["motp"] < 0.2
    assert math.isnan(result.summary["amota/truck"])  # no GT of the class: NaN, as the devkit
    rows = result.per_sequence.set_index(["seq", "metric"])["value"]
    assert rows[("s0", "amota")] == pytest.approx(1.0) and rows[("s0", "tp")] == result.summary["tp"]
    # The car hypothesis changes its id halfway: one ID switch, MOTAR of the car class drops.
    switched = pred.copy()
    switched.loc[(switched["cls"] == "Car") & (switched["frame"] >= 4), "track_id"] = 99
    result = evaluate("nuscenes", gt, switched, sequences=seqs)
    assert result.extras["per_class"]["car"]["ids"] == 1
    assert result.extras["per_class"]["car"]["amota"] < 1.0
    assert evaluate("nuscenes-fixed-interp", gt, switched, sequences=seqs).protocol == "nuscenes-fixed-interp"


def test_unknown_tracking_name_is_an_error() -> None:
    samples = pd.DataFrame({"sample_token": ["a"], "scene": ["s"], "timestamp": [0]})
    gt = NuscBoxes.from_columns({"sample_token": ["a"], "translation": [[0, 0, 0]], "tracking_id": ["1"],
                                 "tracking_name": ["tram"], "num_pts": [5], "ego_translation": [[0, 0, 0]]},
                                samples=samples)
    with pytest.raises(NuscenesDataError, match="tram"):
        evaluate_boxes(gt, gt)


def test_zero_row_prediction_equals_the_devkit_empty_case() -> None:
    """The devkit cannot load a submission without any box; bench can, with the same numbers as one far box."""
    case = json.loads((CASE.parent / "empty_prediction.json").read_text())
    samples = pd.DataFrame(case["inputs"]["samples"])
    gt = NuscBoxes.from_columns(case["inputs"]["gt"], samples=samples)
    empty = NuscBoxes.from_columns({k: [] for k in ("sample_token", "translation", "tracking_id", "tracking_name",
                                                    "tracking_score", "ego_translation")}, samples=samples)
    result = evaluate_boxes(gt, empty)
    for metric, theirs in case["expected"]["overall"].items():
        assert result.summary[metric] == pytest.approx(theirs, abs=1e-6), metric
    assert math.isnan(evaluate_boxes(empty, gt).summary["amota"])  # no GT at all: every class NaN
