"""The results database: round trips, replacement semantics, concurrent writers, migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from bench.store import SCHEMA_VERSION, MetricRow, RunRecord, Store, StoreError


def record(key: str, **kw) -> RunRecord:
    base = dict(key=key, method="interpolate", base=None, dataset="synth-kitti", budget=4, seed=0, profile="smoke",
                protocol_version="1", status="ok", config={"a": {"b": 1}}, manifest={"git": "x"}, run_dir="r")
    base.update(kw)
    return RunRecord(**base)


def test_round_trip_and_upsert(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    assert store.schema_version == SCHEMA_VERSION
    store.upsert_run(record("k1"))
    store.upsert_run(record("k1", status="failed", error="boom", budget=None))
    got = store.run("k1")
    assert got.status == "failed" and got.error == "boom" and got.budget is None
    assert got.config == {"a": {"b": 1}}
    assert store.run("nope") is None
    frame = store.runs_frame()
    assert len(frame) == 1 and list(frame.columns)[:3] == ["key", "method", "base"]
    assert frame.loc[0, "config"] == '{"a": {"b": 1}}'


def test_metrics_replace_per_split_protocol(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    store.upsert_run(record("k1"))
    store.add_metrics("k1", [MetricRow("val", "kitti-2d", "", "MOTA", 0.5),
                             MetricRow("val", "kitti-2d", "0001", "MOTA", 0.4),
                             MetricRow("train-pseudolabel", "pseudolabel", "", "recall", 0.9)])
    # Re-scoring val/kitti-2d drops the old per-sequence row but keeps the other protocol's rows.
    store.add_metrics("k1", [MetricRow("val", "kitti-2d", "", "MOTA", 0.6)])
    m = store.metrics_frame()
    got = sorted(zip(m["protocol"], m["seq"], m["value"], strict=True))
    assert got == [("kitti-2d", "", 0.6), ("pseudolabel", "", 0.9)]
    assert {"method", "base", "dataset", "budget", "seed", "profile", "status"} <= set(m.columns)
    with pytest.raises(KeyError, match="no run"):
        store.add_metrics("missing", [MetricRow("val", "p", "", "m", 1.0)])


def test_bad_status_rejected():
    with pytest.raises(ValueError, match="status"):
        record("k", status="done")


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path)
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


WRITER = """
import sys
from bench.store import MetricRow, RunRecord, Store
path, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = Store(path)
def record(key, seed):
    return RunRecord(key=key, method="m", base=None, dataset="d", budget=4, seed=seed, profile="smoke",
                     protocol_version="1", status="ok")
for i in range(n):
    key = f"w{worker}-{i}"
    store.upsert_run(record(key, i))
    store.add_metrics(key, [MetricRow("val", "p", "", "m", float(i)), MetricRow("val", "p", "s", "m", 1.0)])
    # Every worker also rewrites one shared run: upserts must not duplicate it.
    store.upsert_run(record("shared", worker))
    store.add_metrics("shared", [MetricRow("val", "p", "", "m", float(worker))])
"""


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path):
    path = str(tmp_path / "s.sqlite")
    Store(path)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, path, str(w), "15"]) for w in range(4)]
    for p in procs:
        assert p.wait(60) == 0
    store = Store(path)
    runs = store.runs_frame()
    assert len(runs) == 4 * 15 + 1 and runs["key"].is_unique
    m = store.metrics_frame()
    assert len(m) == 4 * 15 * 2 + 1
    assert not m.duplicated(["run_key", "split", "protocol", "seq", "metric"]).any()
    assert store.integrity_check() == "ok"
