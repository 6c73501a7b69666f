"""Figures for the report as SVG text: budget curves and speed/accuracy (matplotlib, no pyplot state).

The HTML embeds each SVG as a base64 ``data:`` image, so an SVG can neither run script nor clash with
the page's element ids, whatever the method names inside it.
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # headless; must precede any pyplot import elsewhere in the process

from matplotlib.figure import Figure  # noqa: E402

from bench.report.tables import Leaderboard  # noqa: E402

# Deterministic SVG ids and text kept as <text> (smaller than paths and searchable).
_RC = {"svg.hashsalt": "bench", "svg.fonttype": "none", "font.size": 9}


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def _row_label(method: str, base: str) -> str:
    return f"{method} + {base}" if base else method


def budget_curve_svg(board: Leaderboard) -> str:
    """Metric vs labels per track: one line (mean ± std band) per method; runs without a budget (oracle)
    as horizontal dashed lines."""
    info = board.info
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 3.6))
        ax = fig.add_subplot()
        budgets = [b for b in board.budgets if b is not None]
        for row in board.rows:
            points = [(b, board.cells[(row, b)]) for b in budgets if (row, b) in board.cells]
            full = board.cells.get((row, None))
            label = _row_label(*row)
            if points:
                xs = [b for b, _ in points]
                ys = [info.shown(c.mean) for _, c in points]
                sd = [0.0 if math.isnan(c.std) else info.shown(c.std) for _, c in points]
                (line,) = ax.plot(xs, ys, marker="o", label=label)
                ax.fill_between(xs, [y - s for y, s in zip(ys, sd, strict=True)],
                                [y + s for y, s in zip(ys, sd, strict=True)], color=line.get_color(), alpha=0.15)
            if full is not None:
                ax.axhline(info.shown(full.mean), linestyle="--",
                           label=f"{label} (all labels)")
        if budgets:
            ax.set_xscale("log", base=2)
            ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_xlabel("labels per track")
        ax.set_ylabel(info.header)
        ax.set_title(board.title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _svg(fig)


def speed_accuracy_svg(series: dict[str, list[tuple[str, float, float]]], x_label: str, y_label: str,
                       title: str) -> str:
    """FPS vs headline metric: per method one line through its budgets, points labelled with the budget.

    ``series`` maps a method label to (budget label, fps, value in display units) points."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 3.6))
        ax = fig.add_subplot()
        fps = [p[1] for points in series.values() for p in points]
        for label, points in series.items():
            (line,) = ax.plot([p[1] for p in points], [p[2] for p in points], marker="o", markersize=4,
                              linewidth=0.8, label=label)
            for budget, x, y in points:
                ax.annotate(budget, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6,
                            color=line.get_color())
        if fps and min(fps) > 0 and max(fps) / min(fps) > 10:  # log only when speeds span an order of magnitude
            ax.set_xscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _svg(fig)
