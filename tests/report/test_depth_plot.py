"""The report's depth-error section: a depth-error-by-range plot beside the tables (issue 21)."""

from __future__ import annotations

import base64
import re

from bench.report.html import render_report
from bench.store import MetricRow, RunRecord, Store

# (key, method, budget, seed, {metric: value}); dataset synth-nuscenes, protocol depth-error, split val.
RUNS = [
    ("o-s0", "oracle", None, 0, {"DepthErr0to20": 0.4, "DepthErr20to40": 1.9, "DepthErr40up": 4.0}),
    ("o-s1", "oracle", None, 1, {"DepthErr0to20": 0.6, "DepthErr20to40": 2.1, "DepthErr40up": 5.0}),
    ("sp-s0", "sparse", 4, 0, {"DepthErr0to20": 0.9, "DepthErr20to40": 3.3, "DepthErr40up": float("nan")}),
]


def test_depth_error_section_shows_the_range_plot(tmp_path):
    store = Store(tmp_path / "bench.sqlite")
    for key, method, budget, seed, values in RUNS:
        store.upsert_run(RunRecord(
            key=key, method=method, base="centertrack", dataset="synth-nuscenes", budget=budget, seed=seed,
            profile="quick", protocol_version="1", status="ok", error=None, wall_s=1.0, peak_mem_mb=1.0, fps=10.0,
            config={}, manifest={}, run_dir=f"runs/{key}"))
        store.add_metrics(key, [MetricRow("val", "depth-error", "", name, v) for name, v in values.items()]
                          + [MetricRow("val", "3d-iou", "", "MOTA", 0.1)])
    render_report(store.runs_frame(), store.metrics_frame(), tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    sections = re.split(r"<h2 ", html)
    section = next(part for part in sections if "(depth-error, split val)" in part.split("</h2>")[0])
    images = re.findall(r'<img class="plot" alt="([^"]+)" src="data:image/svg\+xml;base64,([^"]+)"', section)
    # The range plot takes the budget curve's place (a curve over three range-bin boards would say nothing).
    assert [alt for alt, _ in images] == ["depth error by range", "FPS vs Depth error 20-40 m"]
    svg = base64.b64decode(images[0][1]).decode()
    for text in ("0-20 m", "20-40 m", "40+ m", "oracle + centertrack @ all", "sparse + centertrack @ 4",
                 "median |depth error| (m)"):
        assert text in svg, text
    # The 3d-iou section keeps its budget curve.
    assert 'alt="MOTA vs labels per track"' in html
