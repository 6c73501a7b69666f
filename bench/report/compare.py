"""``bench table --compare A B``: the paired difference A - B per cell both methods ran on the same seeds.

Cells are paired on (dataset, protocol, split, metric, base tracker, budget); a method without a budget (the
oracle) is paired with every budget of the other. Only the headline metric of each protocol is shown unless
``metric`` is given. The difference and its 95 % paired t interval come from :mod:`bench.report.stats`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.report.schema import MetricSchema
from bench.report.stats import PAIRED_METHOD, format_interval, paired_difference, shared_seeds
from bench.report.tables import budget_label, method_label


class CompareError(ValueError):
    """Bad input for a comparison (a method without runs, no shared seeds): one line, exit 2."""


def _cells(summary: pd.DataFrame, name: str) -> pd.DataFrame:
    labels = [method_label(str(m), str(v or "")) for m, v in zip(
        summary["method"], summary["variant"] if "variant" in summary else [""] * len(summary), strict=True)]
    return summary[[label == name for label in labels]]


def compare_methods(summary: pd.DataFrame, a: str, b: str, schema: MetricSchema | None = None, *,
                    dataset: str | None = None, protocol: str | None = None, metric: str | None = None,
                    split: str | None = None) -> str:
    """A Markdown table of A - B per paired cell; raises :class:`CompareError` when nothing can be paired."""
    schema = schema or MetricSchema.load()
    frame = summary
    for column, wanted in (("dataset", dataset), ("protocol", protocol), ("split", split)):
        if wanted is not None:
            frame = frame[frame[column] == wanted]
    if metric is not None:
        frame = frame[[schema.canonical(str(m)) == schema.canonical(metric) for m in frame["metric"]]]
    else:  # the headline of each protocol: one number per protocol, as a paper's table would give
        frame = frame[[schema.protocol(str(p)).headline in (None, schema.canonical(str(m)))
                       for p, m in zip(frame["protocol"], frame["metric"], strict=True)]]
    cells = {name: _cells(frame, name) for name in (a, b)}
    for name, found in cells.items():
        if found.empty:
            known = sorted({method_label(str(m), str(v or "")) for m, v in zip(
                summary["method"], summary["variant"] if "variant" in summary else [""] * len(summary), strict=True)})
            raise CompareError(f"method {name!r} has no finished runs matching the filters "
                               f"(methods with runs: {', '.join(known) or 'none'})")
    rows: list[dict[str, Any]] = []
    seen_seeds: dict[str, set[int]] = {a: set(), b: set()}
    keys = ["dataset", "protocol", "split", "metric"]
    b_index: dict[tuple[Any, ...], list[dict[str, Any]]] = {tuple(r[k] for k in keys): []
                                                            for r in cells[b].to_dict("records")}
    for r in cells[b].to_dict("records"):
        b_index[tuple(r[k] for k in keys)].append(r)
    for ra in cells[a].to_dict("records"):
        seen_seeds[a] |= set(ra["seeds"])
        for rb in b_index.get(tuple(ra[k] for k in keys), []):
            seen_seeds[b] |= set(rb["seeds"])
            if str(ra["base"]) != str(rb["base"]):
                continue
            ba, bb = (None if pd.isna(x) else int(x) for x in (ra["budget"], rb["budget"]))
            if ba != bb and ba is not None and bb is not None:
                continue
            if not shared_seeds(ra["seeds"], rb["seeds"]):
                continue
            rows.append({"a": ra, "b": rb, "diff": paired_difference(ra["seeds"], rb["seeds"])})
    if not rows:
        raise CompareError(f"{a} and {b} share no cell run on the same seeds (seeds of {a}: "
                           f"{_seed_list(seen_seeds[a] or _all_seeds(cells[a]))}; of {b}: "
                           f"{_seed_list(seen_seeds[b] or _all_seeds(cells[b]))}): a paired difference needs "
                           "the same seeds on the same dataset, protocol, split and base")
    return _markdown(a, b, rows, schema)


def _all_seeds(frame: pd.DataFrame) -> set[int]:
    return {s for seeds in frame["seeds"] for s in seeds}


def _seed_list(seeds: set[int]) -> str:
    return ",".join(str(s) for s in sorted(seeds)) or "none"


def _markdown(a: str, b: str, rows: list[dict[str, Any]], schema: MetricSchema) -> str:
    header = ["dataset", "protocol", "split", "metric", "base", "budget", a, b, f"{a} − {b} [95 % CI]", "seeds"]
    lines = [f"### Paired difference {a} − {b} (mean over shared seeds, 95 % {PAIRED_METHOD} interval)", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 6 + ["---:"] * 4) + "|"]
    def order(r: dict[str, Any]) -> tuple[Any, ...]:
        budget = r["a"]["budget"] if not pd.isna(r["a"]["budget"]) else r["b"]["budget"]
        return tuple(str(r["a"][k]) for k in ("dataset", "protocol", "split", "metric")) + (
            pd.isna(budget), 0 if pd.isna(budget) else int(budget))

    for row in sorted(rows, key=order):
        ra, rb, diff = row["a"], row["b"], row["diff"]
        info = schema.info(str(ra["metric"]), str(ra["protocol"]))
        budgets = budget_label(ra["budget"]) if budget_label(ra["budget"]) == budget_label(rb["budget"]) \
            else f"{budget_label(ra['budget'])} / {budget_label(rb['budget'])}"
        lines.append("| " + " | ".join([
            str(ra["dataset"]), str(ra["protocol"]), str(ra["split"]), info.header, str(ra["base"]) or "-", budgets,
            info.format(ra["mean"], ra["std"]), info.format(rb["mean"], rb["std"]),
            format_interval(diff, info.scale, info.decimals) + ("" if diff.defined else " (needs 2 seeds)"),
            str(diff.n)]) + " |")
    lines += ["", "An interval that contains 0 cannot tell the two apart on these seeds."]
    return "\n".join(lines) + "\n"
