"""A sweep killed with SIGKILL resumes without redoing finished stages or trusting half-written ones."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import toy_methods
from toy_methods import calls

from bench.runner import Job, SweepOptions, run_sweep
from bench.runner.stages import StageDir, write_text
from bench.store import Store

HERE = Path(__file__).parent
OVERRIDES = ("eval.pseudolabel=[3d-iou]", "method.delay=0.4")
SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
import toy_methods
toy_methods.register_all()
from pathlib import Path
from bench.runner import Job, SweepOptions, run_sweep
jobs = [Job("copy", dataset="tiny", budget=2, seed=s, profile="smoke", overrides=tuple(sys.argv[3:])) for s in range(4)]
run_sweep(jobs, SweepOptions(runs_root=Path(sys.argv[1]), progress=False, device="cpu"))
"""


def test_sigkill_mid_sweep_then_resume(tmp_path):
    root = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(root), str(HERE), *OVERRIDES])
    store_path = root / "bench.sqlite"
    deadline = time.time() + 90
    try:
        while time.time() < deadline:
            if store_path.exists():
                con = sqlite3.connect(store_path, timeout=10)
                try:
                    done = con.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchone()[0]
                except sqlite3.OperationalError:
                    done = 0
                con.close()
                if done >= 2:
                    break
            time.sleep(0.05)
        time.sleep(0.3)  # land inside the next cell's labeler
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    store = Store(store_path)
    assert store.integrity_check() == "ok"
    before = {r.key: r.status for r in store.runs_frame().itertuples()}
    finished = {k for k, s in before.items() if s == "ok"}
    assert 2 <= len(finished) < 4

    toy_methods.register_all()
    jobs = [Job("copy", dataset="tiny", budget=2, seed=s, profile="smoke", overrides=OVERRIDES) for s in range(4)]
    # Every stage a marker calls done verifies (all files there with their sizes), before resuming.
    planned = run_sweep(jobs, SweepOptions(runs_root=root, progress=False, dry_run=True)).planned
    counts_before = {p.key: calls(p.run_dir) for p in planned}
    result = run_sweep(jobs, SweepOptions(runs_root=root, progress=False, device="cpu"))
    assert result.exit_code == 0
    for p in result.planned:
        if p.key in finished:
            assert p.action == "skip" and calls(p.run_dir) == ["label"]  # not redone
        else:
            # Interrupted or never started: its labeler ran exactly once more, its labels stage was reused.
            assert calls(p.run_dir) == counts_before[p.key] + ["label"]
            assert StageDir(p.run_dir, "pseudolabels").is_done()
    assert set(Store(store_path).runs_frame()["status"]) == {"ok"}
    assert Store(store_path).integrity_check() == "ok"
    assert not list(root.rglob("*.tmp"))


def test_half_written_stage_is_not_done(tmp_path):
    stage = StageDir(tmp_path, "prediction")
    assert not stage.is_done()
    write_text(stage.file("predictions.parquet"), "x" * 100)
    assert not stage.is_done()  # artifacts without a marker
    stage.mark_done(["predictions.parquet"])
    assert stage.is_done()
    stage.file("predictions.parquet").write_text("x" * 10)  # truncated after the fact
    assert not stage.is_done()
    stage.file("predictions.parquet").unlink()
    assert not stage.is_done()
    (stage.path / ".done").write_text("{not json")
    assert not stage.is_done()


def test_jobs_planned_in_parallel_workers_share_one_store(tmp_path):
    """Two local workers (forked processes) write to one store; nothing lost or doubled."""
    toy_methods.register_all()
    jobs = [Job("copy", dataset="tiny", budget=2, seed=s, profile="smoke", overrides=("eval.pseudolabel=[3d-iou]",))
            for s in range(4)]
    result = run_sweep(jobs, SweepOptions(runs_root=tmp_path / "runs", jobs=2, progress=False, device="cpu"))
    assert result.exit_code == 0
    store = Store(tmp_path / "runs" / "bench.sqlite")
    runs = store.runs_frame()
    assert len(runs) == 4 and set(runs["status"]) == {"ok"}
    metrics = store.metrics_frame()
    assert not metrics.duplicated(["run_key", "split", "protocol", "seq", "metric"]).any()
    assert set(metrics["run_key"]) == set(runs["key"])
    # Each worker process reported its own peak memory.
    assert (runs["peak_mem_mb"] > 0).all()
