"""Run keys hash only what changes results, and a store of the old schema is re-keyed on open.

The old-version store is made here, by the test: the schema of version 2 (the first two migrations)
with runs keyed the old way (the full config, threads and data folder included).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import toy_methods
from toy_methods import CopyLabeler, calls

from bench import registry
from bench.runner import Job, SweepOptions, run_sweep
from bench.runner.jobs import plan_job
from bench.runner.keys import job_key, run_key
from bench.store import MIGRATIONS, SCHEMA_VERSION, Store

EVAL = ("eval.pseudolabel=[3d-iou]", "eval.protocols.3d-tracks=[kitti-2d]")


class ThreadedCopy(CopyLabeler):
    def __init__(self, delay: float = 0.0, threads: int | None = None) -> None:
        super().__init__(delay=delay)
        self.params["threads"] = threads


@pytest.fixture(autouse=True)
def toys():
    toy_methods.register_all()
    registry.register("threaded", ThreadedCopy)
    yield
    registry.unregister("threaded")


def _job(*overrides: str) -> Job:
    return Job("threaded", dataset="tiny", budget=2, seed=0, profile="smoke", overrides=EVAL + overrides)


def _old_key(record: dict) -> str:
    """The key as bench computed it before schema 3: the whole config hashed."""
    m = record["manifest"]
    parts = {"config": record["config"], "method": record["method"], "method_code": m["method_code"],
             "base": record["base"], "base_code": m.get("base_code"), "dataset": record["dataset"],
             "data_hash": m["data_hash"], "budget": record["budget"], "seed": record["seed"],
             "labels": m["labels_manifest"], "protocol_version": record["protocol_version"]}
    return job_key(parts)


def _old_store(path: Path, runs: list[dict], metrics: list[tuple]) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:2]:
        con.executescript(script)
    con.execute("PRAGMA user_version = 2")
    columns = ["key", "method", "base", "dataset", "budget", "seed", "profile", "protocol_version", "status", "error",
               "started_at", "finished_at", "device", "config", "manifest", "run_dir", "variant"]
    for run in runs:
        row = {c: run.get(c) for c in columns}
        row["config"], row["manifest"] = json.dumps(run["config"]), json.dumps(run["manifest"])
        row.setdefault("device", "cpu")
        row["device"] = row["device"] or "cpu"
        row["variant"] = run.get("variant", "")
        con.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    [row[c] for c in columns])
    con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", metrics)
    con.close()


def test_threads_and_data_folder_leave_the_key(tmp_path):
    root = tmp_path / "runs"
    one = plan_job(_job("method.threads=1"), root, write_cache=False)
    four = plan_job(_job("method.threads=4"), root, write_cache=False)
    plain = plan_job(_job(), root, write_cache=False)
    slower = plan_job(_job("method.delay=0.5"), root, write_cache=False)
    assert one.key == four.key == plain.key
    assert slower.key != plain.key  # a parameter that may change results does change the key
    assert one.config["method"]["threads"] == 1  # still handed to the method


def test_old_store_is_rekeyed_on_open(tmp_path):
    manifest = {"method_code": "abc", "base_code": None, "data_hash": "d" * 64, "labels_manifest": "l" * 64}
    base = dict(method="threaded", base=None, dataset="tiny", budget=2, seed=0, profile="smoke", protocol_version="1",
                started_at=1.0, manifest=manifest, run_dir="somewhere")
    ok = dict(base, status="ok", finished_at=3.0, config={"data": {"scale": "smoke", "root": "/a"},
                                                           "method": {"threads": 2, "delay": 0.0}})
    dup = dict(base, status="failed", finished_at=4.0, config={"data": {"scale": "smoke", "root": "/b"},
                                                                "method": {"threads": 8, "delay": 0.0}})
    early = dict(base, key="early-failure", status="failed", manifest={}, config={"method": {"threads": 1}})
    ok["key"], dup["key"] = _old_key(ok), _old_key(dup)
    assert ok["key"] != dup["key"]  # the old scheme split one experiment into two runs
    path = tmp_path / "old.sqlite"
    _old_store(path, [ok, dup, early], [(ok["key"], "val", "kitti-2d", "", "MOTA", 0.25),
                                        (dup["key"], "val", "kitti-2d", "", "MOTA", 0.0)])

    # A read-only open reads an old store as is: it may sit in a read-only folder, so it is not migrated.
    old = Store(path, readonly=True)
    assert old.schema_version == 2 and set(old.runs_frame()["key"]) == {ok["key"], dup["key"], "early-failure"}
    assert set(old.runs_frame()["overrides"]) == {"null"}

    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION
    new = run_key(config={"data": {"scale": "smoke"}, "method": {"delay": 0.0}}, method="threaded",
                  method_code="abc", base=None, base_code=None, dataset="tiny", data_hash="d" * 64, budget=2, seed=0,
                  labels="l" * 64, protocol_version="1")
    runs = store.runs_frame()
    assert set(runs["key"]) == {new, "early-failure"}  # the finished run kept, its failed twin dropped
    kept = store.run(new)
    assert kept.status == "ok" and kept.run_dir == "somewhere" and kept.overrides is None
    metrics = store.metrics_frame()
    assert list(zip(metrics["run_key"], metrics["value"], strict=True)) == [(new, 0.25)]  # numbers unchanged
    assert store.integrity_check() == "ok"
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_finished_run_of_an_old_store_is_still_skipped_after_migration(tmp_path):
    root = tmp_path / "runs"
    first = run_sweep([_job("method.threads=2")], SweepOptions(runs_root=root, progress=False, device="cpu"))
    assert first.exit_code == 0
    planned = first.planned[0]
    store_path = root / "bench.sqlite"
    record = Store(store_path).run(planned.key).__dict__
    metrics = Store(store_path).metrics_frame()
    old_key = _old_key(record)
    assert old_key != planned.key
    # Rebuild the store as bench wrote it before schema 3: the same run under its old key.
    store_path.unlink()
    old_dir = planned.run_dir.parent / old_key[:16]  # where bench put the run then: a folder named by its old key
    planned.run_dir.rename(old_dir)
    record = dict(record, key=old_key, run_dir=str(old_dir))
    _old_store(store_path, [record], [(old_key, r.split, r.protocol, r.seq, r.metric, r.value)
                                      for r in metrics.itertuples()])

    again = run_sweep([_job("method.threads=1")], SweepOptions(runs_root=root, progress=False, device="cpu"))
    assert again.exit_code == 0
    assert again.planned[0].key == planned.key and again.planned[0].action == "skip"
    assert again.planned[0].run_dir == old_dir and calls(old_dir) == ["label"]  # found where it is, not redone
    assert not planned.run_dir.exists()
    migrated = Store(store_path).metrics_frame()
    assert sorted(migrated["value"]) == sorted(metrics["value"])
