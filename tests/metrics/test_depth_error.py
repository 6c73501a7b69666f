"""The depth-error protocol: 2D-matched depth errors by range, on hand-made frames."""

from __future__ import annotations

import math

import pytest

from bench.data.tracks import DONTCARE, make_tracks
from bench.metrics import evaluate


def _car(frame: int, tid: int, x1: float, z: float, cls: str = "Car", seq: str = "a") -> dict:
    if math.isnan(z):  # a DontCare region: a 2D box only
        return dict(seq=seq, frame=frame, track_id=tid, cls=cls, x1=x1, y1=50.0, x2=x1 + 40.0, y2=80.0)
    return dict(seq=seq, frame=frame, track_id=tid, cls=cls, x1=x1, y1=50.0, x2=x1 + 40.0, y2=80.0, x=0.0, y=1.0,
                z=z, h=1.5, w=1.6, l=3.9, yaw=0.0)


def test_depth_errors_by_range_over_2d_matches():
    gt = make_tracks([_car(0, 1, 0, 10.0), _car(0, 2, 100, 30.0), _car(0, 3, 200, 50.0), _car(1, 1, 0, 12.0, seq="b"),
                      _car(0, -1, 300, math.nan, cls=DONTCARE)])
    pred = make_tracks([
        _car(0, 7, 2, 11.0),  # IoU 0.9 with the 10 m car: dz +1
        _car(0, 8, 101, 28.0),  # dz -2
        _car(0, 9, 200, 53.0),  # dz +3, 6 % of 50 m
        _car(0, 5, 330, 40.0),  # inside the DontCare box: not a match
        _car(1, 4, 25, 40.0, seq="b"),  # IoU 0.23 with its car: not a match
        _car(0, 6, 100, 99.0, cls="Pedestrian"),  # another class: never matched to a car
    ])
    result = evaluate("depth-error", gt, pred)
    s = result.summary
    assert s["DepthMatches"] == 3
    assert s["DepthErr0to20"] == pytest.approx(1.0)
    assert s["DepthErr20to40"] == pytest.approx(2.0)
    assert s["DepthErr40up"] == pytest.approx(3.0)
    assert s["DepthRelErr40up"] == pytest.approx(0.06)
    assert s["DepthErr"] == pytest.approx(2.0) and s["DepthBias"] == pytest.approx(1.0)
    per_seq = result.per_sequence.set_index(["seq", "metric"])["value"]
    assert per_seq[("a", "DepthMatches")] == 3 and per_seq[("b", "DepthMatches")] == 0
    assert math.isnan(per_seq[("b", "DepthErr")])


def test_one_to_one_matching_takes_the_best_iou():
    gt = make_tracks([_car(0, 1, 0, 20.0)])
    pred = make_tracks([_car(0, 1, 10, 25.0), _car(0, 2, 1, 21.0)])  # IoU 0.6 and 0.95: the second one counts
    s = evaluate("depth-error", gt, pred).summary
    assert s["DepthMatches"] == 1 and s["DepthErr"] == pytest.approx(1.0)


def test_no_prediction_gives_nan_errors_not_zero():
    gt = make_tracks([_car(0, 1, 0, 20.0)])
    s = evaluate("depth-error", gt, gt.iloc[:0]).summary
    assert s["DepthMatches"] == 0 and all(math.isnan(s[k]) for k in s if k != "DepthMatches")


def test_pooled_medians_are_over_all_pairs_not_a_mean_of_sequences():
    from bench.metrics.depth_error import DepthErrorMetric

    gt = make_tracks([_car(0, 1, 0, 10.0), _car(0, 2, 100, 12.0), _car(0, 3, 200, 14.0), _car(0, 1, 0, 16.0, seq="b")])
    pred = make_tracks([_car(0, 1, 0, 11.0), _car(0, 2, 100, 13.0), _car(0, 3, 200, 15.0),
                        _car(0, 1, 0, 26.0, seq="b")])
    metric = DepthErrorMetric()
    parts = {s: metric.eval_sequence(gt[gt["seq"] == s], pred[pred["seq"] == s]) for s in ("a", "b")}
    pooled = metric.summary(metric.combine_sequences(parts))
    assert pooled["DepthErr"] == pytest.approx(1.0)  # median of 1, 1, 1, 10; a mean of medians would say 5.5
    assert evaluate("depth-error", gt, pred).summary == pytest.approx(pooled, nan_ok=True)
