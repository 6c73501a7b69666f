"""One seed on one machine is bit-identical, idle or loaded: the under-load determinism test (issue 22).

The same smoke run of sparse3dtrack + CenterTrack (every trainer of the labeler and the base runs;
the base trains a little longer than smoke and keeps low-score boxes so that predictions are not
empty) runs twice in fresh processes: once alone, once beside busy-looping processes that keep every
core busy. Its pseudolabels, trained weights, predictions and metrics must be bit-identical. When a
clock decided how much to train (the quick profile's former CPU-second budgets), a loaded run trained
less and scored differently.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

RUN = ["run", "--method", "sparse3dtrack", "--budget", "4", "--seed", "0", "--profile", "smoke", "--device", "cpu",
       "--set", "base.steps=40", "--set", "base.new_thresh=0.05", "--set", "base.track_thresh=0.05",
       "--set", "base.threads=1", "--set", "method.threads=1"]


def _run(runs_dir: Path) -> Path:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("BENCH_RUNS_DIR", None)
    code = "import sys; from bench.cli import main; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", code, *RUN, "--runs-dir", str(runs_dir)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_json,) = runs_dir.glob("synth-kitti/sparse3dtrack+centertrack/b4/s0/*/run.json")
    return run_json.parent


def _artifacts(run: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in ("pseudolabels/pseudolabels.parquet", "prediction/predictions.parquet", "metrics/metrics.parquet"):
        out[name] = pd.read_parquet(run / name)
    out["weights"] = torch.load(run / "training" / "model.pt", map_location="cpu", weights_only=True)
    return out


def _assert_identical(a: dict[str, object], b: dict[str, object]) -> None:
    for name in ("pseudolabels/pseudolabels.parquet", "prediction/predictions.parquet", "metrics/metrics.parquet"):
        left, right = a[name], b[name]
        assert isinstance(left, pd.DataFrame) and isinstance(right, pd.DataFrame)
        pd.testing.assert_frame_equal(left, right, check_exact=True, obj=name)
    wa, wb = a["weights"], b["weights"]
    assert isinstance(wa, dict) and isinstance(wb, dict) and wa.keys() == wb.keys()
    for key in wa:
        if isinstance(wa[key], torch.Tensor):
            assert torch.equal(wa[key], wb[key]), key
        else:
            assert wa[key] == wb[key], key


def test_a_smoke_run_is_bit_identical_alone_and_beside_busy_cores(tmp_path):
    alone = _run(tmp_path / "alone")
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        loaded = _run(tmp_path / "loaded")
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()
    assert alone.name == loaded.name  # same run key: the same experiment
    a, b = _artifacts(alone), _artifacts(loaded)
    predictions = a["prediction/predictions.parquet"]
    assert isinstance(predictions, pd.DataFrame) and len(predictions) > 0  # something to compare
    metrics = a["metrics/metrics.parquet"]
    assert isinstance(metrics, pd.DataFrame) and len(metrics) > 0
    _assert_identical(a, b)
