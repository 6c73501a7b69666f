"""The results database: one SQLite file indexed by run key.

Runs and their metric rows live in two tables. The file uses WAL journaling and a busy timeout
so several worker processes can write at once; every write is one short transaction with an
``INSERT ... ON CONFLICT`` upsert, so a retried or concurrent write never duplicates a row.
The schema is versioned with ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes version i to i+1.

``bench report`` and ``bench check`` read this file only (``runs_frame`` / ``metrics_frame``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

RUN_STATUSES = ("ok", "failed", "running", "skipped")
DEFAULT_RUNS_DIR = "runs"
STORE_FILENAME = "bench.sqlite"


def runs_dir(path: Path | str | None = None) -> Path:
    """The runs root: ``path``, else ``$BENCH_RUNS_DIR``, else ``./runs``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get("BENCH_RUNS_DIR", DEFAULT_RUNS_DIR))


def default_store_path(root: Path | str | None = None) -> Path:
    """``<runs root>/bench.sqlite``."""
    return runs_dir(root) / STORE_FILENAME


@dataclass
class RunRecord:
    """One run (a job's result): identity, status, timings, and its manifest and resolved config."""

    key: str
    method: str
    base: str | None
    dataset: str
    budget: int | None
    seed: int
    profile: str
    protocol_version: str
    status: str  # "ok" | "failed" | "running" | "skipped"
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    wall_s: float | None = None
    peak_mem_mb: float | None = None
    device: str = "cpu"
    fps: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    run_dir: str = ""
    variant: str = ""  # a sweep preset's variant (an ablation row, e.g. "A1"); "" for a plain run

    def __post_init__(self) -> None:
        if self.status not in RUN_STATUSES:
            raise ValueError(f"run {self.key}: status {self.status!r} is not one of {RUN_STATUSES}")


@dataclass
class MetricRow:
    """One number: ``seq == ""`` is the overall value over all sequences of the split."""

    split: str  # "val" | "train-pseudolabel" | ...
    protocol: str
    seq: str
    metric: str
    value: float


RUN_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RunRecord))
_JSON_COLUMNS = ("config", "manifest")

# Each entry is a script taking the schema from version i to i + 1. Append, never edit.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        key TEXT PRIMARY KEY,
        method TEXT NOT NULL,
        base TEXT,
        dataset TEXT NOT NULL,
        budget INTEGER,
        seed INTEGER NOT NULL,
        profile TEXT NOT NULL,
        protocol_version TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        started_at REAL NOT NULL,
        finished_at REAL,
        wall_s REAL,
        peak_mem_mb REAL,
        device TEXT NOT NULL,
        fps REAL,
        config TEXT NOT NULL,
        manifest TEXT NOT NULL,
        run_dir TEXT NOT NULL
    );
    CREATE INDEX runs_cell ON runs (dataset, method, budget, seed);
    CREATE TABLE metrics (
        run_key TEXT NOT NULL REFERENCES runs (key) ON DELETE CASCADE,
        split TEXT NOT NULL,
        protocol TEXT NOT NULL,
        seq TEXT NOT NULL,
        metric TEXT NOT NULL,
        value REAL,
        PRIMARY KEY (run_key, split, protocol, seq, metric)
    );
    """,
    # 1 -> 2: runs carry the sweep variant they were run as (ablation rows); older runs had none.
    """
    ALTER TABLE runs ADD COLUMN variant TEXT NOT NULL DEFAULT ''
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(RuntimeError):
    """The database file is unusable (e.g. written by a newer bench)."""


class Store:
    """The SQLite results database at ``path`` (created and migrated on open)."""

    def __init__(self, path: Path | str, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout_s = timeout_s
        with self._connect() as con:
            self._migrate(con)

    # -- connection handling: one short-lived connection per operation, so the object is cheap to
    # pickle into worker processes and no connection is ever shared across a fork.
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout = {int(self._timeout_s * 1000)}")
            con.execute("PRAGMA foreign_keys = ON")
            # WAL + NORMAL: a commit survives a killed process (what sweeps face) without an fsync per
            # write; a power cut can lose the last commits but never corrupts the file.
            con.execute("PRAGMA synchronous = NORMAL")
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            # BEGIN IMMEDIATE takes the write lock up front, so two writers never deadlock on upgrade.
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _migrate(self, con: sqlite3.Connection) -> None:
        if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            con.execute("PRAGMA journal_mode = WAL")
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {version} is newer than this bench ({SCHEMA_VERSION})")
        if version == SCHEMA_VERSION:
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = con.execute("PRAGMA user_version").fetchone()[0]
            for i in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[i].split(";"):
                    if statement.strip():
                        con.execute(statement)
                con.execute(f"PRAGMA user_version = {i + 1}")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        with self._connect() as con:
            return int(con.execute("PRAGMA user_version").fetchone()[0])

    # -- writes
    def upsert_run(self, run: RunRecord) -> None:
        """Insert the run or replace every field of the stored run with the same key."""
        row = asdict(run)
        for column in _JSON_COLUMNS:
            row[column] = json.dumps(row[column], sort_keys=True, default=str)
        columns = ", ".join(RUN_COLUMNS)
        marks = ", ".join(f":{c}" for c in RUN_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in RUN_COLUMNS if c != "key")
        sql = f"INSERT INTO runs ({columns}) VALUES ({marks}) ON CONFLICT (key) DO UPDATE SET {updates}"
        with self._transaction() as con:
            con.execute(sql, row)

    def add_metrics(self, run_key: str, rows: Iterable[MetricRow]) -> None:
        """Store a run's metric rows, replacing its earlier rows for the same (split, protocol)."""
        rows = list(rows)
        groups = sorted({(r.split, r.protocol) for r in rows})
        with self._transaction() as con:
            if con.execute("SELECT 1 FROM runs WHERE key = ?", (run_key,)).fetchone() is None:
                raise KeyError(f"no run {run_key!r} in {self.path}; upsert_run first")
            con.executemany("DELETE FROM metrics WHERE run_key = ? AND split = ? AND protocol = ?",
                            [(run_key, s, p) for s, p in groups])
            con.executemany(
                "INSERT INTO metrics (run_key, split, protocol, seq, metric, value) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_key, split, protocol, seq, metric) DO UPDATE SET value = excluded.value",
                [(run_key, r.split, r.protocol, r.seq, r.metric, float(r.value)) for r in rows],
            )

    def delete_run(self, key: str) -> None:
        with self._transaction() as con:
            con.execute("DELETE FROM runs WHERE key = ?", (key,))

    # -- reads
    def run(self, key: str) -> RunRecord | None:
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            row = con.execute("SELECT * FROM runs WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = dict(row)
        for column in _JSON_COLUMNS:
            data[column] = json.loads(data[column])
        return RunRecord(**data)

    def statuses(self) -> dict[str, str]:
        """run key -> status, for the runner's skip decisions (one query for a whole sweep)."""
        with self._connect() as con:
            return dict(con.execute("SELECT key, status FROM runs").fetchall())

    def runs_frame(self) -> pd.DataFrame:
        """One row per run; columns are the RunRecord fields (config and manifest as JSON strings)."""
        with self._connect() as con:
            frame = pd.read_sql_query(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY key", con)
        frame["budget"] = frame["budget"].astype("Int64")
        return frame

    def metrics_frame(self) -> pd.DataFrame:
        """Every metric row joined with its run's identity columns."""
        sql = (
            "SELECT m.run_key, m.split, m.protocol, m.seq, m.metric, m.value, "
            "r.method, r.base, r.dataset, r.budget, r.seed, r.profile, r.status, r.variant, r.finished_at "
            "FROM metrics m JOIN runs r ON r.key = m.run_key "
            "ORDER BY m.run_key, m.split, m.protocol, m.seq, m.metric"
        )
        with self._connect() as con:
            frame = pd.read_sql_query(sql, con)
        frame["budget"] = frame["budget"].astype("Int64")
        return frame

    def integrity_check(self) -> str:
        with self._connect() as con:
            return str(con.execute("PRAGMA integrity_check").fetchone()[0])
