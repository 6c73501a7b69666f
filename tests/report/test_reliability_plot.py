"""Confidence calibration: the ``conf-calibration`` protocol's bins and ECE, and the reliability diagram on the run
page of a labeler whose conf claims to be a probability (issue 15)."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from bench.data.tracks import make_tracks
from bench.metrics import evaluate
from bench.report.html import render_report, run_page_name
from bench.store import MetricRow, RunRecord, Store


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ten frames of one track; pseudolabels: a label (conf 1), four right boxes at 0.85, four wrong ones at 0.15,
    and one at 0.85 on a frame where the track is absent (wrong)."""
    gt = [{"seq": "a", "frame": f, "track_id": 1, "cls": "Car", "x1": 10.0, "y1": 10.0, "x2": 50.0, "y2": 40.0}
          for f in range(9)]
    pred = [{**gt[0], "conf": 1.0}]
    pred += [{**gt[f], "conf": 0.85} for f in range(1, 5)]
    pred += [{**gt[f], "x1": 200.0, "x2": 240.0, "conf": 0.15} for f in range(5, 9)]
    pred += [{**gt[0], "frame": 9, "conf": 0.85}]
    return make_tracks(gt, source="gt"), make_tracks(pred, source="pred")


def test_conf_calibration_bins_and_ece():
    gt, pred = _tables()
    summary = evaluate("conf-calibration", gt, pred).summary
    assert summary["ConfRows"] == 9  # the label (conf 1) is not scored
    assert summary["ConfBin8N"] == 5 and summary["ConfBin8Acc"] == 0.8 and summary["ConfBin8Conf"] == 0.85
    assert summary["ConfBin1N"] == 4 and summary["ConfBin1Acc"] == 0.0
    assert np.isnan(summary["ConfBin5Acc"]) and summary["ConfBin5N"] == 0
    assert summary["ConfECE"] == pytest.approx((5 * 0.05 + 4 * 0.15) / 9)
    assert summary["ConfRight"] == 4 / 9


def test_run_page_draws_the_reliability_diagram(tmp_path):
    gt, pred = _tables()
    result = evaluate("conf-calibration", gt, pred)
    store = Store(tmp_path / "bench.sqlite")
    for key, rows in (("s3dt", result.summary), ("plain", {})):
        store.upsert_run(RunRecord(
            key=key, method="sparse3dtrack", base="centertrack", dataset="synth-kitti", budget=4, seed=0,
            profile="quick", protocol_version="1", status="ok", error=None, wall_s=1.0, peak_mem_mb=1.0, fps=10.0,
            config={}, manifest={}, run_dir=f"runs/{key}"))
        store.add_metrics(key, [MetricRow("train-pseudolabel", "conf-calibration", "", m, v) for m, v in rows.items()]
                          + [MetricRow("val", "kitti-2d", "", "MOTA", 0.2)])
    render_report(store.runs_frame(), store.metrics_frame(), tmp_path / "site")
    page = (tmp_path / "site" / "runs" / run_page_name("s3dt")).read_text()
    images = re.findall(r'<img class="plot" alt="reliability diagram" src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert len(images) == 1 and "Expected calibration error 0.094" in page
    svg = base64.b64decode(images[0]).decode()
    for text in ("pseudolabel conf", "share right", "calibrated", "ECE 0.094"):
        assert text in svg, text
    assert "reliability diagram" not in (tmp_path / "site" / "runs" / run_page_name("plain")).read_text()
