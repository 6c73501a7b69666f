"""The bounds leaderboard in a real headless Chromium: sparse's budget curve rises towards the oracle line.

The store is built through bench.store from real results of the bounds sweep (issue 5), kept in
``bounds_results.json`` next to this file. Re-export it after a new sweep with

    python tests/report/test_bounds_browser.py --export runs/bench.sqlite

The page's synth-kitti kitti-2d budget curve (an SVG <img>) is cut out of the rendered index.html by a probe
script and screenshot alone; the pixels of sparse's line (tab20 colour 0) and of the oracle's dashed level
line (colour 1) are then located in the screenshot.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report.html import render_report
from bench.store import MetricRow, RunRecord, Store

FIXTURE = Path(__file__).with_name("bounds_results.json")
METRICS = ("MOTA", "MOTP", "IDF1", "HOTA", "amota", "amotp", "mota")  # the nuScenes devkit names are lower case
PROTOCOLS = ("kitti-2d", "3d-iou", "nuscenes")
# The curve's figure is 8.4 x 3.6 in with axes from 8 % to 66 % of the width, 9 % to 86 % of the height.
PLOT_W, PLOT_H = 1008, 432
AXES = (0.08, 0.66, 0.09, 0.86)
SPARSE_RGB, ORACLE_RGB = (31, 119, 180), (174, 199, 232)  # matplotlib tab20 colours 0 and 1: rows sparse, oracle

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--hide-scrollbars"]

# Finds the synth-kitti kitti-2d section's curve, records what the page shows, then leaves only that image.
PROBE_TAIL = """<script>
(function () {
  var out = {sections: []};
  var heads = document.querySelectorAll('h2');
  var img = null;
  for (var i = 0; i < heads.length; i++) {
    out.sections.push(heads[i].textContent);
    var text = heads[i].textContent;
    if (text.indexOf('synth-kitti') === 0 && text.indexOf('(kitti-2d, split val)') > 0) {
      img = heads[i].nextElementSibling;
    }
  }
  out.found = !!img && img.tagName === 'IMG';
  if (out.found) {
    out.alt = img.alt;
    out.loaded = img.complete && img.naturalWidth > 0;
    document.body.innerHTML = '';
    document.body.style.margin = '0';
    img.style.width = 'PLOT_Wpx'; img.style.height = 'PLOT_Hpx'; img.style.display = 'block';
    document.body.appendChild(img);
  }
  var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>""".replace("PLOT_W", str(PLOT_W)).replace("PLOT_H", str(PLOT_H))


def export(store_path: Path, out: Path = FIXTURE) -> None:
    """Write the finished sparse/oracle + centertrack runs of a store (val split, headline metrics) to ``out``."""
    store = Store(store_path)
    runs, metrics = store.runs_frame(), store.metrics_frame()
    runs = runs[(runs["status"] == "ok") & runs["method"].isin(["sparse", "oracle"]) & (runs["base"] == "centertrack")]
    metrics = metrics[(metrics["split"] == "val") & (metrics["seq"] == "") & metrics["protocol"].isin(PROTOCOLS)
                      & metrics["metric"].isin(METRICS)]
    doc = []
    for r in runs.sort_values(["dataset", "method", "budget", "seed"]).to_dict("records"):
        m = metrics[metrics["run_key"] == r["key"]]
        doc.append({"key": r["key"], "method": r["method"], "dataset": r["dataset"],
                    "budget": None if pd.isna(r["budget"]) else int(r["budget"]),
                    "seed": int(r["seed"]), "profile": r["profile"], "wall_s": r["wall_s"],
                    "peak_mem_mb": r["peak_mem_mb"], "fps": r["fps"],
                    "metrics": [[p, k, float(v)]
                                for p, k, v in m[["protocol", "metric", "value"]].itertuples(index=False)]})
    out.write_text(json.dumps({"source": f"bench sweep bounds (store {store_path})", "runs": doc}, indent=1) + "\n")


def fill(store: Store, runs: list[dict]) -> None:
    for r in runs:
        store.upsert_run(RunRecord(
            key=r["key"], method=r["method"], base="centertrack", dataset=r["dataset"], budget=r["budget"],
            seed=r["seed"], profile=r["profile"], protocol_version="1", status="ok", error=None, wall_s=r["wall_s"],
            peak_mem_mb=r["peak_mem_mb"], fps=r["fps"], config={}, manifest={},
            run_dir=f"runs/{r['dataset']}/{r['method']}/{r['key']}"))
        store.add_metrics(r["key"], [MetricRow("val", p, "", k, v) for p, k, v in r["metrics"]])


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}", *args],
                          capture_output=True, text=True, timeout=90, check=True)


def _mean_mota(runs: list[dict], method: str, budget: int | None) -> float:
    values = [v for r in runs if r["method"] == method and r["budget"] == budget and r["dataset"] == "synth-kitti"
              for p, k, v in r["metrics"] if p == "kitti-2d" and k == "MOTA"]
    return float(np.mean(values))


@pytest.mark.browser
def test_budget_curve_of_sparse_rises_towards_the_oracle_line(tmp_path: Path):
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium; .ci/run does it)")
    import imageio.v3 as iio

    runs = json.loads(FIXTURE.read_text())["runs"]
    budgets = sorted({r["budget"] for r in runs if r["method"] == "sparse" and r["dataset"] == "synth-kitti"})
    # The fixture is the real sweep: sparse rises with the budget and stays under the oracle.
    means = [_mean_mota(runs, "sparse", b) for b in budgets]
    oracle = _mean_mota(runs, "oracle", None)
    assert len(budgets) >= 3 and means[-1] > means[0] and max(means) < oracle

    store = Store(tmp_path / "bench.sqlite")
    fill(store, runs)
    page = render_report(store.runs_frame(), store.metrics_frame(), tmp_path / "site").index
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE_TAIL + "</body>", 1))

    dom = _chromium(tmp_path, "--dump-dom", probe.as_uri()).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, flags=re.S)
    assert found, "the page did not finish loading its scripts"
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["found"] and seen["loaded"], seen
    assert seen["alt"] == "MOTA vs labels per track"
    if any(r["dataset"] == "synth-nuscenes" for r in runs):  # every dataset of the sweep gets its sections
        assert any(s.startswith("synth-nuscenes") for s in seen["sections"]), seen["sections"]

    shot = tmp_path / "curve.png"
    _chromium(tmp_path, f"--window-size={PLOT_W},{PLOT_H + 40}", f"--screenshot={shot}", probe.as_uri())
    image = iio.imread(shot)[:PLOT_H, :, :3].astype(int)
    x0, x1, y0, y1 = (int(f * n) for f, n in zip(AXES, (PLOT_W, PLOT_W, PLOT_H, PLOT_H), strict=True))
    axes = image[y0:y1, x0:x1]

    def pixels(rgb: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = np.nonzero(np.abs(axes - np.array(rgb)).max(axis=2) <= 12)
        return xs, ys

    sx, sy = pixels(SPARSE_RGB)
    ox, oy = pixels(ORACLE_RGB)
    assert len(sx) > 200 and len(ox) > 100, (len(sx), len(ox))
    # The oracle is one dashed level line across the plot (other matches are anti-aliased edges of sparse's line).
    level = np.bincount(oy).argmax()
    on_line = np.abs(oy - level) <= 2
    assert on_line.sum() > 0.5 * (x1 - x0) and np.ptp(ox[on_line]) > 0.9 * (x1 - x0)
    # Sparse's line: its left end (budget 2) lies lower on screen than its right end (budget 16) ...
    span = np.ptp(sx)
    left, right = sy[sx <= sx.min() + span * 0.15].mean(), sy[sx >= sx.max() - span * 0.15].mean()
    assert right < left - 10, (left, right)
    # ... and the right end is nearer the oracle line, which is above all of it (screen y grows downwards).
    assert level < sy.min() and abs(right - level) < abs(left - level)
    # Budgets are evenly spaced on the log axis: the first and last markers span most of the axes.
    assert span > 0.8 * (x1 - x0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--export":
        export(Path(sys.argv[2]))
        print(f"wrote {FIXTURE}")
    else:
        sys.exit(f"usage: python {sys.argv[0]} --export STORE.sqlite")
