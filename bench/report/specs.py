"""Named result tables (``leaderboards/tables/*.yaml``): chosen rows x (dataset, protocol, metric) columns.

A leaderboard (:mod:`bench.report.tables`) shows every method of one (dataset, protocol, metric); a paper's
main table instead puts a few chosen cells side by side across datasets and protocols (Sparse3DTrack
Table 1: sparse, Sparse3DTrack and oracle, KITTI and nuScenes metrics). A spec names them:

```yaml
title: Sparse3DTrack main table
split: val                                   # optional, default val
rows:                                        # method, base (optional), budget (null: no budget), variant, label
  - {method: sparse, base: centertrack, budget: 4, label: Sparse}
columns:                                     # one group per (dataset, protocol), metrics in order
  - {dataset: synth-kitti, protocol: kitti-2d, metrics: [MOTA, IDF1]}
gap_closed: {row: sparse3dtrack, lower: sparse, upper: oracle}   # optional, rows named by method
published: sparse3dtrack_table1    # optional: a file of leaderboards/published; a row's ``published`` names its row
compare_to: sparse3dtrack          # optional: per row, the paired difference row - this method on the same base
```

A row may name ``instead`` (and ``instead_label``): a method shown in its place wherever the store has runs of it
on the row's base and budget (Table 1's SAM2-role rows give way to ``sam2+...`` run with real SAM 2 weights).

Each cell is the mean ± std over ok seeds from :func:`bench.report.tables.summarize`; ``gap_closed`` adds
a line with (row - lower) / (upper - lower) per column (the share of the gap between the bounds a method
closes) with its 95 % interval (seeded bootstrap over seeds), and a line with the paired difference
row - lower over their shared seeds with its 95 % paired t interval (:mod:`bench.report.stats`).

A table with several base trackers (Sparse3DTrack's Table 1: CenterTrack and DEFT halves) gives each row its
``base``; ``compare_to`` then pairs each row with the named method *on the same base* (one interval per row and
column), and ``published`` puts the paper's number of the row's ``published`` name (same base and budget; a
column meets a published column of the same metric whose dataset it reproduces and whose protocol glob it
matches) under each row, in display units.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.report.published import PUBLISHED_DIR, load_published_file
from bench.report.schema import LEADERBOARDS_DIR, MISSING, MetricSchema
from bench.report.stats import GAP_METHOD, PAIRED_METHOD, Interval, format_interval, gap_closed, paired_difference
from bench.report.tables import Cell, budget_label

TABLES_DIR = LEADERBOARDS_DIR / "tables"
REFERENCE_VARIANT = "ref"  # what bench.results_file calls the runs of an included results file
INCLUDED_MARK = " †"  # a cell filled from an included results file, not a local run


@dataclass(frozen=True)
class SpecRow:
    method: str
    base: str = ""
    budget: int | None = None
    variant: str = ""
    label: str = ""
    published: str = ""  # the paper's name of this row in the spec's published file ("" : none)
    # Another method that takes this row's place where the store has runs of it (same base and budget): Table 1's
    # SAM2 role rows give way to SAM 2 itself when a user ran it with real weights.
    instead: str = ""
    instead_label: str = ""


@dataclass(frozen=True)
class SpecColumn:
    dataset: str
    protocol: str
    metric: str


@dataclass
class TableSpec:
    name: str
    title: str
    rows: list[SpecRow]
    columns: list[SpecColumn]
    split: str = "val"
    gap_closed: dict[str, str] | None = None
    notes: str = ""
    published: str = ""  # stem of a leaderboards/published file
    compare_to: str = ""  # a method of the rows: each row's paired difference against it on the same base


@dataclass
class SpecTable:
    """A spec filled from the store: ``cells[(row index, column index)]`` (absent: nothing stored)."""

    spec: TableSpec
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)
    gap: list[float | None] | None = None
    gap_intervals: list[Interval | None] | None = None  # per column, beside ``gap``
    diffs: list[Interval | None] | None = None  # per column: paired difference row - lower
    paper: dict[int, list[float | None]] = field(default_factory=dict)  # row -> published value per column
    versus: dict[int, list[Interval | None]] = field(default_factory=dict)  # row -> row - compare_to per column
    included: set[tuple[int, int]] = field(default_factory=set)  # cells from an included results file


def _fail(where: str, message: str) -> None:
    raise ValueError(f"{where}: {message}")


def load_table_spec(path: Path | str) -> TableSpec:
    """Parse and check one spec file; errors name the file and the entry."""
    path = Path(path)
    try:
        data: Any = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from error
    if not (isinstance(data, dict) and isinstance(data.get("rows"), list) and isinstance(data.get("columns"), list)):
        _fail(str(path), "expected a mapping with lists under 'rows' and 'columns'")
    rows = []
    for i, row in enumerate(data["rows"]):
        where = f"{path}: rows[{i}]"
        if not isinstance(row, dict) or "method" not in row or "budget" not in row:
            _fail(where, "expected {method, budget[, base, variant, label]} (budget null: no budget)")
        budget = row["budget"]
        if budget is not None and (not isinstance(budget, int) or budget < 1):
            _fail(where, f"budget must be a positive integer or null, got {budget!r}")
        rows.append(SpecRow(method=str(row["method"]), base=str(row.get("base") or ""), budget=budget,
                            variant=str(row.get("variant") or ""), label=str(row.get("label") or row["method"]),
                            published=str(row.get("published") or ""), instead=str(row.get("instead") or ""),
                            instead_label=str(row.get("instead_label") or row.get("instead") or "")))
    columns = []
    for i, col in enumerate(data["columns"]):
        where = f"{path}: columns[{i}]"
        if not isinstance(col, dict) or not {"dataset", "protocol", "metrics"} <= set(col) \
                or not isinstance(col["metrics"], list) or not col["metrics"]:
            _fail(where, "expected {dataset, protocol, metrics: [...]}")
        columns += [SpecColumn(str(col["dataset"]), str(col["protocol"]), str(m)) for m in col["metrics"]]
    gap = data.get("gap_closed")
    if gap is not None:
        methods = {r.method for r in rows}
        if not isinstance(gap, dict) or set(gap) != {"row", "lower", "upper"} \
                or not all(str(v) in methods for v in gap.values()):
            _fail(f"{path}: gap_closed", f"expected {{row, lower, upper}} naming methods of the rows {sorted(methods)}")
        gap = {k: str(v) for k, v in gap.items()}
    published = str(data.get("published") or "")
    if published and not (PUBLISHED_DIR / f"{published}.yaml").is_file():
        _fail(f"{path}: published", f"no file {published}.yaml in {PUBLISHED_DIR}")
    compare_to = str(data.get("compare_to") or "")
    if compare_to and compare_to not in {r.method for r in rows}:
        _fail(f"{path}: compare_to", f"{compare_to!r} is not the method of any row")
    return TableSpec(name=path.stem, title=str(data.get("title") or path.stem), rows=rows, columns=columns,
                     split=str(data.get("split") or "val"), gap_closed=gap, notes=str(data.get("notes") or ""),
                     published=published, compare_to=compare_to)


def load_table_specs(directory: Path | str | None = None) -> list[TableSpec]:
    """Every ``*.yaml`` in ``directory`` (default ``leaderboards/tables``), by file name."""
    directory = Path(directory) if directory is not None else TABLES_DIR
    return [load_table_spec(p) for p in sorted(directory.glob("*.yaml"))] if directory.is_dir() else []


def fill_table(spec: TableSpec, summary: pd.DataFrame, schema: MetricSchema | None = None) -> SpecTable:
    """The spec's cells from ``summary`` (:func:`bench.report.tables.summarize`); metric names are compared
    by the schema's canonical name (the devkit's "amota" is AMOTA)."""
    schema = schema or MetricSchema.load()
    index: dict[tuple[Any, ...], Cell] = {}
    variants = summary["variant"] if "variant" in summary else pd.Series("", index=summary.index, dtype=object)
    for rec, variant in zip(summary.to_dict("records"), variants.fillna(""), strict=True):
        if rec["split"] != spec.split:
            continue
        budget = None if pd.isna(rec["budget"]) else int(rec["budget"])
        key = (rec["dataset"], rec["protocol"], schema.canonical(str(rec["metric"])), rec["method"],
               str(rec["base"] or ""), budget, str(variant))
        seeds = rec.get("seeds")
        index[key] = Cell(float(rec["mean"]), float(rec["std"]), int(rec["n"]),
                          dict(seeds) if isinstance(seeds, dict) else {})
    # A column nothing in the store fills is left out (a store from before a protocol existed, e.g. kitti-2d-scaled):
    # the spec lists what to show where it exists.
    def lookup(col: SpecColumn, row: SpecRow) -> tuple[Cell | None, bool]:
        """The row's cell, else the same cell of an included results file (variant "ref": bench report/table
        --include), flagged as such: a committed results file renders the table without re-running."""
        key = (col.dataset, col.protocol, schema.canonical(col.metric), row.method, row.base, row.budget)
        if (*key, row.variant) in index:
            return index[(*key, row.variant)], False
        ref = index.get((*key, f"{row.variant}, ref" if row.variant else REFERENCE_VARIANT))
        return ref, ref is not None

    def filled(col: SpecColumn) -> bool:
        return any(lookup(col, row)[0] is not None for row in spec.rows)

    def ran(method: str, row: SpecRow) -> bool:
        return any(key[3:6] == (method, row.base, row.budget) for key in index)

    rows = [replace(row, method=row.instead, label=row.instead_label, instead="", instead_label="")
            if row.instead and ran(row.instead, row) else row for row in spec.rows]
    spec = replace(spec, rows=rows)
    spec = replace(spec, columns=[col for col in spec.columns if filled(col)])
    table = SpecTable(spec)
    for i, row in enumerate(spec.rows):
        for j, col in enumerate(spec.columns):
            cell, included = lookup(col, row)
            if cell is not None:
                table.cells[(i, j)] = cell
            if included:
                table.included.add((i, j))
    table.paper = _published_values(spec, schema)
    if spec.compare_to:
        for i, row in enumerate(spec.rows):
            ref = next((k for k, r in enumerate(spec.rows) if r.method == spec.compare_to and r.base == row.base), None)
            if ref is None or ref == i:
                continue
            table.versus[i] = [None if (i, j) not in table.cells or (ref, j) not in table.cells
                               else paired_difference(table.cells[(i, j)].seeds, table.cells[(ref, j)].seeds)
                               for j in range(len(spec.columns))]
    if spec.gap_closed:
        pick = {name: next(i for i, r in enumerate(spec.rows) if r.method == method)
                for name, method in spec.gap_closed.items()}
        table.gap, table.gap_intervals, table.diffs = [], [], []
        for j in range(len(spec.columns)):
            ours, lower, upper = (table.cells.get((pick[k], j)) for k in ("row", "lower", "upper"))
            span = None if lower is None or upper is None else upper.mean - lower.mean
            table.gap.append(None if ours is None or lower is None or span is None or math.isclose(span, 0.0)
                             else (ours.mean - lower.mean) / span)
            table.gap_intervals.append(None if table.gap[-1] is None or ours is None or lower is None or upper is None
                                       else gap_closed(ours.seeds, lower.seeds, upper.seeds))
            table.diffs.append(None if ours is None or lower is None else paired_difference(ours.seeds, lower.seeds))
    return table


def _published_values(spec: TableSpec, schema: MetricSchema) -> dict[int, list[float | None]]:
    """Row -> the paper's value (store units) per column, for rows that name a ``published`` row."""
    if not spec.published:
        return {}
    paper = load_published_file(PUBLISHED_DIR / f"{spec.published}.yaml")
    out: dict[int, list[float | None]] = {}
    for i, row in enumerate(spec.rows):
        if not row.published:
            continue
        values: list[float | None] = []
        for col in spec.columns:
            found = None
            for rec in paper.to_dict("records"):
                budget = None if rec["budget"] is None or pd.isna(rec["budget"]) else int(rec["budget"])
                if (rec["method"] == row.published and rec["base"] == row.base and budget == row.budget
                        and col.dataset in rec["reproduce_on"] and rec["split"] == spec.split
                        and schema.canonical(rec["metric"]) == schema.canonical(col.metric)
                        and (not rec["protocol"] or fnmatch.fnmatchcase(col.protocol, rec["protocol"]))):
                    found = float(rec["value"])
                    break
            values.append(found)
        if any(v is not None for v in values):
            out[i] = values
    return out


def spec_view(table: SpecTable, schema: MetricSchema) -> dict[str, Any]:
    """Header groups, metric headers and formatted rows, for the HTML page and the Markdown export."""
    spec = table.spec
    groups: list[dict[str, Any]] = []
    for col in spec.columns:
        label = f"{col.dataset} · {col.protocol}"
        if groups and groups[-1]["label"] == label:
            groups[-1]["span"] += 1
        else:
            groups.append({"label": label, "span": 1})
    headers = [schema.info(c.metric, c.protocol).header for c in spec.columns]
    rows = []
    for i, row in enumerate(spec.rows):
        cells = []
        for j, col in enumerate(spec.columns):
            cell = table.cells.get((i, j))
            info = schema.info(col.metric, col.protocol)
            cells.append({"text": MISSING if cell is None else info.format(cell.mean, cell.std)
                          + (INCLUDED_MARK if (i, j) in table.included else ""),
                          "n": 0 if cell is None else cell.n})
        budget = budget_label(row.budget)
        infos = [schema.info(col.metric, col.protocol) for col in spec.columns]
        paper = table.paper.get(i)
        versus = table.versus.get(i)
        rows.append({"label": row.label, "base": row.base or MISSING, "budget": budget, "variant": row.variant,
                     "cells": cells,
                     "paper": None if paper is None else [MISSING if v is None else info.format(v)
                                                          for v, info in zip(paper, infos, strict=True)],
                     "versus": None if versus is None else [
                         MISSING if d is None else format_interval(d, info.scale, info.decimals)
                         for d, info in zip(versus, infos, strict=True)]})
    gap = diff = None
    if table.gap is not None:
        intervals = table.gap_intervals or [None] * len(table.gap)
        gap = [MISSING if g is None else f"{g:.2f}" if iv is None else format_interval(iv, signed=False)
               for g, iv in zip(table.gap, intervals, strict=True)]
    if table.diffs is not None:
        diff = []
        for col, d in zip(spec.columns, table.diffs, strict=True):
            info = schema.info(col.metric, col.protocol)
            diff.append(MISSING if d is None else format_interval(d, info.scale, info.decimals)
                        + (f" ({d.n})" if d.n else ""))
    return {"name": spec.name, "title": spec.title, "split": spec.split, "notes": spec.notes, "groups": groups,
            "paper_label": f"paper ({spec.published})" if spec.published else "",
            "included": bool(table.included),
            "versus_label": f"− {spec.compare_to} [95 % {PAIRED_METHOD}]" if spec.compare_to else "",
            "headers": headers, "rows": rows, "gap": gap, "diff": diff,
            "diff_label": "" if not spec.gap_closed else
            f"{spec.gap_closed['row']} − {spec.gap_closed['lower']} (mean difference over shared seeds, "
            f"[95 % {PAIRED_METHOD} interval], (seeds))",
            "gap_label": "gap closed" if not spec.gap_closed else
            f"gap closed: ({spec.gap_closed['row']} − {spec.gap_closed['lower']}) / "
            f"({spec.gap_closed['upper']} − {spec.gap_closed['lower']}) [95 % {GAP_METHOD}]"}


def spec_markdown(table: SpecTable, schema: MetricSchema | None = None) -> str:
    """The table as Markdown (mean ± std over seeds, display units), e.g. for docs/benchmarks.md."""
    view = spec_view(table, schema or MetricSchema.load())
    header = ["Method", "Base", "Budget"] + [f"{g} {h}" for g, h in zip(
        [g["label"] for g in view["groups"] for _ in range(g["span"])], view["headers"], strict=True)]
    lines = [f"### {view['title']} ({view['split']}; mean ± std over seeds)", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * len(view["headers"])) + "|"]
    for row in view["rows"]:
        label = row["label"] + (f" [{row['variant']}]" if row["variant"] else "")
        lines.append("| " + " | ".join([label, row["base"], row["budget"]] + [c["text"] for c in row["cells"]]) + " |")
        if row["paper"] is not None:
            lines.append("| " + " | ".join([f"↳ {view['paper_label']}", "", ""] + row["paper"]) + " |")
        if row["versus"] is not None:
            lines.append("| " + " | ".join([f"↳ {view['versus_label']}", "", ""] + row["versus"]) + " |")
    if view["diff"] is not None:
        lines.append("| " + " | ".join([view["diff_label"], "", ""] + view["diff"]) + " |")
    if view["gap"] is not None:
        lines.append("| " + " | ".join([view["gap_label"], "", ""] + view["gap"]) + " |")
    if view["included"]:
        lines += ["", f"{INCLUDED_MARK.strip()} from an included results file (`--include`), not a local run."]
    return "\n".join(lines) + "\n"
