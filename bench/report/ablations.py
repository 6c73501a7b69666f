"""A paper's ablation claims checked one by one: the paper's difference beside ours, with our 95 % interval.

An ablation row of a published file (``leaderboards/published/*.yaml``, a row with a ``variant`` and a
``versus``) states a claim: "row A1 scores lower than row A4" (Table 3: 17.41 vs 28.08 MOTA). For every
(our dataset, protocol, metric) that we stored for both rows, :func:`ablation_claims` sets the paper's
difference (row - versus) beside ours: the paired difference over the seeds both ran
(:func:`bench.report.stats.paired_difference`, a 95 % paired t interval) and a verdict:

- ``holds``: our interval excludes zero on the paper's side;
- ``reversed``: our interval excludes zero on the other side;
- ``not shown``: our interval contains zero (the seeds cannot tell the rows apart);
- ``no interval``: fewer than two shared seeds (only the point difference is shown).

``ablations.html`` (:mod:`bench.report.html`) shows them beside each row; :func:`ablations_markdown` prints the
same tables as Markdown (``bench table --ablations``), from a store or a committed results file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.report.published import variant_code
from bench.report.schema import MISSING, MetricSchema
from bench.report.stats import Interval, format_interval, paired_difference

ABLATION_SPLIT = "val"  # ablation tables compare the downstream tracker, as the papers do


@dataclass(frozen=True)
class Claim:
    """One row's claim on one of our (dataset, protocol, metric) columns."""

    paper_delta: float  # paper row - paper versus row, store units (NaN when either is not printed)
    ours: Interval  # our paired difference row - versus over shared seeds
    verdict: str


def verdict(paper_delta: float, ours: Interval) -> str:
    if ours.n == 0:
        return MISSING
    if not ours.defined:
        return "no interval"
    if ours.contains_zero:
        return "not shown"
    if math.isnan(paper_delta) or paper_delta == 0.0:
        return "no paper direction"
    return "holds" if (ours.low > 0) == (paper_delta > 0) else "reversed"


def ablation_claims(comparison: pd.DataFrame) -> dict[tuple[str, str, str, str, str], Claim]:
    """``{(citation, variant, our dataset, protocol, metric): Claim}`` for every ablation row with a ``versus``
    whose row and versus row both have our runs (``comparison``: :func:`bench.report.published.paper_comparison`)."""
    if comparison.empty or "versus" not in comparison:
        return {}
    rows = comparison[(comparison["variant"].astype(str) != "") & (comparison["split"] == ABLATION_SPLIT)]
    # (citation, row code, paper dataset, metric) -> paper value; (citation, row code, ours...) -> seeds
    paper: dict[tuple[str, str, str, str], float] = {}
    ours: dict[tuple[str, str, str, str, str], dict[int, float]] = {}
    for r in comparison[comparison["variant"].astype(str) != ""].to_dict("records"):
        code = variant_code(r["variant"])
        paper[(r["citation"], code, r["paper_dataset"], r["metric"])] = float(r["value"])
    for r in rows.to_dict("records"):
        ours[(r["citation"], variant_code(r["variant"]), r["dataset"], r["protocol"], r["metric"])] = \
            dict(r.get("ours_seeds") or {})
    out: dict[tuple[str, str, str, str, str], Claim] = {}
    for r in rows.to_dict("records"):
        versus = str(r.get("versus") or "")
        if not versus:
            continue
        code = variant_code(r["variant"])
        mine = ours.get((r["citation"], code, r["dataset"], r["protocol"], r["metric"]), {})
        theirs = ours.get((r["citation"], versus, r["dataset"], r["protocol"], r["metric"]))
        if theirs is None:
            continue
        delta = paper.get((r["citation"], code, r["paper_dataset"], r["metric"]), math.nan) \
            - paper.get((r["citation"], versus, r["paper_dataset"], r["metric"]), math.nan)
        diff = paired_difference(mine, theirs)
        out[(r["citation"], r["variant"], r["dataset"], r["protocol"], r["metric"])] = Claim(delta, diff,
                                                                                            verdict(delta, diff))
    return out


def claim_cells(claim: Claim | None, schema: MetricSchema, metric: str, protocol: str) -> list[dict[str, str]]:
    """The paper's difference, ours with its interval, and the verdict, as formatted cells."""
    if claim is None:
        return [{"text": MISSING, "note": ""}] * 3
    info = schema.info(metric, protocol)
    paper = MISSING if math.isnan(claim.paper_delta) else f"{claim.paper_delta * info.scale:+.{info.decimals}f}"
    ours = format_interval(claim.ours, info.scale, info.decimals)
    return [{"text": paper, "note": "paper: row - versus row"},
            {"text": ours, "note": f"ours: paired over {claim.ours.n} shared seeds, 95 % {claim.ours.method}"},
            {"text": claim.verdict, "note": ""}]


def ablations_markdown(groups: list[dict[str, Any]]) -> str:
    """The ablation page's tables (:func:`bench.report.html.ablation_view`) as Markdown, one per sub-table."""
    lines: list[str] = []
    for group in groups:
        for t in group["tables"]:
            title = str(group["citation"])
            if t["table"] and not title.endswith(t["table"]):
                title += f", {t['table']}"
            lines += [f"### {title}{': ' + t['section'] if t['section'] else ''}", ""]
            top = ["Variant", "Budget"] + [h["label"] for h in t["header_paper"] for _ in range(h["span"])] \
                + [h["label"] for h in t["header_ours"] for _ in range(h["span"])] + ["Seeds", "Run as"]
            header = [f"{a} {b}".strip() for a, b in zip(top[:2], ["", ""], strict=True)]
            header += [f"{a}: {b}" for a, b in zip(top[2:-2], t["sub"], strict=True)] + top[-2:]
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for r in t["rows"]:
                cells = [r["variant"], r["budget"], *(c["text"] for c in r["cells"]), r["seeds"], r["ran_as"]]
                lines.append("| " + " | ".join(str(c) for c in cells) + " |")
            lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")
