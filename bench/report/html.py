"""``bench report``: a self-contained, offline HTML site from the results store.

Pages: ``index.html`` (leaderboards per dataset/protocol/split, budget curves, speed/accuracy plots,
failed runs), ``runs.html`` (every run), ``runs/<key>.html`` (one run: metrics, resolved config,
manifest), ``paper.html`` (published numbers beside ours), ``ablations.html`` (a paper's ablation
tables, rows = variants, the published numbers beside ours per protocol) and ``tables.html`` (the named
tables of ``leaderboards/tables/``, e.g. a paper's main table). No CDN: CSS and the sorting script are
inline, plots are base64 SVG images. Jinja2 autoescaping escapes every stored string, and per-run page
names are derived from the run key so that no name can leave the output folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jinja2
import pandas as pd

from bench.metrics.depth_error import RANGE_BINS
from bench.ownership import claim_dir
from bench.report import plots
from bench.report.ablations import ABLATION_SPLIT, ablation_claims, claim_cells
from bench.report.published import load_published, paper_comparison
from bench.report.schema import MISSING, MetricSchema, signed
from bench.report.specs import TableSpec, fill_table, load_table_specs, spec_view
from bench.report.tables import (
    FULL,
    UNSURE_LEGEND,
    UNSURE_MARK,
    Leaderboard,
    budget_label,
    build_leaderboards,
    lead_text,
    summarize,
    text_or_missing,
)

TEMPLATES = Path(__file__).parent / "templates"
_SAFE_KEY = re.compile(r"[A-Za-z0-9_-]{1,80}")


def run_page_name(key: str) -> str:
    """File name of a run's page: the key itself when it is plain, else a hash of it (never a path)."""
    if _SAFE_KEY.fullmatch(key):
        return f"{key}.html"
    return "run-" + hashlib.sha256(key.encode()).hexdigest()[:20] + ".html"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=False)


def _num(value: Any) -> str:
    """A number for a data-value attribute; blank when missing so the sorter puts it last."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return repr(float(value))


def _b64(svg: str) -> str:
    return base64.b64encode(svg.encode()).decode()


def _slug(*parts: str) -> str:
    # Element ids from user strings: hashed, so they are valid and unique whatever the names hold.
    return "t" + hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:12]


def _table_view(board: Leaderboard, reference: frozenset[str]) -> dict[str, Any]:
    rows = []
    for row in board.rows:
        cells = []
        for budget in board.budgets:
            cell = board.cells.get((row, budget))
            cells.append({
                "text": board.cell_text(row, budget),
                "value": "" if cell is None else _num(board.info.shown(cell.mean)),
                "best": (row, budget) in board.best,
                "unsure": (row, budget) in board.unsure,
                "n": 0 if cell is None else cell.n,
            })
        rows.append({"method": row[0], "base": text_or_missing(row[1]), "reference": row[0] in reference,
                     "cells": cells})
    return {
        "id": _slug(board.dataset, board.protocol, board.split, board.metric),
        "header": board.info.header + (" — higher is better" if board.info.higher_is_better
                                       else " — lower is better" if board.info.higher_is_better is False else ""),
        "budgets": [budget_label(b) for b in board.budgets],
        "rows": rows,
        "leads": [f"{budget_label(b)}: {lead_text(board, b)}" for b in board.budgets if b in board.leads],
        "unsure": bool(board.unsure), "legend": UNSURE_LEGEND, "mark": UNSURE_MARK,
    }


def _speed_series(board: Leaderboard, runs: pd.DataFrame) -> dict[str, list[tuple[str, float, float]]]:
    """Per method (+ base): (budget label, mean FPS over ok seeds, headline mean) for cells with a measured FPS."""
    if runs.empty or "fps" not in runs:
        return {}
    ok = runs[(runs["status"] == "ok") & (runs["dataset"] == board.dataset) & runs["fps"].notna()]
    if ok.empty:
        return {}
    ok = ok.assign(base=ok["base"].fillna("").astype(str))
    fps = ok.groupby(["method", "base", "budget"], dropna=False)["fps"].mean()
    series: dict[str, list[tuple[int | None, float, float]]] = {}
    for key, value in fps.items():
        method, base, budget = cast(tuple[str, str, Any], key)
        b = None if pd.isna(budget) else int(budget)
        cell = board.cells.get(((str(method), str(base)), b))
        if cell is not None and value > 0:
            label = f"{method} + {base}" if base else str(method)
            series.setdefault(label, []).append((b, float(value), board.info.shown(cell.mean)))
    # Points of a method in budget order, so its line reads as "more labels ->".
    return {label: [(budget_label(b), x, y) for b, x, y in sorted(points, key=lambda p: (p[0] is None, p[0] or 0))]
            for label, points in sorted(series.items())}


@dataclass
class ReportResult:
    index: Path
    pages: int
    seconds: float


def render_report(runs: pd.DataFrame, metrics: pd.DataFrame, out_dir: Path | str, *,
                  schema: MetricSchema | None = None, published: pd.DataFrame | None = None,
                  source: str = "the results store", table_specs: list[TableSpec] | None = None) -> ReportResult:
    """Write the site for ``runs`` (Store.runs_frame) and ``metrics`` (Store.metrics_frame) into ``out_dir``."""
    start = time.perf_counter()
    schema = schema or MetricSchema.load()
    published = load_published() if published is None else published
    table_specs = load_table_specs() if table_specs is None else table_specs
    out = claim_dir(Path(out_dir), "report", "-o", _legacy_report)  # never writes into a folder it did not make
    (out / "runs").mkdir(parents=True, exist_ok=True)
    env = _environment()
    common = {"source": source, "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "full": FULL}

    summary = summarize(metrics)
    boards = build_leaderboards(summary, schema)
    pages = [_write(out / "index.html", env.get_template("index.html.j2").render(
        title="bench leaderboards", root="", **common, **_index_view(boards, runs, schema)))]
    pages.append(_write(out / "runs.html", env.get_template("runs.html.j2").render(
        title="All runs", root="", runs=_runs_view(runs), **common)))
    comparison = paper_comparison(published, summary, schema)
    pages.append(_write(out / "paper.html", env.get_template("paper.html.j2").render(
        title="Paper vs reproduced", root="", groups=_paper_view(comparison, schema), **common)))
    pages.append(_write(out / "ablations.html", env.get_template("ablations.html.j2").render(
        title="Ablations: paper vs reproduced", root="", groups=ablation_view(comparison, schema), **common)))
    pages.append(_write(out / "tables.html", env.get_template("tables.html.j2").render(
        title="Tables", root="", tables=[spec_view(fill_table(spec, summary, schema), schema) for spec in table_specs],
        **common)))
    run_template = env.get_template("run.html.j2")
    by_run = _metrics_by_run(metrics)
    for record in runs.to_dict("records"):
        html = run_template.render(root="../", **common, **_run_view(record, by_run.get(record["key"], []), schema))
        pages.append(_write(out / "runs" / run_page_name(str(record["key"])), html))
    return ReportResult(index=out / "index.html", pages=len(pages), seconds=time.perf_counter() - start)


def _legacy_report(folder: Path) -> bool:
    """A site from before the ownership marker: bench's own page set is there."""
    return all((folder / page).is_file() for page in ("index.html", "runs.html", "paper.html"))


def _write(path: Path, text: str) -> Path:
    # Plain writes: the site is regenerated as a whole, and a rename per page doubled the file-system calls.
    path.write_text(text, encoding="utf-8")
    return path


def _index_view(boards: list[Leaderboard], runs: pd.DataFrame, schema: MetricSchema) -> dict[str, Any]:
    sections: dict[tuple[str, str, str], dict[str, Any]] = {}
    for board in boards:
        key = (board.dataset, board.protocol, board.split)
        if key not in sections:  # boards come headline-first within a section
            spec = schema.protocol(board.protocol)
            speed = _speed_series(board, runs)
            sections[key] = {
                "id": _slug(*key), "dataset": board.dataset, "protocol": board.protocol, "split": board.split,
                "title": spec.title, "headline": board.info.display, "tables": [],
                "curve": _b64(plots.budget_curve_svg(board)), "by_range": "",
                "speed": _b64(plots.speed_accuracy_svg(speed, "frames per second", board.info.header,
                                                       f"{board.dataset} · {board.protocol}")) if speed else "",
            }
        sections[key]["tables"].append(_table_view(board, schema.reference_methods))
    # Depth error by range: one plot across the range-bin boards, beside the depth-error tables.
    for key, section in sections.items():
        if section["protocol"] == "depth-error":
            bins = [b for name, _, _ in RANGE_BINS for b in boards
                    if (b.dataset, b.protocol, b.split) == key and b.metric == name]
            if bins:
                section["by_range"] = _b64(plots.depth_by_range_svg(bins, f"{key[0]} · depth error by range"))
    statuses = runs["status"].value_counts().to_dict() if not runs.empty else {}
    total = int(sum(statuses.values()))
    failed = [] if runs.empty else [
        {"method": r["method"], "base": text_or_missing(r["base"]), "dataset": r["dataset"],
         "budget": budget_label(None if pd.isna(r["budget"]) else int(r["budget"])), "seed": r["seed"],
         "error": (str(r["error"] or "").strip().splitlines() or [""])[-1][:200],
         "page": run_page_name(str(r["key"]))}
        for r in runs[runs["status"] == "failed"].to_dict("records")]
    counts = {"total": total, "ok": int(statuses.get("ok", 0)), "failed": int(statuses.get("failed", 0))}
    counts["other"] = total - counts["ok"] - counts["failed"]
    return {"sections": list(sections.values()), "counts": counts, "failed": failed}


def _fmt(value: Any, digits: int) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def _runs_view(runs: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for r in runs.to_dict("records"):
        budget = None if pd.isna(r["budget"]) else int(r["budget"])
        out.append({
            "key": r["key"], "page": run_page_name(str(r["key"])), "method": r["method"],
            "base": text_or_missing(r["base"]),
            "variant": r.get("variant") or "",
            "dataset": r["dataset"], "budget": budget_label(budget), "budget_value": "" if budget is None else budget,
            "seed": r["seed"], "profile": r["profile"], "status": r["status"],
            "wall": _fmt(r["wall_s"], 1), "wall_value": _num(r["wall_s"]),
            "fps": _fmt(r["fps"], 1), "fps_value": _num(r["fps"]),
        })
    return out


def _metrics_by_run(metrics: pd.DataFrame) -> dict[str, list[tuple[str, str, str, str, float]]]:
    # Plain tuples grouped once: building 1000 run pages from pandas slices would dominate the run time.
    by_run: dict[str, list[tuple[str, str, str, str, float]]] = {}
    if metrics.empty:
        return by_run
    columns = [metrics[c].tolist() for c in ("run_key", "split", "protocol", "seq", "metric", "value")]
    for key, split, protocol, seq, metric, value in zip(*columns, strict=True):
        by_run.setdefault(key, []).append((split, protocol, seq, metric, value))
    return by_run


def _pretty_json(text: Any) -> str:
    try:
        data = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError:
        return str(text)
    return json.dumps(data, indent=2, sort_keys=True, default=str)


def _run_view(record: dict[Any, Any], rows: list[tuple[str, str, str, str, float]],
              schema: MetricSchema) -> dict[str, Any]:
    budget = None if pd.isna(record["budget"]) else int(record["budget"])
    when = record.get("started_at")
    fields = [
        ("key", record["key"]), ("method", record["method"]), ("variant", text_or_missing(record.get("variant"))),
        ("base", text_or_missing(record["base"])),
        ("dataset", record["dataset"]), ("budget", budget_label(budget)), ("seed", record["seed"]),
        ("profile", record["profile"]), ("protocol version", record["protocol_version"]),
        ("status", record["status"]), ("device", record["device"]),
        ("started", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when)) if when and not pd.isna(when) else ""),
        ("wall time (s)", _fmt(record["wall_s"], 2)), ("peak memory (MB)", _fmt(record["peak_mem_mb"], 0)),
        ("FPS", _fmt(record["fps"], 2)), ("run folder", record["run_dir"]),
    ]
    overall: list[dict[str, Any]] = []
    per_seq: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for split, protocol, seq, metric, value in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
        info = schema.info(metric, protocol)
        entry = {"text": info.format(value), "raw": _num(value)}
        if seq == "":
            overall.append({"split": split, "protocol": protocol, "metric": info.header, "name": metric, **entry})
        else:
            per_seq.setdefault((split, protocol), {}).setdefault(seq, {})[metric] = entry
    # Each (split, protocol) block in the schema's metric order, headline first.
    order = {(sp, pr): {m: i for i, m in enumerate(schema.metric_order(pr, {o["name"] for o in overall
                                                                          if (o["split"], o["protocol"]) == (sp, pr)}))}
             for sp, pr in {(o["split"], o["protocol"]) for o in overall}}
    overall.sort(key=lambda o: (o["split"], o["protocol"], order[(o["split"], o["protocol"])][o["name"]]))
    seq_tables = []
    for (split, protocol), seqs in per_seq.items():
        names = schema.metric_order(protocol, {m for cells in seqs.values() for m in cells})
        seq_tables.append({
            "split": split, "protocol": protocol, "metrics": [schema.info(m, protocol).header for m in names],
            "rows": [(seq, [cells.get(m, {"text": "", "raw": ""}) for m in names]) for seq, cells in seqs.items()],
        })
    return {"title": f"Run {record['method']} · {record['dataset']} · budget {budget_label(budget)} · "
                     f"seed {record['seed']}",
            "reliability": _reliability(rows), "fields": fields, "error": record.get("error") or "",
            "overall": overall, "per_seq": seq_tables,
            "config": _pretty_json(record["config"]), "manifest": _pretty_json(record["manifest"])}


def _reliability(rows: list[tuple[str, str, str, str, float]]) -> list[dict[str, str]]:
    """Reliability diagrams (base64 SVG) of the run's ``conf-calibration`` scores, one per split, with their ECE."""
    out = []
    for split in sorted({r[0] for r in rows if r[1] == "conf-calibration"}):
        values = {metric: value for sp, protocol, seq, metric, value in rows
                  if sp == split and protocol == "conf-calibration" and seq == ""}
        count = sum(1 for name in values if name.startswith("ConfBin") and name.endswith("N"))
        bins = [{"lo": b / count, "hi": (b + 1) / count, "n": values.get(f"ConfBin{b}N", 0.0),
                 "confidence": values.get(f"ConfBin{b}Conf", float("nan")),
                 "accuracy": values.get(f"ConfBin{b}Acc", float("nan"))} for b in range(count)]
        if not any(b["n"] for b in bins):
            continue
        ece = values.get("ConfECE", float("nan"))
        out.append({"split": split, "ece": _fmt(ece, 3),
                    "svg": _b64(plots.reliability_svg(bins, f"{split}: conf vs share right (ECE {_fmt(ece, 3)})"))})
    return out


def _paper_view(comparison: pd.DataFrame, schema: MetricSchema) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in comparison.to_dict("records"):
        # Unmatched rows have no protocol of ours; the paper column's protocol still sets the units (nuScenes MOTP: m).
        info = schema.info(r["metric"], r["protocol"] or r["paper_protocol"] or None)
        budget = None if r["budget"] is None or pd.isna(r["budget"]) else int(r["budget"])
        ours = r["ours_mean"]
        has_ours = not math.isnan(ours)
        delta = ours - r["value"] if has_ours else float("nan")
        groups.setdefault(r["citation"], []).append({
            "method": r["method"], "base": text_or_missing(r["base"]), "variant": r["variant"],
            "budget": budget_label(budget), "budget_value": "" if budget is None else budget,
            "paper_dataset": r["paper_dataset"], "metric": info.header,
            "published": info.format(r["value"]), "published_value": _num(info.shown(r["value"])),
            "dataset": r["dataset"] or (MISSING if not r["compare"] else "not run"), "protocol": r["protocol"],
            "ours": info.format(ours, r["ours_std"]) if has_ours else "", "ours_value": _num(info.shown(ours)),
            "n": r["n"] or "", "delta": signed(info.shown(delta), info.decimals) if has_ours else "",
            "delta_value": _num(info.shown(delta)),
        })
    # Tables in their paper's order: "Table 2" before "Table 10".
    def natural(citation: str) -> list[object]:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", citation)]

    return [{"citation": c, "rows": groups[c]} for c in sorted(groups, key=natural)]




def _protocol_rank(schema: MetricSchema) -> dict[str, int]:
    return {name: i for i, name in enumerate(schema.protocols)}


def ablation_view(comparison: pd.DataFrame, schema: MetricSchema) -> list[dict[str, Any]]:
    """Published ablation rows (those with a ``variant``) laid out as the paper's tables.

    One table per (citation, table, section): a row per variant in the paper's order; the published
    numbers per (paper dataset, metric); then, per (our dataset, protocol) with any stored val result,
    our mean ± std over seeds for the same metrics, each followed by the row's claim against its ``versus`` row
    (:mod:`bench.report.ablations`: the paper's difference, ours with its paired 95 % interval, the verdict).
    Rows marked ``compare: false`` show "not compared"."""
    if comparison.empty or "variant" not in comparison:
        return []
    claims = ablation_claims(comparison)
    rows = comparison[comparison["variant"].astype(str) != ""]
    rank = _protocol_rank(schema)
    tables: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows.sort_values("order", kind="stable").to_dict("records"):
        key = (str(r["citation"]), str(r["table"] or ""), str(r["section"] or ""))
        table = tables.setdefault(key, {"citation": key[0], "table": key[1], "section": key[2], "paper": {},
                                        "ours": {}, "rows": {}})
        paper_col = (str(r["paper_dataset"]), str(r["metric"]))
        table["paper"].setdefault(paper_col, r["paper_protocol"] or None)
        budget = None if r["budget"] is None or pd.isna(r["budget"]) else int(r["budget"])
        row = table["rows"].setdefault(r["variant"], {"variant": r["variant"], "budget": budget_label(budget),
                                                      "compare": bool(r["compare"]), "paper": {}, "ours": {},
                                                      "citation": key[0], "versus": str(r.get("versus") or "")})
        row["paper"][paper_col] = r["value"]
        if r["dataset"] and r["split"] == ABLATION_SPLIT:
            ours_col = (str(r["dataset"]), str(r["protocol"]))
            table["ours"].setdefault(ours_col, None)
            row["ours"][(ours_col, str(r["metric"]))] = (r["ours_mean"], r["ours_std"], int(r["n"]),
                                                         r.get("our_variant") or "")
    out: dict[str, list[dict[str, Any]]] = {}
    for table in tables.values():
        paper_cols = list(table["paper"])
        metrics = list(dict.fromkeys(metric for _, metric in paper_cols))
        ours_cols = sorted(table["ours"], key=lambda c: (c[0], rank.get(c[1], len(rank)), c[1]))
        header_paper = [{"label": f"Paper · {ds}", "span": sum(1 for d, _ in paper_cols if d == ds)}
                        for ds in dict.fromkeys(d for d, _ in paper_cols)]
        header_ours = [{"label": f"Ours · {ds} · {proto}", "span": 4 * len(metrics)} for ds, proto in ours_cols]
        sub = [schema.info(m, table["paper"][(d, m)]).header for d, m in paper_cols]
        for _, proto in ours_cols:
            for m in metrics:
                h = schema.info(m, proto).header
                sub += [h, f"Δ {h} paper", f"Δ {h} ours [95 %]", f"{m} claim"]
        body = []
        for row in table["rows"].values():
            cells = [{"text": schema.info(m, table["paper"][(d, m)]).format(row["paper"].get((d, m))), "note": ""}
                     for d, m in paper_cols]
            seeds: set[int] = set()
            ran_as: set[str] = set()
            for col in ours_cols:
                for m in metrics:
                    hit = row["ours"].get((col, m))
                    if not row["versus"]:  # the sub-table's reference row (the default model)
                        claim = [{"text": MISSING, "note": ""}] * 2 + [{"text": "reference", "note": ""}]
                    else:
                        claim = claim_cells(claims.get((row["citation"], row["variant"], col[0], col[1], m)),
                                            schema, m, col[1])
                    if hit is None:
                        text = MISSING if row["compare"] else "not compared"
                        cells += [{"text": text, "note": ""}, *claim]
                        continue
                    mean, std, n, variant = hit
                    seeds.add(n)
                    ran_as.add(variant)
                    cells += [{"text": schema.info(m, col[1]).format(mean, std), "note": f"{n} seeds"}, *claim]
            body.append({"variant": row["variant"], "budget": row["budget"], "cells": cells,
                         "seeds": "/".join(str(n) for n in sorted(seeds)) if seeds else "",
                         "ran_as": ", ".join(sorted(v for v in ran_as if v))})
        out.setdefault(table["citation"], []).append({
            "table": table["table"], "section": table["section"], "header_paper": header_paper,
            "header_ours": header_ours, "sub": sub, "rows": body,
            "id": _slug(table["citation"], table["table"], table["section"]),
        })
    return [{"citation": c, "tables": t} for c, t in out.items()]
