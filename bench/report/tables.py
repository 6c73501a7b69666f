"""Leaderboard tables: seeds aggregated to mean ± std, one table per (dataset, protocol, split, metric).

A table has one row per method (+ base tracker) and one column per label budget ("full" = no budget,
e.g. the oracle); runs of a sweep variant (an ablation row) get their own row, "method [variant]".
The best mean of each column is bolded, respecting the metric's direction, only when its lead over the
runner-up holds: the 95 % paired t interval of their difference over shared seeds (:mod:`bench.report.stats`)
excludes zero. Otherwise the cell is marked ``≈`` instead (the legend says why), so a table never claims a
winner the seeds cannot separate. Reference bounds (``reference_methods`` in the schema, e.g. the oracle) are
never bolded. The same tables are exported
as CSV (tidy: one row per cell, display units), Markdown and LaTeX (booktabs).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import pandas as pd

from bench.report.schema import MISSING, MetricInfo, MetricSchema
from bench.report.stats import Interval, format_interval, paired_difference

CELL_KEYS = ["dataset", "protocol", "split", "metric", "method", "variant", "base", "budget"]
FULL = "all"  # column label of runs without a label budget (the oracle): all labels, as `--budget all` says
UNSURE_MARK = "≈"
UNSURE_LEGEND = ("≈: best mean, but not separated from the runner-up: the 95 % paired t interval of their "
                 "difference over shared seeds contains 0 (or they share fewer than 2 seeds); not bolded")


@dataclass(frozen=True)
class Cell:
    mean: float
    std: float  # NaN with a single seed
    n: int  # number of seeds (ok runs)
    seeds: dict[int, float] = field(default_factory=dict, compare=False)  # seed -> value, for paired statistics


RowKey = tuple[str, str]  # (method, base); base "" when the method has none


@dataclass
class Leaderboard:
    dataset: str
    protocol: str
    split: str
    metric: str
    info: MetricInfo
    budgets: list[int | None]
    rows: list[RowKey]
    cells: dict[tuple[RowKey, int | None], Cell]
    best: set[tuple[RowKey, int | None]] = field(default_factory=set)
    # Best means whose lead is not separated from the runner-up (marked, never bolded).
    unsure: set[tuple[RowKey, int | None]] = field(default_factory=set)
    # Per budget column: (best row, runner-up row, paired difference best - runner-up, in stored units).
    leads: dict[int | None, tuple[RowKey, RowKey, Interval]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.dataset} · {self.protocol} · {self.split} · {self.info.display}"

    def cell_text(self, row: RowKey, budget: int | None) -> str:
        cell = self.cells.get((row, budget))
        return "" if cell is None else self.info.format(cell.mean, cell.std)


def budget_label(budget: object) -> str:
    """``4`` -> "4"; no budget (None, NaN, pd.NA: the oracle) -> "all", never "None" or "<NA>"."""
    return FULL if budget is None or pd.isna(budget) else str(int(budget))  # type: ignore[call-overload]


def text_or_missing(value: object) -> str:
    """A stored string for display: empty, None, NaN or pd.NA (pandas fills missing bases with NaN) -> "-"."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return MISSING
    return str(value) or MISSING


def method_label(method: str, variant: str = "") -> str:
    """A leaderboard row's method: the name, with the sweep variant in brackets when there is one."""
    return f"{method} [{variant}]" if variant else method


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Overall (seq == "") values of ok runs -> one row per cell with mean, std (ddof=1) and n over seeds.

    A seed counts once: where a cell has several ok runs of one seed (the method's config changed between
    them, so their keys differ), the latest finished one stands for it, as a re-run supersedes the old one.
    """
    columns = CELL_KEYS + ["mean", "std", "n", "seeds"]
    if metrics.empty:
        return pd.DataFrame(columns=columns)
    ok = metrics[(metrics["status"] == "ok") & (metrics["seq"] == "") & metrics["value"].notna()].copy()
    ok["base"] = ok["base"].fillna("").astype(str)
    # Stores before schema 2 (and hand-made frames) have no variant: every run is a plain one.
    ok["variant"] = ok["variant"].fillna("").astype(str) if "variant" in ok else ""
    if "seed" in ok and "finished_at" in ok:
        ok = ok.sort_values("finished_at", kind="stable").drop_duplicates(CELL_KEYS + ["seed"], keep="last")
    # Budgets may be missing (pd.NA); groupby(dropna=False) keeps them as their own "full" cell.
    grouped = ok.groupby(CELL_KEYS, dropna=False, sort=True)["value"]
    out = grouped.agg(mean="mean", std="std", n="count").reset_index()
    if "seed" in ok:  # per-seed values ride along: paired differences need them (bench.report.stats)
        # Same grouping, same order as the aggregate above (iterating avoids looking up NaN/NA keys).
        out["seeds"] = [dict(zip(g["seed"].astype(int), g["value"].astype(float), strict=True))
                        for _, g in ok.groupby(CELL_KEYS, dropna=False, sort=True)]
    else:
        out["seeds"] = [{} for _ in range(len(out))]
    return out[columns]


def _budget_value(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)  # type: ignore[call-overload]


def _row_order(rows: set[RowKey], reference: frozenset[str]) -> list[RowKey]:
    # Contenders alphabetically, reference bounds (oracle) last.
    return sorted(rows, key=lambda r: (r[0] in reference, r[0], r[1]))


def build_leaderboards(
    summary: pd.DataFrame,
    schema: MetricSchema,
    dataset: str | None = None,
    protocol: str | None = None,
    metric: str | None = None,
    split: str | None = None,
) -> list[Leaderboard]:
    """One Leaderboard per (dataset, protocol, split, metric) in ``summary`` (from :func:`summarize`).

    Metrics come in the protocol's order from the schema (headline first)."""
    frame = summary
    for column, wanted in (("dataset", dataset), ("protocol", protocol), ("metric", metric), ("split", split)):
        if wanted is not None:
            frame = frame[frame[column] == wanted]
    boards: list[Leaderboard] = []
    for (ds, proto, sp), group in frame.groupby(["dataset", "protocol", "split"], sort=True):
        by_metric = {str(name): g for name, g in group.groupby("metric", sort=False)}
        for name in schema.metric_order(str(proto), set(by_metric)):
            boards.append(_board(str(ds), str(proto), str(sp), name, by_metric[name], schema))
    return boards


def _board(dataset: str, protocol: str, split: str, metric: str, frame: pd.DataFrame,
           schema: MetricSchema) -> Leaderboard:
    info = schema.info(metric, protocol)
    cells: dict[tuple[RowKey, int | None], Cell] = {}
    variants = frame["variant"] if "variant" in frame else pd.Series("", index=frame.index)
    seeds = frame["seeds"] if "seeds" in frame else pd.Series([{}] * len(frame), index=frame.index)
    for method, variant, base, budget, mean, std, n, values in zip(
            frame["method"], variants.fillna(""), frame["base"], frame["budget"], frame["mean"], frame["std"],
            frame["n"], seeds, strict=True):
        row = (method_label(str(method), str(variant)), str(base))
        cells[(row, _budget_value(budget))] = Cell(float(mean), float(std), int(n),
                                                   dict(values) if isinstance(values, dict) else {})
    budgets = sorted({b for _, b in cells}, key=lambda b: (b is None, b or 0))
    rows = _row_order({r for r, _ in cells}, schema.reference_methods)
    board = Leaderboard(dataset, protocol, split, metric, info, budgets, rows, cells)
    _mark_best(board, schema.reference_methods)
    return board


def _mark_best(board: Leaderboard, reference: frozenset[str]) -> None:
    """Split the best cells into bold (lead over the runner-up holds) and unsure (marked), and keep the leads."""
    best = _best_cells(board, reference)
    for budget in board.budgets:
        top = [row for row in board.rows if (row, budget) in best]
        if not top:
            continue
        rest = [row for row in board.rows if (row, budget) in board.cells and row not in top
                and row[0] not in reference and not math.isnan(board.cells[(row, budget)].mean)]
        if not rest:  # a single contender: nothing to be separated from
            board.best |= {(row, budget) for row in top}
            continue
        sign = -1.0 if board.info.higher_is_better is False else 1.0
        runner = max(rest, key=lambda row: sign * board.cells[(row, budget)].mean)
        lead = paired_difference(board.cells[(top[0], budget)].seeds, board.cells[(runner, budget)].seeds)
        board.leads[budget] = (top[0], runner, lead)
        # Oriented so that "better" is positive: a lower-is-better metric leads when best - runner-up < 0.
        low, high = sorted((sign * lead.low, sign * lead.high))
        oriented = Interval(sign * lead.value, low, high, lead.n, lead.method)
        holds = len(top) == 1 and oriented.defined and not oriented.contains_zero and oriented.value > 0
        (board.best if holds else board.unsure).update((row, budget) for row in top)


def lead_text(board: Leaderboard, budget: int | None) -> str:
    """``sparse3dtrack - sparse: +15.00 [+12.10, +17.90] (3 seeds, paired t)`` for one column; "" without a lead."""
    if budget not in board.leads:
        return ""
    top, runner, lead = board.leads[budget]
    text = format_interval(lead, board.info.scale, board.info.decimals)
    return f"{top[0]} − {runner[0]}: {text} ({lead.n} shared seed{'s' if lead.n != 1 else ''}, {lead.method})"


def _best_cells(board: Leaderboard, reference: frozenset[str]) -> set[tuple[RowKey, int | None]]:
    if board.info.higher_is_better is None:
        return set()
    best: set[tuple[RowKey, int | None]] = set()
    for budget in board.budgets:
        candidates = [(row, board.cells[(row, budget)].mean) for row in board.rows
                      if (row, budget) in board.cells and row[0] not in reference]
        candidates = [(row, m) for row, m in candidates if not math.isnan(m)]
        if not candidates:
            continue
        pick = max if board.info.higher_is_better else min
        top = pick(m for _, m in candidates)
        # Ties share the bold: compare at display precision, which is what a reader can tell apart.
        digits = board.info.decimals
        best |= {(row, budget) for row, m in candidates
                 if round(board.info.shown(m), digits) == round(board.info.shown(top), digits)}
    return best


# ---------------------------------------------------------------------------------------------- exports

def to_csv(boards: list[Leaderboard]) -> str:
    """Tidy CSV: one line per cell, values in display units (percent, metres...), best flagged."""
    records = []
    for b in boards:
        for (row, budget), cell in b.cells.items():
            records.append({
                "dataset": b.dataset, "protocol": b.protocol, "split": b.split, "metric": b.metric,
                "unit": b.info.unit, "method": row[0], "base": row[1], "budget": budget_label(budget),
                "mean": round(b.info.shown(cell.mean), 6),
                "std": None if math.isnan(cell.std) else round(b.info.shown(cell.std), 6),
                "n_seeds": cell.n, "best": (row, budget) in b.best,
                # Best mean whose lead over the runner-up the seeds cannot separate (see UNSURE_LEGEND).
                "best_unsure": (row, budget) in b.unsure,
            })
    out = io.StringIO()
    pd.DataFrame(records).to_csv(out, index=False, lineterminator="\n")
    return out.getvalue()


def _md_escape(text: str) -> str:
    # Pipes would split a Markdown cell; backslash-escape them and Markdown emphasis characters.
    for ch in "\\|*_`[]<>":
        text = text.replace(ch, "\\" + ch)
    return text


def to_markdown(boards: list[Leaderboard]) -> str:
    parts = []
    for b in boards:
        header = ["Method", "Base"] + [budget_label(x) for x in b.budgets]
        lines = [f"### {_md_escape(b.title)} ({b.info.unit_label or b.info.unit}, columns: labels per track)", "",
                 "| " + " | ".join(header) + " |", "|" + "|".join(["---", "---"] + ["---:"] * len(b.budgets)) + "|"]
        for row in b.rows:
            cells = []
            for budget in b.budgets:
                text = b.cell_text(row, budget)
                cells.append(f"**{text}**" if (row, budget) in b.best
                             else f"{text} {UNSURE_MARK}" if (row, budget) in b.unsure else text)
            lines.append("| " + " | ".join([_md_escape(row[0]), _md_escape(text_or_missing(row[1]))] + cells) + " |")
        lines += _md_notes(b)
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def to_latex(boards: list[Leaderboard]) -> str:
    """One booktabs ``tabular`` per table (needs ``\\usepackage{booktabs}``); best in ``\\textbf``."""
    parts = []
    for b in boards:
        cols = "ll" + "r" * len(b.budgets)
        lines = [
            f"% {latex_escape(b.title)}",
            rf"\begin{{tabular}}{{{cols}}}",
            r"\toprule",
            rf" & & \multicolumn{{{len(b.budgets)}}}{{c}}{{{latex_escape(b.info.header)} -- labels per track}} \\",
            rf"\cmidrule(lr){{3-{2 + len(b.budgets)}}}",
            "Method & Base & " + " & ".join(budget_label(x) for x in b.budgets) + r" \\",
            r"\midrule",
        ]
        for row in b.rows:
            cells = []
            for budget in b.budgets:
                text = latex_escape(b.cell_text(row, budget)).replace("±", r"$\pm$")
                if (row, budget) in b.best and text:
                    text = rf"\textbf{{{text}}}"
                elif (row, budget) in b.unsure and text:
                    text = rf"{text}$^{{\approx}}$"
                cells.append(text)
            lines.append(" & ".join([latex_escape(row[0]), latex_escape(text_or_missing(row[1]))] + cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _md_notes(board: Leaderboard) -> list[str]:
    """The lead of each column's best over its runner-up (paired, 95 % interval), and the mark's legend."""
    leads = [f"{budget_label(b)}: {_md_escape(lead_text(board, b))}" for b in board.budgets if b in board.leads]
    notes = ["", "Best minus runner-up (" + "; ".join(leads) + ")."] if leads else []
    if board.unsure:
        notes += ["", _md_escape(UNSURE_LEGEND) + "."]
    return notes


FORMATS = {"csv": to_csv, "md": to_markdown, "latex": to_latex}
