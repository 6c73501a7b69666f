"""Metric speed against the official tools, both timed in this run: the ratio official / bench is the figure.

A ratio of two times taken minutes apart on the same machine holds still across machines far better
than either time. Each side's figure is its best round (least disturbed by other jobs on the machine).
The official tools that live in their own venvs (nuscenes-devkit, the Waymo op) are measured only where
those venvs exist; otherwise the test is skipped and says which script makes the venv.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from perf_cases import TIMER, min_time, planted

ROOT = Path(__file__).resolve().parents[2]
NUSCENES_PY = ROOT / ".venvs" / "nuscenes" / "bin" / "python"
WAYMO_PY = ROOT / ".venvs" / "waymo" / "bin" / "python"

# KITTI-like 2D case (benchmarks/bench_trackeval.py's builder): 5 sequences x 200 frames, 30 objects each,
# ~11 boxes per frame. Large enough that fixed costs do not dominate either side, small enough for ~10 s.
KITTI_CASE = {"sequences": 5, "frames": 200, "objects": 30}

pytestmark = pytest.mark.benchmark(timer=TIMER)


def test_kitti2d_vs_trackeval(benchmark, perf) -> None:
    """CLEAR + Identity + HOTA (kitti-2d: car and pedestrian) vs TrackEval's Evaluator + Kitti2DBox."""
    from bench_trackeval import make_case
    from make_trackeval_golden import trackeval_kitti, write_kitti_case

    from bench.metrics import evaluate

    gt, pred = make_case(**KITTI_CASE)
    frames = KITTI_CASE["frames"]
    sequences = {s: SimpleNamespace(frame_ids=np.arange(frames)) for s in sorted(set(gt["seq"]))}
    n_frames = {s: frames for s in sequences}
    ours = planted("kitti2d_vs_trackeval", lambda: evaluate("kitti-2d", gt, pred, sequences=sequences))
    result = benchmark.pedantic(ours, rounds=7, iterations=1, warmup_rounds=1)

    with tempfile.TemporaryDirectory() as tmp:
        # Writing the files is not timed: TrackEval is timed as it is used, from files to its result.
        write_kitti_case(Path(tmp) / "case", gt, pred, n_frames)
        runs = iter(range(100))
        official = {}

        def run_official() -> None:
            official.update(trackeval_kitti(Path(tmp) / "case", n_frames, Path(tmp) / f"work{next(runs)}"))

        official_s = min_time(run_official, 5)
    # The same numbers, or the speed comparison compares different work.
    assert abs(result.summary["HOTA"] - official["car"]["combined"]["HOTA"]) < 1e-9
    ours_s = benchmark.stats.stats.min if benchmark.stats else None
    if ours_s is not None:
        perf.record(benchmark, "kitti2d_vs_trackeval", official_s / ours_s, "higher",
                    "TrackEval Evaluator+Kitti2DBox / bench evaluate('kitti-2d'), best rounds, process CPU time",
                    bench_s=ours_s, official_s=official_s, case=json.dumps(KITTI_CASE))


# The devkit / the op time themselves in wall seconds inside their own venv's process: ours is timed the same way.
@pytest.mark.benchmark(timer=time.perf_counter)
@pytest.mark.skipif(not NUSCENES_PY.exists(),
                    reason=f"no nuscenes-devkit venv at {NUSCENES_PY} (scripts/make_nuscenes_venv.sh makes it)")
def test_amota_vs_nuscenes_devkit(benchmark, perf, tmp_path: Path) -> None:
    """AMOTA & co. vs nuscenes-devkit TrackingEval on a small case (benchmarks/bench_nuscenes.py, scaled down)."""
    case = tmp_path / "nusc"
    # The devkit runs in its own venv; make_nuscenes_golden.py --bench writes the case and its timings.
    subprocess.run([str(NUSCENES_PY), str(ROOT / "scripts" / "golden" / "make_nuscenes_golden.py"), "--bench",
                    str(case), "--scenes", "6", "--samples", "20", "--boxes", "10"], check=True,
                   capture_output=True, text=True, timeout=240)
    devkit = json.loads((case / "devkit_result.json").read_text())
    from bench.data.formats.nuscenes_eval import load_nuscenes_eval
    from bench.metrics.nuscenes_tracking import evaluate_boxes

    gt, boxes = load_nuscenes_eval(case / "dataroot", case / "submission.json")
    result = benchmark.pedantic(planted("amota_vs_nuscenes_devkit", lambda: evaluate_boxes(gt, boxes)),
                                rounds=3, iterations=1, warmup_rounds=1)
    theirs = devkit["expected"]["overall"]["amota"]
    if theirs is not None:  # None: the devkit found nothing to average (NaN); then so must we
        assert abs(result.summary["amota"] - theirs) < 1e-6
    else:
        assert math.isnan(result.summary["amota"])
    if benchmark.stats:
        ours_s = benchmark.stats.stats.min
        # The devkit's evaluate time is one run (it takes long); ours is the best of three.
        official_s = devkit["timing"]["evaluate_s"]
        perf.record(benchmark, "amota_vs_nuscenes_devkit", official_s / ours_s, "higher",
                    "nuscenes-devkit TrackingEval.evaluate time / bench evaluate_boxes time",
                    bench_s=ours_s, official_s=official_s)


# The devkit / the op time themselves in wall seconds inside their own venv's process: ours is timed the same way.
@pytest.mark.benchmark(timer=time.perf_counter)
@pytest.mark.skipif(not WAYMO_PY.exists(),
                    reason=f"no Waymo op venv at {WAYMO_PY} (scripts/make_waymo_venv.sh makes it)")
def test_let_ap_vs_waymo_op(benchmark, perf, tmp_path: Path) -> None:
    """LET-3D-AP (LET config, OBJECT_TYPE, LEVEL_2) vs the official op (benchmarks/bench_let_ap.py, scaled down)."""
    from bench_let_ap import make_case

    from bench.metrics.let_ap import LET_CONFIG, WaymoObjects, detection_metrics

    case = make_case(sequences=20, frames=10, boxes=20)
    path = tmp_path / "case.npz"
    np.savez(path, **case)
    official_runs = []
    for _ in range(2):  # the op's own timer; the first call also builds TensorFlow's kernels, hence the best of 2
        proc = subprocess.run([str(WAYMO_PY), str(ROOT / "benchmarks" / "bench_let_ap.py"), "--official-worker",
                               str(path)], capture_output=True, text=True, check=True, timeout=240)
        official_runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    gt = WaymoObjects(case["gt_boxes"], case["gt_types"], case["gt_frames"])
    pred = WaymoObjects(case["pred_boxes"], case["pred_types"], case["pred_frames"], scores=case["pred_scores"])
    result = benchmark.pedantic(planted("let_ap_vs_waymo_op", lambda: detection_metrics(pred, gt, LET_CONFIG)),
                                rounds=3, iterations=1, warmup_rounds=1)
    theirs = official_runs[-1]["let"]
    for name, r in result.items():
        if r.num_gt and name in theirs:
            assert abs(r.ap - theirs[name]["ap"]) < 1e-3, name
    if benchmark.stats:
        ours_s = benchmark.stats.stats.min
        official_s = min(run["let_seconds"] for run in official_runs)
        perf.record(benchmark, "let_ap_vs_waymo_op", official_s / ours_s, "higher",
                    "Waymo detection_metrics op time (LET config) / bench detection_metrics time",
                    bench_s=ours_s, official_s=official_s)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "--benchmark-only"]))
