"""``bench check``: the regression gate. Compares the store's mean over seeds with expected values.

Expected file (YAML; full description in leaderboards/README.md)::

    name: nightly-smoke
    defaults: {dataset: synth-kitti, split: val, protocol: 3d-iou}   # optional, merged into every entry
    expected:
      - {method: sparse3dtrack, base: centertrack, budget: 4, metric: MOTA, value: 0.312, tolerance: 0.021}
      - {method: interpolate, budget: 4, split: train-pseudolabel, protocol: pseudolabel, metric: Recall,
         value: 0.74, tolerance: 0.02}

``value`` and ``tolerance`` are in store units (fractions, metres). A cell is matched by its full
configuration: method, base, dataset, budget, variant and its ``set:`` overrides (a list of
``key=value`` as given to ``--set``; absent = none), so ad-hoc runs of the same method with other
``--set`` values (finished or failed) never count for it. ``base`` absent or null = a method
without a base tracker; ``budget: null`` = no budget (oracle). ``protocol``/``split`` may be left out
when the store has only one for the cell. A change in the metric's bad direction larger than the
tolerance is a regression; a larger change in the good direction is reported as ``improved`` (update
the file) but passes, unless ``two_sided: true``. Metrics with no better direction are always two-sided.

Exit codes (highest wins): 0 ok, 1 regression, 2 failed runs (or no run at all) for some expected cell,
3 nothing ran (no expected cell has any run).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.config import ConfigError
from bench.report.schema import MetricSchema
from bench.report.tables import budget_label, summarize
from bench.runner.keys import identity_overrides

EXIT_OK, EXIT_REGRESSION, EXIT_FAILED, EXIT_NOTHING_RAN = 0, 1, 2, 3
_ENTRY_KEYS = {"method", "base", "dataset", "budget", "metric", "protocol", "split", "value", "tolerance",
               "rel_tolerance", "two_sided", "note", "variant", "set"}


@dataclass(frozen=True)
class Expectation:
    method: str
    base: str  # "" = no base tracker
    dataset: str
    budget: int | None
    metric: str
    value: float
    tolerance: float  # absolute, store units
    protocol: str | None = None
    split: str | None = None
    two_sided: bool = False
    where: str = ""  # file and entry, for messages
    variant: str = ""  # a sweep variant (e.g. an ablation row); "" = the method's plain runs
    overrides: tuple[str, ...] = ()  # the cell's --set overrides, normalised (keys.identity_overrides)

    def label(self) -> str:
        who = f"{self.method} + {self.base}" if self.base else self.method
        extra = f" · {' '.join(self.overrides)}" if self.overrides else ""
        return f"{who} · {self.dataset} · {budget_label(self.budget)}{extra}"


@dataclass
class Outcome:
    expectation: Expectation
    status: str  # ok | improved | regression | failed | missing | ambiguous
    mean: float = float("nan")
    std: float = float("nan")
    n_ok: int = 0
    n_failed: int = 0
    protocol: str = ""
    split: str = ""
    detail: str = ""


def load_expected(path: Path | str) -> list[Expectation]:
    """Parse an expected-values file; errors name the file and the entry."""
    path = Path(path)
    try:
        data: Any = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such expected-values file") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("expected"), list):
        raise ValueError(f"{path}: expected a mapping with an 'expected:' list of entries")
    defaults = data.get("defaults") or {}
    out = []
    for i, raw in enumerate(data["expected"]):
        where = f"{path}: expected[{i}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a mapping, got {raw!r}")
        entry = {**defaults, **raw}
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_ENTRY_KEYS)}")
        missing = {"method", "dataset", "metric", "value"} - set(entry)
        if "budget" not in entry:
            missing.add("budget")
        if missing:
            raise ValueError(f"{where}: missing {sorted(missing)}")
        if "tolerance" not in entry and "rel_tolerance" not in entry:
            raise ValueError(f"{where}: needs 'tolerance' (absolute) or 'rel_tolerance' (fraction of value)")
        try:
            value = float(entry["value"])
            tolerance = max(float(entry.get("tolerance", 0.0)), abs(value) * float(entry.get("rel_tolerance", 0.0)))
            budget = None if entry["budget"] is None else int(entry["budget"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: value, tolerance and budget must be numbers ({error})") from None
        if not math.isfinite(value) or not math.isfinite(tolerance) or tolerance < 0:
            raise ValueError(f"{where}: value must be finite and tolerance >= 0")
        overrides = entry.get("set") or []
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise ValueError(f"{where}: 'set' must be a list of key=value overrides, e.g. [method.lr=0.01]")
        try:
            normalised = tuple(identity_overrides(overrides))
        except ConfigError as error:
            raise ValueError(f"{where}: {error}") from None
        out.append(Expectation(
            method=str(entry["method"]), base=str(entry.get("base") or ""), dataset=str(entry["dataset"]),
            budget=budget, metric=str(entry["metric"]), value=value, tolerance=tolerance,
            protocol=entry.get("protocol"), split=entry.get("split"), two_sided=bool(entry.get("two_sided", False)),
            where=where, variant=str(entry.get("variant") or ""), overrides=normalised))
    return out


def _same_budget(column: pd.Series, budget: int | None) -> pd.Series:
    return column.isna() if budget is None else (column == budget).fillna(False).astype(bool)


def _overrides_of(runs: pd.DataFrame) -> pd.Series:
    """Each run's normalised overrides as one string; None where unknown (runs stored before schema 3,
    and results files without them), which match a cell without overrides as they always did."""
    if "overrides" not in runs:
        return pd.Series([None] * len(runs), index=runs.index, dtype=object)

    def one(text: object) -> str | None:
        value: Any = json.loads(text) if isinstance(text, str) else text
        return None if value is None else json.dumps(sorted(value))

    return runs["overrides"].map(one)


def check(expectations: list[Expectation], runs: pd.DataFrame, metrics: pd.DataFrame,
          schema: MetricSchema | None = None) -> tuple[list[Outcome], int]:
    """Compare each expectation with the store; returns the outcomes and the exit code.

    An expectation sees only the runs of its full configuration (see the module docstring); with no
    runs frame (metrics alone), metrics are matched by their identity columns as before."""
    schema = schema or MetricSchema.load()
    runs = runs.assign(base=runs["base"].fillna("").astype(str)) if not runs.empty else runs
    run_overrides = _overrides_of(runs) if not runs.empty else None
    summaries: dict[frozenset[str] | None, pd.DataFrame] = {}
    outcomes = []
    for exp in expectations:
        n_failed = 0
        keys: frozenset[str] | None = None
        if not runs.empty and "key" in runs:
            run_variant = runs["variant"].fillna("").astype(str) if "variant" in runs else ""
            wanted = json.dumps(sorted(exp.overrides))
            assert run_overrides is not None  # runs is not empty here
            same_set = (run_overrides == wanted) | (run_overrides.isna() & (not exp.overrides))
            cell_runs = runs[(runs["method"] == exp.method) & (runs["base"] == exp.base)
                             & (runs["dataset"] == exp.dataset) & _same_budget(runs["budget"], exp.budget)
                             & (run_variant == exp.variant) & same_set.astype(bool)]
            n_failed = int((cell_runs["status"] == "failed").sum())
            keys = frozenset(cell_runs["key"].astype(str))
        if keys not in summaries:
            summaries[keys] = summarize(metrics if keys is None else metrics[metrics["run_key"].isin(keys)])
        summary = summaries[keys]
        # Compare names as the schema knows them: an expected "AMOTA" matches the devkit's stored "amota".
        metric_names = summary["metric"].map(schema.canonical)
        # Ablation variants share the method's name: an expectation names the one it means ("" = plain runs).
        rows = summary[(summary["method"] == exp.method) & (summary["base"] == exp.base)
                       & (summary["dataset"] == exp.dataset) & _same_budget(summary["budget"], exp.budget)
                       & (summary["variant"] == exp.variant) & (metric_names == schema.canonical(exp.metric))]
        if exp.protocol is not None:
            rows = rows[rows["protocol"] == exp.protocol]
        if exp.split is not None:
            rows = rows[rows["split"] == exp.split]
        if len(rows) > 1:
            found = ", ".join(f"{p}/{s}" for p, s in zip(rows["protocol"], rows["split"], strict=True))
            outcomes.append(Outcome(exp, "ambiguous", n_failed=n_failed,
                                    detail=f"{exp.where}: several protocol/split ({found}); name protocol and split"))
            continue
        if rows.empty:
            outcomes.append(Outcome(exp, "failed" if n_failed else "missing", n_failed=n_failed,
                                    detail="all runs failed" if n_failed else "no run"))
            continue
        row = rows.iloc[0]
        mean, std, n_ok = float(row["mean"]), float(row["std"]), int(row["n"])
        info = schema.info(exp.metric, str(row["protocol"]))
        diff = mean - exp.value
        beyond = abs(diff) > exp.tolerance + 1e-12
        worse = (diff < 0) if info.higher_is_better else (diff > 0)
        if not beyond:
            status = "ok"
        elif info.higher_is_better is None or exp.two_sided or worse:
            status = "regression"
        else:
            status = "improved"
        if n_failed:
            status = "failed"
        outcomes.append(Outcome(exp, status, mean, std, n_ok, n_failed, str(row["protocol"]), str(row["split"])))
    return outcomes, exit_code(outcomes)


def exit_code(outcomes: list[Outcome]) -> int:
    statuses = {o.status for o in outcomes}
    if not outcomes or statuses <= {"missing"}:
        return EXIT_NOTHING_RAN
    if statuses & {"failed", "missing", "ambiguous"}:
        return EXIT_FAILED
    if "regression" in statuses:
        return EXIT_REGRESSION
    return EXIT_OK


def without_undefined_motp(metrics: pd.DataFrame) -> pd.DataFrame:
    """Drop MOTP from every cell (method, base, dataset, budget, variant, split, protocol, seq) where a run matched
    nothing.

    Such a run's MOTP is a mean over no matches, which the metric code reports as 0 (TrackEval's convention): an
    expectation built on it, or on the other seeds alone, flips whenever the next run of that cell matches nothing,
    or something.
    """
    cell = ["method", "base", "dataset", "budget", "variant", "split", "protocol", "seq"]
    no_match = metrics[(metrics["metric"] == "TP") & (metrics["value"] == 0)]
    undefined = pd.MultiIndex.from_frame(metrics[cell].astype(str)).isin(
        pd.MultiIndex.from_frame(no_match[cell].astype(str)))
    return metrics[~((metrics["metric"] == "MOTP").to_numpy() & undefined)]


def expected_from_store(runs: pd.DataFrame, metrics: pd.DataFrame, *, k: float = 3.0, min_tolerance: float = 0.01,
                        dataset: str | None = None, protocol: str | None = None,
                        metrics_only: list[str] | None = None, methods: list[str] | None = None,
                        split: str | None = None) -> dict[str, Any]:
    """An expected-values document from the store: value = mean over seeds, tolerance = max(k·std, floor).

    k = 3 seed standard deviations keeps false alarms rare for a mean of the same number of seeds;
    the floor covers cells run with a single seed (no std). MOTP is left out where it is undefined for some run."""
    summary = summarize(without_undefined_motp(metrics))
    if dataset:
        summary = summary[summary["dataset"] == dataset]
    if protocol:
        summary = summary[summary["protocol"] == protocol]
    if metrics_only:
        summary = summary[summary["metric"].isin(metrics_only)]
    if methods:
        summary = summary[summary["method"].isin(methods)]
    if split:
        summary = summary[summary["split"] == split]
    entries = []
    for r in summary.to_dict("records"):
        std = 0.0 if math.isnan(r["std"]) else float(r["std"])
        entry = {
            "method": r["method"], "base": r["base"] or None, "dataset": r["dataset"],
            "budget": None if pd.isna(r["budget"]) else int(r["budget"]), "protocol": r["protocol"],
            "split": r["split"], "metric": r["metric"], "value": round(float(r["mean"]), 6),
            "tolerance": round(max(k * std, min_tolerance), 6),
            "note": f"{int(r['n'])} seed(s), std {std:.4g}",
        }
        if r.get("variant"):
            entry["variant"] = r["variant"]
        entries.append(entry)
    return {"name": "generated", "expected": entries}
