"""What ``bench run`` prints at the end: a short summary beside the bounds, or every metric with ``--verbose``.

The summary shows, per (split, protocol) the run was scored under, the protocol's headline metric and the
next ones of its order in ``leaderboards/metrics.yaml`` (``SUMMARY_METRICS`` in all), in display units. Where
the store holds the bounds for the same dataset, seed, profile and base tracker (``sparse`` at the same budget,
``oracle`` with all labels; plain runs, not sweep variants), their values stand beside it, so a user sees at once
where the run falls between the two. An undefined value prints "-".
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.table import Table

from bench.report.schema import MISSING, MetricSchema
from bench.report.tables import budget_label
from bench.store import Store

SUMMARY_METRICS = 3  # the headline and the next two of the protocol's order
BOUNDS = ("sparse", "oracle")


def _overall(metrics: pd.DataFrame, key: str) -> dict[tuple[str, str], dict[str, float]]:
    frame = metrics[(metrics["run_key"] == key) & (metrics["seq"] == "")]
    out: dict[tuple[str, str], dict[str, float]] = {}
    for split, protocol, metric, value in zip(frame["split"], frame["protocol"], frame["metric"], frame["value"],
                                              strict=True):
        out.setdefault((str(split), str(protocol)), {})[str(metric)] = float(value)
    return out


def bound_runs(runs: pd.DataFrame, record: Any) -> dict[str, str]:
    """Keys of the latest finished sparse (same budget) and oracle runs matching ``record``'s dataset, seed,
    profile and base tracker; a bound the run itself is, or one never run, is left out."""
    found: dict[str, str] = {}
    if runs.empty:
        return found
    ok = runs[(runs["status"] == "ok") & (runs["dataset"] == record.dataset) & (runs["seed"] == record.seed)
              & (runs["profile"] == record.profile) & (runs["variant"].fillna("") == "")]
    same_base = ok["base"].isna() if record.base is None else ok["base"] == record.base
    ok = ok[same_base]
    for method in BOUNDS:
        if method == record.method:
            continue
        cand = ok[ok["method"] == method]
        if method == "sparse":
            cand = cand[cand["budget"] == record.budget] if record.budget is not None else cand.iloc[0:0]
        if not cand.empty:
            by = "finished_at" if "finished_at" in cand else "key"
            found[method] = str(cand.sort_values(by, kind="stable").iloc[-1]["key"])
    return found


def summary_table(store: Store, key: str, *, verbose: bool = False, schema: MetricSchema | None = None) -> Table:
    """The end-of-run table for run ``key``: headline metrics beside the bounds, or (verbose) every metric."""
    schema = schema or MetricSchema.load()
    record = store.run(key)
    if record is None:
        raise KeyError(key)
    metrics = store.metrics_frame()
    ours = _overall(metrics, key)
    bounds = {} if verbose else bound_runs(store.runs_frame(), record)
    bound_values = {method: _overall(metrics, k) for method, k in bounds.items()}
    title = (f"{record.method}{' + ' + record.base if record.base else ''} · {record.dataset} · "
             f"budget {budget_label(record.budget)} · seed {record.seed} · {record.profile}")
    table = Table(title=("all metrics (overall): " if verbose else "summary: ") + title)
    for column in ("split", "protocol", "metric", "this run"):
        table.add_column(column, justify="right" if column == "this run" else "left")
    labels = {"sparse": f"sparse@{budget_label(record.budget)}", "oracle": "oracle (all labels)"}
    for method in bound_values:
        table.add_column(labels[method], justify="right")
    for (split, protocol), values in sorted(ours.items()):
        names = schema.metric_order(protocol, set(values))
        if not verbose:
            names = [n for n in names if "/" not in n][:SUMMARY_METRICS]
        for name in names:
            info = schema.info(name, protocol)
            cells = [info.format(_finite(values.get(name)))]
            cells += [info.format(_finite(bound_values[m].get((split, protocol), {}).get(name))) for m in bound_values]
            table.add_row(split, protocol, info.header, *cells)
    if not ours:
        table.add_row(MISSING, MISSING, "no metrics stored", MISSING, *[MISSING] * len(bound_values))
    return table


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value
