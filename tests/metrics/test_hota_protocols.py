"""The 3D protocols (3d-iou, bev-center), the registry and MetricResult serialisation, on hand-made tracks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.data.tracks import make_tracks
from bench.metrics import PROTOCOLS, evaluate, get_protocol


def _track(tid: int, frames: range, x: float = 0.0, z: float = 20.0, cls: str = "Car", yaw: float = 0.0) -> list[dict]:
    return [dict(seq="s", frame=f, track_id=tid, cls=cls, x1=0.0, y1=0.0, x2=10.0, y2=10.0, x=x, y=1.6, z=z + f,
                 h=1.5, w=1.8, l=4.0, yaw=yaw) for f in frames]


GT = make_tracks(_track(1, range(10)) + _track(2, range(10), x=6.0))


@pytest.mark.parametrize("protocol", ["3d-iou", "bev-center"])
def test_perfect(protocol: str) -> None:
    s = evaluate(protocol, GT, GT).summary
    assert s["MOTA"] == s["IDF1"] == 1.0 and s["HOTA"] == pytest.approx(1.0)
    assert s["TP"] == 20 and s["FP"] == s["FN"] == s["IDSW"] == 0


def test_bev_center_gate_is_strictly_below_two_metres() -> None:
    # 1.9 m off sideways (across the 1.8 m width): a match for bev-center (d < 2, similarity 0.05), no 3D overlap.
    pred = make_tracks(_track(1, range(10), z=21.9) + _track(2, range(10), x=6.0))
    bev = evaluate("bev-center", GT, pred).summary
    iou = evaluate("3d-iou", GT, pred).summary
    assert bev["TP"] == 20 and bev["MOTP"] == pytest.approx((10 * 1.0 + 10 * 0.05) / 20)
    assert iou["TP"] == 10 and iou["FP"] == 10 and iou["FN"] == 10
    # Exactly 2 m: similarity 0, no match.
    pred2 = make_tracks(_track(1, range(10), z=22.0) + _track(2, range(10), x=6.0))
    assert evaluate("bev-center", GT, pred2).summary["TP"] == 10


def test_3d_iou_threshold_and_rotation() -> None:
    # Rotated 90 degrees in place: IoU = 1.8^2 / (2 * 7.2 - 1.8^2) = 0.29 >= 0.25, a match.
    pred = make_tracks(_track(1, range(10), yaw=np.pi / 2) + _track(2, range(10), x=6.0))
    s = evaluate("3d-iou", GT, pred).summary
    assert s["TP"] == 20
    assert s["MOTP"] == pytest.approx((10 * 1.0 + 10 * 1.8**2 / (2 * 7.2 - 1.8**2)) / 20)
    assert evaluate("3d-iou", GT, pred, threshold=0.3).summary["TP"] == 10


def test_id_switch_and_classes_are_separate() -> None:
    pred = make_tracks(_track(1, range(5)) + _track(7, range(5, 10)) + _track(2, range(10), x=6.0, cls="Pedestrian"))
    result = evaluate("3d-iou", GT, pred)
    assert result.summary["IDSW"] == 1  # track 1 continues as 7
    # Classes default to those in the GT: pedestrian predictions are not scored, and never match a car.
    assert result.summary["FN"] == 10 and result.summary["FP"] == 0
    assert set(result.extras["per_class"]) == {"Car"}
    both = evaluate("3d-iou", GT, pred, classes=("Car", "Pedestrian"))
    assert both.extras["per_class"]["Pedestrian"]["FP"] == 10


def test_prediction_without_3d_box_is_rejected() -> None:
    rows = _track(1, range(2))
    rows[1].update(x=np.nan, y=np.nan, z=np.nan, h=np.nan, w=np.nan, l=np.nan, yaw=np.nan)
    with pytest.raises(ValueError, match=r"frame=1, track_id=1\) lacks box columns x y z h w l yaw"):
        evaluate("3d-iou", GT, make_tracks(rows))


def test_registry_and_json() -> None:
    assert {"kitti-2d", "2d-iou", "3d-iou", "bev-center", "mot17", "pseudolabel"} <= set(PROTOCOLS)
    with pytest.raises(KeyError, match="Did you mean 'bev-center'"):
        get_protocol("bev_center")
    result = evaluate("bev-center", GT, GT)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["summary"]["HOTA"] == pytest.approx(1.0)
    assert {r["seq"] for r in data["per_sequence"]} == {"s"}


@pytest.mark.parametrize("protocol", ["kitti-2d", "3d-iou", "mot17"])
def test_frames_beyond_the_given_sequences_are_an_error(protocol: str) -> None:
    from types import SimpleNamespace

    sequences = {"s": SimpleNamespace(frame_ids=np.arange(5))}
    with pytest.raises(ValueError, match=r"sequence 's': frame 9 is outside its frames 0..4"):
        evaluate(protocol, GT, GT, sequences=sequences)
