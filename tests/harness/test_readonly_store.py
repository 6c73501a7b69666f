"""Reading commands work on a store in a read-only folder and change nothing there; writing ones say so.

CI runs as root, which a chmod does not stop, so the test does not rely on permission errors: it
hashes every file of the folder before and after, and checks that the read paths open SQLite read-only
(a write through them raises).
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
import toy_methods
import yaml
from click.testing import CliRunner

from bench.cli import main
from bench.runner import Job, SweepOptions, run_sweep
from bench.store import RunRecord, Store, StoreError, folder_is_read_only

OVERRIDES = ("eval.pseudolabel=[3d-iou]", "eval.protocols.3d-tracks=[kitti-2d]")


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def read_only_runs(tmp_path):
    toy_methods.register_all()
    root = tmp_path / "runs"
    jobs = [Job("copy", base="meanbox", dataset="tiny", budget=2, seed=s, profile="smoke", overrides=OVERRIDES)
            for s in (0, 1)]
    assert run_sweep(jobs, SweepOptions(runs_root=root, progress=False, device="cpu")).exit_code == 0
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    yield root
    for folder in folders:
        folder.chmod(0o755)


def test_read_commands_change_nothing_in_a_read_only_store(read_only_runs, tmp_path):
    root = read_only_runs
    assert folder_is_read_only(root)
    before = _tree(root)
    expected = tmp_path / "expected.yaml"
    expected.write_text(yaml.safe_dump({"expected": [dict(
        method="copy", base="meanbox", dataset="tiny", budget=2, split="val", protocol="kitti-2d", metric="MOTA",
        value=0.0, tolerance=100, set=list(OVERRIDES))]}))
    store = str(root / "bench.sqlite")
    commands = [
        ["ls", "runs", "--runs-dir", str(root)],
        ["table", "--store", store],
        ["table", "--store", store, "--format", "csv"],
        ["check", "--expected", str(expected), "--store", store],
        ["report", "--store", store, "-o", str(tmp_path / "site")],
        ["sweep", "--methods", "copy", "--base", "meanbox", "--datasets", "tiny", "--budgets", "2", "--seeds", "0,1,2",
         "--profile", "smoke", *sum((["--set", o] for o in OVERRIDES), []), "--runs-dir", str(root), "--dry-run"],
    ]
    for args in commands:
        result = CliRunner().invoke(main, args, env={"COLUMNS": "200"})
        assert result.exit_code == 0, (args, result.output)
    assert _tree(root) == before  # no journal, no -shm/-wal, no cache, no lock file, no byte changed
    assert "3 cells: 1 to run, 2 skipped" in result.output  # the dry run read the store's statuses


def test_read_paths_open_sqlite_read_only(read_only_runs):
    store = Store(read_only_runs / "bench.sqlite", readonly=True)
    assert len(store.runs_frame()) == 2 and len(store.metrics_frame()) > 0
    with pytest.raises(StoreError, match="read-only"):
        store.upsert_run(RunRecord(key="x", method="m", base=None, dataset="d", budget=1, seed=0, profile="smoke",
                                   protocol_version="1", status="ok"))
    with store._connect() as con, pytest.raises(sqlite3.OperationalError, match="readonly|read-only"):
        con.execute("DELETE FROM runs")  # SQLite itself refuses: the connection is mode=ro
    with pytest.raises(StoreError, match="no results store"):
        Store(read_only_runs / "absent.sqlite", readonly=True)
    assert not (read_only_runs / "absent.sqlite").exists()


def test_read_only_in_a_writable_folder_creates_no_file(tmp_path):
    writable = Store(tmp_path / "s.sqlite")
    writable.upsert_run(RunRecord(key="x", method="m", base=None, dataset="d", budget=1, seed=0, profile="smoke",
                                  protocol_version="1", status="ok"))
    before = _tree(tmp_path)
    assert len(Store(tmp_path / "s.sqlite", readonly=True).runs_frame()) == 1
    with Store(tmp_path / "s.sqlite", readonly=True)._connect() as con, pytest.raises(sqlite3.OperationalError):
        con.execute("DELETE FROM runs")
    assert _tree(tmp_path) == before


def test_writing_commands_refuse_a_read_only_folder_in_one_line(read_only_runs):
    before = _tree(read_only_runs)
    for args in (["sweep", "--methods", "copy", "--base", "meanbox", "--datasets", "tiny", "--budgets", "2", "--seeds",
                  "5", "--profile", "smoke", "--runs-dir", str(read_only_runs)],
                 ["rescore", "--runs-dir", str(read_only_runs)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "read-only" in lines[0], result.output
    assert _tree(read_only_runs) == before
