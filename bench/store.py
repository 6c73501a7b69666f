"""The results database: one SQLite file indexed by run key.

Runs and their metric rows live in two tables. The file uses WAL journaling and a busy timeout
so several worker processes can write at once; every write is one short transaction with an
``INSERT ... ON CONFLICT`` upsert, so a retried or concurrent write never duplicates a row.
The schema is versioned with ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes version i to i+1.

``bench report`` and ``bench check`` read this file only (``runs_frame`` / ``metrics_frame``), through
``Store(path, readonly=True)``: a read-only SQLite connection that never migrates and never creates
a file (a store in a read-only folder, or on a read-only mount, is opened ``immutable``).

A run's status "running" is what its process wrote when it started; readers show "interrupted"
instead when no process holds the run's lock any more (:mod:`bench.locks`): a run killed by
SIGKILL, a power cut or OOM never reads "running" forever.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

RUN_STATUSES = ("ok", "failed", "running", "skipped")
INTERRUPTED = "interrupted"  # shown (never stored) for a "running" run whose process is gone
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
    # The run's --set overrides besides its variant's (normalised, execution-only ones left out; see
    # bench.runner.keys.identity_overrides): `bench check` matches cells by them. None: unknown (stored
    # before schema 3).
    overrides: list[str] | None = None

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
_JSON_COLUMNS = ("config", "manifest", "overrides")

def _rekey_runs(con: sqlite3.Connection) -> None:
    """2 -> 3: run keys no longer hash execution-only settings (threads, the data folder).

    Each run's new key is computed from its stored record (config, code versions, data and label
    hashes in its manifest), exactly as planning computes it now. Runs whose manifest lacks them
    (failed before they started) keep their key. Runs that differed only by execution settings
    now share a key: the finished one (else the latest) is kept, the others' rows are dropped. Run
    folders stay where they are: the store's ``run_dir`` points at them.
    """
    from bench.runner.keys import run_key

    con.execute("PRAGMA defer_foreign_keys = ON")  # keys change in runs and metrics within one transaction
    rows = con.execute("SELECT key, method, base, dataset, budget, seed, protocol_version, config, manifest, "
                       "variant, status, finished_at FROM runs").fetchall()
    wanted: dict[str, list[tuple[int, float, str]]] = {}
    for key, method, base, dataset, budget, seed, version, config, manifest, variant, status, finished in rows:
        info = json.loads(manifest or "{}")
        new = key
        if info.get("method_code") and info.get("data_hash") and info.get("labels_manifest"):
            new = run_key(config=json.loads(config), method=method, method_code=info["method_code"], base=base,
                          base_code=info.get("base_code"), dataset=dataset, data_hash=info["data_hash"],
                          budget=budget, seed=seed, labels=info["labels_manifest"], protocol_version=version,
                          variant=variant or "")
        wanted.setdefault(new, []).append((status == "ok", finished or 0.0, key))
    renames: list[tuple[str, str]] = []
    for new, olds in wanted.items():
        olds.sort(reverse=True)
        for _ok, _finished, old in olds[1:]:
            con.execute("DELETE FROM metrics WHERE run_key = ?", (old,))
            con.execute("DELETE FROM runs WHERE key = ?", (old,))
        if olds[0][2] != new:
            renames.append((olds[0][2], new))
    # Two steps through temporary names: a new key may equal another run's old key.
    for old, new in renames:
        for table, column in (("runs", "key"), ("metrics", "run_key")):
            con.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", ("tmp:" + new, old))
    for _old, new in renames:
        for table, column in (("runs", "key"), ("metrics", "run_key")):
            con.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (new, "tmp:" + new))


# Each entry takes the schema from version i to i + 1: an SQL script, or a function of the connection
# (run inside the migration's transaction). Append, never edit.
MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
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
    # 2 -> 3: keys without execution-only settings; runs carry their overrides (null: unknown, older runs).
    _rekey_runs,
    """
    ALTER TABLE runs ADD COLUMN overrides TEXT NOT NULL DEFAULT 'null'
    """,
]
# Columns added after the first schema, with the value older rows read as (read-only opens do not migrate).
_ADDED_COLUMNS: dict[str, Any] = {"variant": "", "overrides": "null"}
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(RuntimeError):
    """The database file is unusable (e.g. written by a newer bench, or missing for a read)."""


def folder_is_read_only(folder: Path) -> bool:
    """No write bit on the folder, or a read-only mount. Not ``os.access``: root passes that check anyway,
    and a read-only folder is the owner's statement that nothing may change in it, root or not."""
    try:
        mode = folder.stat().st_mode
        return not (mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) or bool(
            os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class Store:
    """The SQLite results database at ``path``.

    Writable (default): created and migrated on open. ``readonly=True``: the file must exist; it is
    opened with SQLite's ``mode=ro`` (any write raises), not migrated, and in a read-only folder
    ``immutable=1`` as well, so SQLite creates no journal or shared-memory file beside it.
    """

    def __init__(self, path: Path | str, timeout_s: float = 60.0, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._timeout_s = timeout_s
        if readonly:
            if not self.path.is_file():
                raise StoreError(f"no results store at {self.path}")
            version = self.schema_version
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: schema version {version} is newer than this bench ({SCHEMA_VERSION})")
            if version < 1:
                raise StoreError(f"{self.path} is not a bench results store (no schema)")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if folder_is_read_only(self.path.parent):  # refused even as root, who could write anyway
            raise StoreError(f"the results store's folder {self.path.parent} is read-only; this command writes "
                             "results: use a writable --runs-dir or --store (reading commands work as is)")
        try:
            with self._connect() as con:
                self._migrate(con)
        except sqlite3.OperationalError as err:
            raise StoreError(f"cannot write the results store {self.path} ({err}); this command writes "
                             "results: use a writable --runs-dir or --store") from None

    # -- connection handling: one short-lived connection per operation, so the object is cheap to
    # pickle into worker processes and no connection is ever shared across a fork.
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            flags = "mode=ro" + ("&immutable=1" if self._immutable() else "")
            con = sqlite3.connect(f"{self.path.resolve().as_uri()}?{flags}", uri=True, timeout=self._timeout_s,
                                  isolation_level=None)
        else:
            con = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout = {int(self._timeout_s * 1000)}")
            if not self.readonly:
                con.execute("PRAGMA foreign_keys = ON")
                # WAL + NORMAL: a commit survives a killed process (what sweeps face) without an fsync per
                # write; a power cut can lose the last commits but never corrupts the file.
                con.execute("PRAGMA synchronous = NORMAL")
            yield con
        finally:
            con.close()

    def _immutable(self) -> bool:
        """Whether a read-only open may skip SQLite's WAL machinery (which would create ``-wal``/``-shm`` files).

        Yes in a read-only folder, and when no ``-wal`` file exists: then no writer is active and every
        commit is in the main file (bench's writers checkpoint and remove the WAL when they close). A writer
        that starts during a read appends to a new WAL and only touches the main file at a checkpoint, after
        a thousand pages of writes: far longer than a read. With a WAL present, reads go through it."""
        wal = self.path.with_name(self.path.name + "-wal")
        return folder_is_read_only(self.path.parent) or not wal.exists()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only; this command may not write results")
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
                migration = MIGRATIONS[i]
                if callable(migration):
                    migration(con)
                    continue
                for statement in migration.split(";"):
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
    def _run_columns(self, con: sqlite3.Connection, prefix: str = "") -> list[str]:
        """RUN_COLUMNS as SQL: a store of an older schema (opened read-only, not migrated) gets the
        columns it lacks as their defaults."""
        have = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
        return [f"{prefix}{c}" if c in have else f"{_ADDED_COLUMNS[c]!r} AS {c}".replace('"', "'")
                for c in RUN_COLUMNS]

    def run(self, key: str) -> RunRecord | None:
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            row = con.execute("SELECT * FROM runs WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = dict(row)
        for column in _JSON_COLUMNS:
            if column in data:  # an older schema read as is lacks the later columns: their defaults apply
                data[column] = json.loads(data[column])
        return RunRecord(**data)

    def statuses(self) -> dict[str, str]:
        """run key -> status, for the runner's skip decisions (one query for a whole sweep)."""
        with self._connect() as con:
            return dict(con.execute("SELECT key, status FROM runs").fetchall())

    def run_dirs(self) -> dict[str, str]:
        """run key -> the run's folder as stored (a re-keyed run keeps the folder named by its old key)."""
        with self._connect() as con:
            return dict(con.execute("SELECT key, run_dir FROM runs").fetchall())

    def runs_frame(self, live: bool = True) -> pd.DataFrame:
        """One row per run; columns are the RunRecord fields (config, manifest, overrides as JSON strings).

        ``live``: a "running" run whose lock no process holds reads "interrupted" (see bench.locks)."""
        with self._connect() as con:
            frame = pd.read_sql_query(f"SELECT {', '.join(self._run_columns(con))} FROM runs ORDER BY key", con)
        frame["budget"] = frame["budget"].astype("Int64")
        if live:
            from bench.locks import is_running

            running = frame["status"] == "running"
            dead = [i for i in frame.index[running] if not is_running(Path(str(frame.at[i, "run_dir"])))]
            frame.loc[dead, "status"] = INTERRUPTED
        return frame

    def metrics_frame(self) -> pd.DataFrame:
        """Every metric row joined with its run's identity columns."""
        with self._connect() as con:
            variant = "r.variant" if "r.variant" in self._run_columns(con, "r.") else "'' AS variant"
            sql = (
                "SELECT m.run_key, m.split, m.protocol, m.seq, m.metric, m.value, "
                f"r.method, r.base, r.dataset, r.budget, r.seed, r.profile, r.status, {variant}, r.finished_at "
                "FROM metrics m JOIN runs r ON r.key = m.run_key "
                "ORDER BY m.run_key, m.split, m.protocol, m.seq, m.metric"
            )
            frame = pd.read_sql_query(sql, con)
        frame["budget"] = frame["budget"].astype("Int64")
        return frame

    def integrity_check(self) -> str:
        with self._connect() as con:
            return str(con.execute("PRAGMA integrity_check").fetchone()[0])
