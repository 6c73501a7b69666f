"""One lock per run key: a second process on the same cell waits and reuses the first's result; a run
killed with SIGKILL reads "interrupted", never "running" forever."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import toy_methods
from click.testing import CliRunner
from toy_methods import calls

from bench.cli import main
from bench.locks import is_running, run_lock
from bench.runner import Job, SweepOptions, run_sweep
from bench.store import INTERRUPTED, Store

HERE = Path(__file__).parent
SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
import toy_methods
toy_methods.register_all()
from pathlib import Path
from bench.runner import Job, SweepOptions, run_sweep
job = Job("copy", dataset="tiny", budget=2, seed=0, profile="smoke",
          overrides=("eval.pseudolabel=[3d-iou]", "method.delay=" + sys.argv[3]))
result = run_sweep([job], SweepOptions(runs_root=Path(sys.argv[1]), progress=False, device="cpu"))
print("action", result.planned[0].action, result.planned[0].reason, flush=True)
sys.exit(result.exit_code)
"""


def _start(root: Path, delay: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(root), str(HERE), str(delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_status(store_path: Path, status: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if store_path.exists():
            con = sqlite3.connect(store_path, timeout=10)
            try:
                if con.execute("SELECT count(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]:
                    return
            except sqlite3.OperationalError:
                pass
            finally:
                con.close()
        time.sleep(0.05)
    raise AssertionError(f"no run reached {status!r} in {timeout} s")


def test_lock_is_held_by_its_process_only(tmp_path):
    assert not is_running(tmp_path)  # no lock file: nothing runs there, and nothing was created
    assert not (tmp_path / "run.lock").exists()
    with run_lock(tmp_path):
        assert is_running(tmp_path)  # another open file description conflicts, even in this process
    assert not is_running(tmp_path)


def test_sigkilled_run_reads_interrupted_not_running(tmp_path):
    root = tmp_path / "runs"
    proc = _start(root, delay=60)
    try:
        _wait_for_status(root / "bench.sqlite", "running")
        runs = Store(root / "bench.sqlite", readonly=True).runs_frame()
        assert list(runs["status"]) == ["running"]  # alive: its process holds the lock
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    store = Store(root / "bench.sqlite", readonly=True)
    assert list(store.runs_frame()["status"]) == [INTERRUPTED]
    assert list(store.runs_frame(live=False)["status"]) == ["running"]  # what the dead process last wrote
    listed = CliRunner().invoke(main, ["ls", "runs", "--runs-dir", str(root)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and INTERRUPTED in listed.output and "running" not in listed.output


def test_second_process_on_the_same_cell_waits_and_reuses(tmp_path):
    root = tmp_path / "runs"
    first = _start(root, delay=3)
    try:
        _wait_for_status(root / "bench.sqlite", "running")
        toy_methods.register_all()
        job = Job("copy", dataset="tiny", budget=2, seed=0, profile="smoke",
                  overrides=("eval.pseudolabel=[3d-iou]", "method.delay=3"))
        dry = run_sweep([job], SweepOptions(runs_root=root, progress=False, dry_run=True)).planned[0]
        assert dry.action == "run" and "running in another process" in dry.reason
        second = _start(root, delay=3)
        out2, err2 = second.communicate(timeout=120)
        out1, err1 = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "another process is running this cell" in err2
    assert "finished by another process" in out2
    toy_methods.register_all()
    store = Store(root / "bench.sqlite", readonly=True)
    runs = store.runs_frame()
    assert list(runs["status"]) == ["ok"]
    assert calls(Path(runs["run_dir"][0])) == ["label"]  # computed once
