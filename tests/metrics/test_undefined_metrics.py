"""A metric that is a mean over nothing is undefined (NaN, shown as "-"), never TrackEval's 0/0 placeholder.

With no prediction at all TrackEval reports LocA = 1e-10 / 1e-10 = 1 (a "LocA 100 %" for a tracker that
found nothing), MOTP = 0 and AssA = 0; bench keeps every defined number equal to TrackEval's and turns
only those placeholders into NaN.
"""

from __future__ import annotations

import math

from bench.data.tracks import make_tracks
from bench.metrics import evaluate
from bench.report.schema import MetricSchema

GT = [dict(seq="s", frame=f, track_id=1, cls="Car", x1=0.0, y1=0.0, x2=100.0, y2=100.0) for f in range(3)]
FAR = [dict(seq="s", frame=f, track_id=5, cls="Car", x1=500.0, y1=0.0, x2=600.0, y2=100.0) for f in range(3)]
UNDEFINED_WITHOUT_MATCHES = ("MOTP", "LocA", "AssA", "AssRe", "AssPr")


def _summary(pred: list[dict]) -> dict[str, float]:
    return evaluate("2d-iou", make_tracks(GT), make_tracks(pred)).summary


def test_no_prediction_leaves_means_over_matches_and_precisions_undefined() -> None:
    s = _summary([])
    for name in UNDEFINED_WITHOUT_MATCHES + ("IDP", "DetPr"):
        assert math.isnan(s[name]), (name, s[name])
    # Defined numbers stay TrackEval's: nothing found of 3 boxes.
    assert s["MOTA"] == 0.0 and s["IDF1"] == 0.0 and s["HOTA"] == 0.0 and s["FN"] == 3 and s["TP"] == 0


def test_only_false_positives_keep_precision_defined() -> None:
    s = _summary(FAR)
    for name in UNDEFINED_WITHOUT_MATCHES:
        assert math.isnan(s[name]), name
    assert s["IDP"] == 0.0 and s["DetPr"] == 0.0 and s["FP"] == 3 and s["MOTA"] == -1.0


def test_a_perfect_tracker_is_untouched() -> None:
    s = _summary(GT)
    assert s["MOTP"] == 1.0 and math.isclose(s["LocA"], 1.0) and s["AssA"] == 1.0 and s["IDP"] == 1.0


def test_undefined_prints_as_a_dash() -> None:
    info = MetricSchema.load().info("LocA", "kitti-2d")
    assert info.format(_summary([])["LocA"]) == "-"
