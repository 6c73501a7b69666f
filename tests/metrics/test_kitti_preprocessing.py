"""The KITTI preprocessing rules, one hand-made frame at a time."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data.tracks import DONTCARE, make_tracks
from bench.metrics import evaluate


def _row(frame: int, tid: int, cls: str, box: tuple[float, float, float, float], **kw: int) -> dict:
    return dict(seq="0000", frame=frame, track_id=tid, cls=cls, x1=box[0], y1=box[1], x2=box[2], y2=box[3], **kw)


CAR = (100, 100, 200, 180)


def _car_counts(gt_rows: list[dict], pred_rows: list[dict]) -> dict[str, float]:
    result = evaluate("kitti-2d", make_tracks(gt_rows), make_tracks(pred_rows))
    return {k: result.summary[k] for k in ("TP", "FP", "FN", "IDSW")}


def test_unmatched_prediction_inside_dontcare_is_not_a_false_positive() -> None:
    gt = [_row(0, 1, "Car", CAR), _row(0, -1, DONTCARE, (500, 100, 700, 200))]
    inside = _row(0, 9, "Car", (550, 120, 650, 180))  # IoA 1
    half = _row(0, 8, "Car", (400, 100, 600, 200))  # IoA exactly 0.5: TrackEval needs > 0.5
    counts = _car_counts(gt, [_row(0, 1, "Car", CAR), inside, half])
    assert counts == {"TP": 1, "FP": 1, "FN": 0, "IDSW": 0}


def test_min_height_removes_only_unmatched_boxes_of_at_most_25_px() -> None:
    gt = [_row(0, 1, "Car", (100, 100, 200, 120))]  # a 20 px car: a matched small box still counts
    preds = [_row(0, 1, "Car", (100, 100, 200, 120)), _row(0, 2, "Car", (300, 10, 400, 35)),  # 25 px: removed
             _row(0, 3, "Car", (500, 10, 600, 35.5))]  # 25.5 px: FP
    assert _car_counts(gt, preds) == {"TP": 1, "FP": 1, "FN": 0, "IDSW": 0}


@pytest.mark.parametrize("occlusion,truncation", [(3, 0), (0, 1), (0, 2)])
def test_occluded_or_truncated_gt_is_ignored_with_its_match(occlusion: int, truncation: int) -> None:
    gt = [_row(0, 1, "Car", CAR, occlusion=occlusion, truncation=truncation)]
    assert _car_counts(gt, [_row(0, 1, "Car", CAR)]) == {"TP": 0, "FP": 0, "FN": 0, "IDSW": 0}
    assert _car_counts(gt, []) == {"TP": 0, "FP": 0, "FN": 0, "IDSW": 0}


def test_van_and_person_sitting_are_distractors() -> None:
    gt = [_row(0, 1, "Van", CAR), _row(0, 2, "Person_sitting", (400, 100, 440, 190))]
    preds = [_row(0, 1, "Car", CAR), _row(0, 2, "Pedestrian", (400, 100, 440, 190))]
    result = evaluate("kitti-2d", make_tracks(gt), make_tracks(preds))
    for cls in ("car", "pedestrian"):
        assert result.extras["per_class"][cls]["FP"] == 0
        assert result.extras["per_class"][cls]["FN"] == 0
    # A Cyclist is not a distractor of either class: a car prediction on it is an FP.
    gt_cyclist = [_row(0, 3, "Cyclist", CAR)]
    assert _car_counts(gt_cyclist, [_row(0, 1, "Car", CAR)])["FP"] == 1


def test_headline_and_class_checks() -> None:
    gt = make_tracks([_row(0, 1, "Pedestrian", (400, 100, 440, 190))])
    result = evaluate("kitti-2d", gt, gt, classes=("pedestrian",), headline="pedestrian")
    assert result.summary["MOTA"] == 1.0 and result.extras["headline"] == "pedestrian"
    with pytest.raises(ValueError, match="cyclist"):
        evaluate("kitti-2d", gt, gt, classes=("car", "cyclist"))


def _sequence(rows: int) -> dict:
    from types import SimpleNamespace
    return {"0000": SimpleNamespace(image_size=(3 * rows, rows), frame_ids=np.arange(1))}


def test_scaled_pixel_rule_follows_the_image_height() -> None:
    # 25 px at KITTI's 375 rows is 8.53 px at 128 rows: a 10 px unmatched car is forgiven by kitti-2d's fixed rule
    # and counted by kitti-2d-scaled; an 8 px one is forgiven by both; a matched small car counts in both.
    gt = make_tracks([_row(0, 1, "Car", (100, 50, 130, 60))])
    preds = make_tracks([_row(0, 1, "Car", (100, 50, 130, 60)), _row(0, 2, "Car", (200, 40, 230, 50)),
                         _row(0, 3, "Car", (300, 40, 330, 48))])
    fixed = evaluate("kitti-2d", gt, preds, sequences=_sequence(128))
    scaled = evaluate("kitti-2d-scaled", gt, preds, sequences=_sequence(128))
    assert (fixed.summary["TP"], fixed.summary["FP"]) == (1, 0)
    assert (scaled.summary["TP"], scaled.summary["FP"]) == (1, 1)
    assert fixed.extras["min_height"] == 25.0 and scaled.extras["min_height"] == pytest.approx(25 * 128 / 375)
    assert scaled.protocol == "kitti-2d-scaled" and fixed.protocol == "kitti-2d"


def test_scaled_pixel_rule_is_kittis_own_at_375_rows() -> None:
    gt = [_row(0, 1, "Car", (100, 100, 200, 120))]
    preds = [_row(0, 1, "Car", (100, 100, 200, 120)), _row(0, 2, "Car", (300, 10, 400, 35)),
             _row(0, 3, "Car", (500, 10, 600, 35.5))]
    fixed = evaluate("kitti-2d", make_tracks(gt), make_tracks(preds), sequences=_sequence(375))
    scaled = evaluate("kitti-2d-scaled", make_tracks(gt), make_tracks(preds), sequences=_sequence(375))
    assert fixed.summary == scaled.summary


def test_scaled_pixel_rule_needs_the_image_size() -> None:
    gt = make_tracks([_row(0, 1, "Car", CAR)])
    with pytest.raises(ValueError, match="image sizes"):
        evaluate("kitti-2d-scaled", gt, gt)
