"""Pseudolabel quality: tracking metrics plus box recall/precision and median errors of matched boxes."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data.tracks import make_tracks
from bench.metrics import evaluate


def _rows(n_frames: int = 5, **change: float) -> list[dict]:
    rows = []
    for f in range(n_frames):
        for tid, x in ((1, -4.0), (2, 4.0)):
            row = dict(seq="a", frame=f, track_id=tid, cls="Car", x1=0.0, y1=0.0, x2=10.0, y2=10.0,
                       x=x, y=1.6, z=20.0 + f, h=1.5, w=1.8, l=4.0, yaw=0.3)
            if tid == 1:
                row.update({k: row[k] + v for k, v in change.items()})
            rows.append(row)
    return rows


def test_perfect_pseudolabels() -> None:
    gt = make_tracks(_rows())
    result = evaluate("pseudolabel", gt, gt)
    s = result.summary
    assert s["BoxRecall"] == s["BoxPrecision"] == 1.0
    assert s["CenterErr"] == s["SizeErr"] == s["YawErr"] == s["YawFlip"] == 0.0
    assert s["MOTA"] == 1.0 and s["HOTA"] == pytest.approx(1.0)
    assert set(result.per_sequence["metric"]) >= {"MOTA", "BoxRecall", "CenterErr"}


def test_errors_of_matched_boxes() -> None:
    gt = make_tracks(_rows())
    # Track 1 shifted 0.3 m sideways, 0.2 m longer, yaw flipped by pi: still overlaps (IoU > 0.25).
    pred = make_tracks(_rows(x=0.3, l=0.2, yaw=np.pi))
    s = evaluate("pseudolabel", gt, pred).summary
    assert s["BoxRecall"] == 1.0
    # Median over 10 matches: 5 perfect, 5 off -> the median is the mean of a 0 and an error.
    assert s["CenterErr"] == pytest.approx(0.15)
    assert s["SizeErr"] == pytest.approx(0.2 / 3 / 2)
    assert s["YawErr"] == pytest.approx(np.pi / 2)  # raw wrapped error: a flip counts as pi
    assert s["YawFlip"] == pytest.approx(0.5)


def test_missing_and_extra_pseudolabels() -> None:
    gt = make_tracks(_rows())
    pred_rows = [r for r in _rows() if r["track_id"] == 2]
    pred_rows.append(dict(pred_rows[0], track_id=9, x=30.0))  # far from everything: a false box
    s = evaluate("pseudolabel", gt, make_tracks(pred_rows)).summary
    assert s["BoxRecall"] == pytest.approx(0.5)
    assert s["BoxPrecision"] == pytest.approx(5 / 6)
    assert s["FN"] == 5 and s["FP"] == 1


def test_other_class_does_not_match() -> None:
    gt = make_tracks(_rows())
    pred = make_tracks([dict(r, cls="Pedestrian") for r in _rows()])
    assert evaluate("pseudolabel", gt, pred).summary["BoxRecall"] == 0.0
