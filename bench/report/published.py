"""Published numbers from the papers (``leaderboards/published/*.yaml``) and the paper-vs-reproduced table.

File format (see leaderboards/README.md): ``citation``, ``reproduce_on`` (paper dataset -> our dataset
names), ``columns`` (dataset, metric, unit of the printed number) and ``rows`` (method, base, budget,
optional table/variant/printed/compare, ``values`` in column order, as printed in the paper). A column may
name a ``protocol`` (glob): then only our numbers under a matching protocol are compared with it. A column
is compared with our numbers of one ``split`` only (default ``val``: a paper's tables score the tracker on
held-out videos, never the pseudolabels of the training videos, which are stored under
``train-pseudolabel``).

A row with a ``variant`` ("A1: support matching only") is an ablation row: it is compared only with our
runs of a sweep variant carrying the same code, the part before the colon ("A1"; a variant named
"A4=D2=Y3=B2=Q2" carries five codes). Rows without a variant meet only plain runs. An optional
``section`` groups ablation rows under a heading (a sub-table of the paper's table), and an optional
``versus`` names the row code the paper's claim compares it with (:mod:`bench.report.ablations`).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.report.schema import LEADERBOARDS_DIR, MetricSchema

PUBLISHED_DIR = LEADERBOARDS_DIR / "published"
# Printed unit -> factor to the store's units (fractions, metres).
PRINTED_UNITS = {"percent": 0.01, "fraction": 1.0, "centimetres": 0.01, "metres": 1.0, "count": 1.0, "fps": 1.0}
PUBLISHED_COLUMNS = ["source", "citation", "table", "method", "base", "dataset", "budget", "metric", "variant",
                     "printed", "unit", "value", "compare", "reproduce_on", "protocol", "split", "section", "order",
                     "versus"]
DEFAULT_SPLIT = "val"


def variant_code(variant: str) -> str:
    """The row code of a published ablation variant: "A1: support matching only" -> "A1" ("" for none)."""
    return str(variant or "").split(":", 1)[0].strip()


def variant_codes(variant: str) -> list[str]:
    """The codes one of our sweep variants stands for: "A4=D2=Y3=B2=Q2" -> five codes; "" -> [""].

    A variant's run from a committed results file (``bench report --include``) reads "D1, ref": it stands for D1
    too, so the ablation tables render from a results file alone."""
    name = str(variant or "")
    if name.endswith(", ref"):
        name = name[: -len(", ref")]
    return [code.strip() for code in name.split("=")] if name else [""]


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{where}: {message}")


def load_published_file(path: Path | str) -> pd.DataFrame:
    """One file -> long table, one row per (paper row, column); ``value`` is in store units."""
    path = Path(path)
    try:
        data: Any = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from error
    _require(isinstance(data, dict), str(path), "expected a mapping with citation, columns and rows")
    for key in ("citation", "columns", "rows"):
        _require(key in data, str(path), f"missing key {key!r}")
    columns = data["columns"]
    reproduce_on = data.get("reproduce_on", {})
    for i, col in enumerate(columns):
        where = f"{path}: columns[{i}]"
        _require(isinstance(col, dict) and {"dataset", "metric", "unit"} <= set(col), where,
                 "expected {dataset, metric, unit}")
        _require(col["unit"] in PRINTED_UNITS, where, f"unit {col['unit']!r} not one of {sorted(PRINTED_UNITS)}")
    records = []
    for i, row in enumerate(data["rows"]):
        where = f"{path}: rows[{i}]"
        _require(isinstance(row, dict) and "method" in row and "values" in row, where, "expected method and values")
        values = row["values"]
        _require(len(values) == len(columns), where,
                 f"{len(values)} values but {len(columns)} columns; use null for a blank cell")
        for col, printed in zip(columns, values, strict=True):
            if printed is None:
                continue
            _require(isinstance(printed, int | float), where, f"value {printed!r} is not a number")
            records.append({
                "source": path.name,
                "citation": row.get("citation", data["citation"]) if "table" not in row
                else f"{data['citation'].split(',')[0]}, {row['table']}",
                "table": row.get("table", ""),
                "method": str(row["method"]),
                "base": str(row.get("base") or ""),
                "dataset": col["dataset"],
                "budget": row.get("budget"),
                "metric": col["metric"],
                "variant": str(row.get("variant") or ""),
                "printed": float(printed),
                "unit": col["unit"],
                "value": float(printed) * PRINTED_UNITS[col["unit"]],
                "compare": bool(row.get("compare", True)),
                "reproduce_on": list(reproduce_on.get(col["dataset"], [col["dataset"]])),
                # Optional glob: only our numbers under a matching protocol are comparable ("nuscenes*").
                "protocol": str(col.get("protocol") or ""),
                # Like with like: a paper's tracking number meets our tracker's val score, not pseudolabel quality.
                "split": str(col.get("split") or DEFAULT_SPLIT),
                "section": str(row.get("section") or ""),
                "order": i,  # the row's position in its file: ablation tables keep the paper's row order
                # An ablation row's claim: the code of the row it is compared with (its sub-table's default model).
                "versus": str(row.get("versus") or ""),
            })
    return pd.DataFrame(records, columns=PUBLISHED_COLUMNS)


def load_published(directory: Path | str | None = None) -> pd.DataFrame:
    """Every ``*.yaml`` in ``directory`` (default ``leaderboards/published``), concatenated."""
    directory = Path(directory) if directory is not None else PUBLISHED_DIR
    frames = [load_published_file(p) for p in sorted(directory.glob("*.yaml"))]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PUBLISHED_COLUMNS)


def paper_comparison(published: pd.DataFrame, summary: pd.DataFrame,
                     schema: MetricSchema | None = None) -> pd.DataFrame:
    """Published value beside our mean ± std for the same (method, base, budget, metric).

    A published row is matched on each of its ``reproduce_on`` datasets and every protocol and split we
    stored for it, so one paper number can appear next to several of our protocols (named in the row).
    Rows with nothing stored keep empty ``ours_*`` columns ("not run"). Metric names are compared by the
    schema's canonical name, so a paper's "AMOTA" meets the devkit's stored "amota". An ablation row
    (``variant``) meets only our runs of a sweep variant with its code (see :func:`variant_codes`)."""
    schema = schema or MetricSchema.load()
    out = []
    index: dict[tuple[str, str, str, object, str, str], list[dict[Any, Any]]] = {}
    for rec in summary.to_dict("records"):
        budget = None if pd.isna(rec["budget"]) else int(rec["budget"])
        metric = schema.canonical(rec["metric"])
        for code in variant_codes(rec.get("variant") or ""):
            index.setdefault((rec["dataset"], rec["method"], rec["base"], budget, metric, code), []).append(rec)
    for rec in published.to_dict("records"):
        budget = None if rec["budget"] is None or pd.isna(rec["budget"]) else int(rec["budget"])
        code = variant_code(rec["variant"])
        matches = []
        if rec["compare"]:
            for dataset in rec["reproduce_on"]:
                matches += index.get((dataset, rec["method"], rec["base"], budget, schema.canonical(rec["metric"]),
                                      code), [])
            if rec["protocol"]:
                matches = [m for m in matches if fnmatch.fnmatchcase(m["protocol"], rec["protocol"])]
            split = str(rec.get("split") or DEFAULT_SPLIT)  # frames of older callers have no split column
            matches = [m for m in matches if m["split"] == split]
        base_row = {k: rec.get(k, "") for k in ("citation", "table", "method", "base", "variant", "metric", "printed",
                                                "value", "compare", "section", "order", "versus")}
        base_row.update(paper_dataset=rec["dataset"], paper_protocol=rec["protocol"], budget=budget)
        if not matches:
            out.append(base_row | {"dataset": "", "protocol": "", "split": "", "ours_mean": float("nan"),
                                   "ours_std": float("nan"), "n": 0, "our_variant": "", "ours_seeds": {}})
        for m in matches:
            out.append(base_row | {"dataset": m["dataset"], "protocol": m["protocol"], "split": m["split"],
                                   "ours_mean": m["mean"], "ours_std": m["std"], "n": int(m["n"]),
                                   "our_variant": str(m.get("variant") or ""),
                                   "ours_seeds": dict(m["seeds"]) if isinstance(m.get("seeds"), dict) else {}})
    return pd.DataFrame(out)
