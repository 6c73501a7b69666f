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
    assert s["BoxRecall"] == s["BoxPrecision"] == s["LabelCopies"] == 1.0
    # Every box is a copy of its GT box: there is no estimated box to take an error of ("-", not 0).
    assert all(np.isnan(s[k]) for k in ("CenterErr", "SizeErr", "YawErr", "YawFlip"))
    assert s["MOTA"] == 1.0 and s["HOTA"] == pytest.approx(1.0)
    assert set(result.per_sequence["metric"]) >= {"MOTA", "BoxRecall", "CenterErr"}


def test_errors_of_matched_boxes() -> None:
    gt = make_tracks(_rows())
    # Track 1 shifted 0.3 m sideways, 0.2 m longer, yaw flipped by pi: still overlaps (IoU > 0.25).
    pred = make_tracks(_rows(x=0.3, l=0.2, yaw=np.pi))
    s = evaluate("pseudolabel", gt, pred).summary
    assert s["BoxRecall"] == 1.0
    # 10 matches: track 2's 5 are copies of GT (a labeler's labels), track 1's 5 are estimates with errors.
    assert s["LabelCopies"] == pytest.approx(0.5)
    assert s["CenterErr"] == pytest.approx(0.3)
    assert s["SizeErr"] == pytest.approx(0.2 / 3)
    assert s["YawErr"] == pytest.approx(np.pi)  # raw wrapped error: a flip counts as pi
    assert s["YawFlip"] == pytest.approx(1.0)


def test_copied_labels_do_not_hide_the_errors_of_estimated_boxes() -> None:
    # The main job's case: most matched pseudolabels are the human labels passed on (exact), a minority are
    # propagated boxes 0.5 m off, 1 of them facing backwards. The old median over all matches was exactly 0
    # (CenterErr, SizeErr, YawErr all "0") while YawFlip was not.
    gt_rows, pred_rows = [], []
    for f in range(10):
        for tid in range(1, 6):
            row = dict(seq="a", frame=f, track_id=tid, cls="Car", x1=0.0, y1=0.0, x2=10.0, y2=10.0,
                       x=-20.0 + 8.0 * tid, y=1.6, z=20.0 + f, h=1.5, w=1.8, l=4.0, yaw=0.3)
            gt_rows.append(row)
            if tid <= 3:  # 30 labels, copied
                pred_rows.append(dict(row))
            elif tid == 4 or f < 5:  # 15 propagated boxes, 0.5 m off in depth, 1 flipped
                flip = np.pi if (tid == 5 and f == 0) else 0.0
                pred_rows.append(dict(row, z=row["z"] + 0.5, w=1.9, yaw=0.3 + 0.02 + flip))
    s = evaluate("pseudolabel", make_tracks(gt_rows), make_tracks(pred_rows)).summary
    assert s["BoxRecall"] == pytest.approx(45 / 50) and s["LabelCopies"] == pytest.approx(30 / 45)
    assert s["CenterErr"] == pytest.approx(0.5)
    assert s["SizeErr"] == pytest.approx(0.1 / 3)
    assert s["YawErr"] == pytest.approx(0.02)
    assert s["YawFlip"] == pytest.approx(1 / 15)


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


def test_sequences_pooled_not_averaged() -> None:
    """BoxQualityMetric: per-sequence matches, pooled by combine_sequences (medians over all matched boxes,
    not a mean of per-sequence medians), equal to scoring both sequences' boxes as one table."""
    from bench.metrics.pseudolabel import BoxQualityMetric, box_quality

    a_gt, a_pred = _rows(), _rows(x=0.3)  # sequence "a": track 1 off by 0.3 m
    b_gt = [dict(r, seq="ab") for r in _rows(n_frames=3)]
    b_pred = [dict(r, seq="ab") for r in _rows(n_frames=3, x=0.9)][:-1]  # "ab": 0.9 m off, one box missing
    gt, pred = make_tracks(a_gt + b_gt), make_tracks(a_pred + b_pred)
    metric = BoxQualityMetric()
    per_seq = {s: metric.eval_sequence(gt[gt["seq"] == s], pred[pred["seq"] == s]) for s in ("ab", "a")}
    pooled = metric.summary(metric.combine_sequences(per_seq))
    assert pooled == box_quality(gt, pred)
    assert pooled["CenterErr"] == pytest.approx(0.3)  # 5 of the 8 estimated boxes are 0.3 m off
    assert metric.summary(per_seq["ab"])["CenterErr"] == pytest.approx(0.9)
    assert pooled["BoxPrecision"] == 1.0 and pooled["BoxRecall"] == pytest.approx(15 / 16)
    result = evaluate("pseudolabel", gt, pred)
    assert {k: result.summary[k] for k in pooled} == pooled
    rows = result.per_sequence.set_index(["seq", "metric"])["value"]
    assert rows[("ab", "CenterErr")] == pytest.approx(0.9)
