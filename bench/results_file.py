"""Reference results that travel with the code: a store's finished runs as one small JSON file.

Result stores live on machines, and machines get lost (twice so far, with CPU-days of sweeps). A results
file keeps what a reviewer needs to compare a fresh run with ours, without re-running anything: each
finished run's identity, resolved config, manifest (code version, CPU, packages) and metrics — never
predictions or checkpoints. It is plain, sorted JSON so a diff of a committed file reads well.

    bench store export -o leaderboards/results/bounds.json --method sparse --method oracle
    bench store import leaderboards/results/bounds.json          # into the local store
    bench report --include leaderboards/results/bounds.json      # beside local runs, store untouched

A results file is input like any other: it is validated field by field and never executed.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pandas as pd

from bench.data.sequence import DataError
from bench.store import MetricRow, RunRecord, Store

FORMAT = "bench-results/1"
_RUN_FIELDS = {f.name for f in fields(RunRecord)}
_DROPPED = ("run_dir", "error")  # machine-local paths; a failed run is not exported at all


def export_results(store: Store, path: Path | str, *, methods: Iterable[str] = (), datasets: Iterable[str] = (),
                   profiles: Iterable[str] = (), per_sequence: bool = False) -> int:
    """Write the store's finished runs (optionally filtered) to ``path``; returns how many were written."""
    methods, datasets, profiles = set(methods), set(datasets), set(profiles)
    runs = [r for r in _finished_runs(store)
            if (not methods or r.method in methods) and (not datasets or r.dataset in datasets)
            and (not profiles or r.profile in profiles)]
    metrics = store.metrics_frame()
    if not per_sequence:
        metrics = metrics[metrics["seq"] == ""]
    by_run = {key: group for key, group in metrics.groupby("run_key", sort=True)}
    entries = []
    for run in sorted(runs, key=lambda r: r.key):
        record = {k: v for k, v in asdict(run).items() if k not in _DROPPED}
        rows = by_run.get(run.key)
        record["metrics"] = [] if rows is None else [
            [r.split, r.protocol, r.seq, r.metric, None if _is_nan(r.value) else float(r.value)]
            for r in rows.itertuples()]
        entries.append(record)
    payload = {"format": FORMAT, "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "source": str(store.path), "runs": entries}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True, allow_nan=False) + "\n")
    tmp.replace(path)
    return len(entries)


def read_results(path: Path | str) -> list[tuple[RunRecord, list[MetricRow]]]:
    """Parse and validate a results file; any problem is a one-line DataError naming the file."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: results file is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a bench results file ({err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{path}: not a bench results file (expected \"format\": \"{FORMAT}\")")
    if not isinstance(payload.get("runs"), list):
        raise DataError(f"{path}: \"runs\" must be a list")
    out = []
    for i, entry in enumerate(payload["runs"]):
        where = f"{path}: runs[{i}]"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object")
        metrics = entry.get("metrics", [])
        unknown = set(entry) - _RUN_FIELDS - {"metrics"}
        if unknown:
            raise DataError(f"{where}: unknown fields {sorted(unknown)}")
        try:
            run = RunRecord(**{k: v for k, v in entry.items() if k != "metrics"}, run_dir="")
            _check_run(run)
            rows = [_metric_row(row) for row in metrics]
        except (TypeError, ValueError) as err:
            raise DataError(f"{where}: {err}") from None
        run.manifest = {**run.manifest, "imported_from": path.name}
        out.append((run, rows))
    return out


def import_results(path: Path | str, store: Store, replace: bool = False) -> tuple[int, int]:
    """Add a results file's runs to ``store``; a run already there is kept unless ``replace``.
    Returns (imported, kept)."""
    entries = read_results(path)  # all validated before anything is written
    have = store.statuses()
    imported = kept = 0
    for run, rows in entries:
        if run.key in have and not replace:
            kept += 1
            continue
        store.upsert_run(run)
        store.add_metrics(run.key, rows)
        imported += 1
    return imported, kept


def frames_with_included(runs: pd.DataFrame, metrics: pd.DataFrame, files: Iterable[Path | str]
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The store's (runs, metrics) frames plus the runs of results files, labelled as references (variant
    "ref"); a local run wins over an included one with the same key. Built through a scratch store so the
    frames have the store's shape."""
    files = list(files)
    if not files:
        return runs, metrics
    with tempfile.TemporaryDirectory(prefix="bench-include-") as scratch:
        store = Store(Path(scratch) / "included.sqlite")
        for path in files:
            import_results(path, store)
        extra_runs, extra_metrics = store.runs_frame(), store.metrics_frame()
    # Included runs get their own leaderboard rows ("method [ref]"), so a fresh run sits beside ours, not pooled.
    for frame in (extra_runs, extra_metrics):
        frame["variant"] = [f"{v}, ref" if v else "ref" for v in frame["variant"].fillna("")]
    local = set(runs["key"]) if "key" in runs else set()
    extra_runs = extra_runs[~extra_runs["key"].isin(local)]
    extra_metrics = extra_metrics[~extra_metrics["run_key"].isin(local)]
    return (pd.concat([runs, extra_runs], ignore_index=True) if len(runs) else extra_runs,
            pd.concat([metrics, extra_metrics], ignore_index=True) if len(metrics) else extra_metrics)


def _finished_runs(store: Store) -> list[RunRecord]:
    keys = [k for k, status in store.statuses().items() if status == "ok"]
    return [r for r in (store.run(k) for k in keys) if r is not None]


def _check_run(run: RunRecord) -> None:
    for name, kind in (("key", str), ("method", str), ("dataset", str), ("profile", str), ("seed", int),
                       ("config", dict), ("manifest", dict)):
        if not isinstance(getattr(run, name), kind) or isinstance(getattr(run, name), bool):
            raise ValueError(f"{name} must be {kind.__name__}, got {getattr(run, name)!r}")
    if run.budget is not None and (not isinstance(run.budget, int) or isinstance(run.budget, bool)):
        raise ValueError(f"budget must be an integer or null, got {run.budget!r}")
    if run.status != "ok":
        raise ValueError(f"status {run.status!r}: a results file holds finished runs only")


def _metric_row(row: Any) -> MetricRow:
    if not (isinstance(row, list) and len(row) == 5 and all(isinstance(v, str) for v in row[:4])):
        raise ValueError(f"metric row {row!r} must be [split, protocol, seq, metric, value]")
    value = row[4]
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise ValueError(f"metric row {row!r}: value must be a number or null")
    return MetricRow(row[0], row[1], row[2], row[3], math.nan if value is None else float(value))


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
