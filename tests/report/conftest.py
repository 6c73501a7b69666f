"""A small real results store with known numbers, shared by the report, table and check tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.store import MetricRow, RunRecord, Store

EVIL_METHOD = "<script>alert(1)</script>"
EVIL_BASE = "q'uote\"base"
EVIL_KEY = "../../escape\"<key>"

# (key, method, base, budget, seed, status, {metric: value}); dataset synth-kitti, protocol 3d-iou, split val.
RUNS = [
    ("s3d-b2-s0", "sparse3dtrack", "centertrack", 2, 0, "ok", {"MOTA": 0.30, "IDSW": 9}),
    ("s3d-b2-s1", "sparse3dtrack", "centertrack", 2, 1, "ok", {"MOTA": 0.34, "IDSW": 7}),
    ("s3d-b4-s0", "sparse3dtrack", "centertrack", 4, 0, "ok", {"MOTA": 0.40, "IDSW": 5}),
    ("s3d-b4-s1", "sparse3dtrack", "centertrack", 4, 1, "ok", {"MOTA": 0.42, "IDSW": 5}),
    ("s3d-b4-s2", "sparse3dtrack", "centertrack", 4, 2, "ok", {"MOTA": 0.44, "IDSW": 5}),
    ("sparse-b2-s0", "sparse", "centertrack", 2, 0, "ok", {"MOTA": 0.20, "IDSW": 4}),
    ("sparse-b2-s1", "sparse", "centertrack", 2, 1, "ok", {"MOTA": 0.22, "IDSW": 4}),
    ("sparse-b4-s0", "sparse", "centertrack", 4, 0, "ok", {"MOTA": 0.25, "IDSW": 3}),
    ("sparse-b4-s1", "sparse", "centertrack", 4, 1, "ok", {"MOTA": 0.27, "IDSW": 3}),
    ("oracle-s0", "oracle", "centertrack", None, 0, "ok", {"MOTA": 0.60, "IDSW": 1}),
    (EVIL_KEY, EVIL_METHOD, EVIL_BASE, 4, 0, "ok", {"MOTA": 0.10, "IDSW": 30}),
    ("s3d-b8-s0", "sparse3dtrack", "centertrack", 8, 0, "failed", {}),
]


def fill(store: Store) -> None:
    for key, method, base, budget, seed, status, values in RUNS:
        store.upsert_run(RunRecord(
            key=key, method=method, base=base, dataset="synth-kitti", budget=budget, seed=seed, profile="smoke",
            protocol_version="1", status=status, error="ValueError: <b>boom</b>" if status == "failed" else None,
            wall_s=12.5, peak_mem_mb=300.0, fps=25.0 if method != "oracle" else 10.0,
            config={"method": method, "note": "</pre><script>alert(2)</script>"},
            manifest={"git": "abc", "dirty": True},
            run_dir=f"runs/synth-kitti/{method}/b{budget}/s{seed}/{key}"))
        rows = [MetricRow("val", "3d-iou", "", name, value) for name, value in values.items()]
        rows += [MetricRow("val", "3d-iou", "0001", name, value) for name, value in values.items()]
        if rows:
            store.add_metrics(key, rows)


# Session-scoped: the tests only read the store (each write is a synced SQLite transaction, so
# rebuilding it per test would dominate this folder's run time).
@pytest.fixture(scope="session")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = Store(tmp_path_factory.mktemp("store") / "bench.sqlite")
    fill(store)
    return store.path


@pytest.fixture(scope="session")
def frames(store_path: Path):
    store = Store(store_path)
    return store.runs_frame(), store.metrics_frame()
