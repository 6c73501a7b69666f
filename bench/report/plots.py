"""Figures for the report as SVG text: budget curves and speed/accuracy (matplotlib, no pyplot state).

The HTML embeds each SVG as a base64 ``data:`` image, so an SVG can neither run script nor clash with
the page's element ids, whatever the method names inside it.
"""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless; must precede any pyplot import elsewhere in the process

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.report.tables import Leaderboard  # noqa: E402

# Deterministic SVG ids and text kept as <text> (smaller than paths and searchable).
_RC: Any = {"svg.hashsalt": "bench", "svg.fonttype": "none", "font.size": 9}


def _figure() -> tuple[Figure, Axes]:
    # A fixed layout with room on the right for the legend: bbox_inches="tight" would draw every figure
    # twice (once to measure), which was a third of the report's time over 1000 runs.
    fig = Figure(figsize=(8.4, 3.6))
    fig.subplots_adjust(left=0.08, right=0.66, bottom=0.14, top=0.91)
    return fig, fig.add_subplot()


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


# 20 distinct colours, then the same colours with another marker and dash: 18+ methods stay apart.
_COLOURS = matplotlib.color_sequences["tab20"]
_MARKERS = ("o", "s", "^", "D")
_DASHES = ("-", "--", "-.", ":")


def _style(i: int) -> dict[str, object]:
    round_ = i // len(_COLOURS)
    return {"color": _COLOURS[i % len(_COLOURS)], "marker": _MARKERS[round_ % len(_MARKERS)],
            "linestyle": _DASHES[round_ % len(_DASHES)]}


def _row_label(method: str, base: str) -> str:
    return f"{method} + {base}" if base else method


def budget_curve_svg(board: Leaderboard) -> str:
    """Metric vs labels per track: one line (mean ± std band) per method; runs without a budget (oracle)
    as horizontal dashed lines."""
    info = board.info
    with matplotlib.rc_context(_RC):
        fig, ax = _figure()
        budgets = [b for b in board.budgets if b is not None]
        for i, row in enumerate(board.rows):
            style = _style(i)
            points = [(b, board.cells[(row, b)]) for b in budgets if (row, b) in board.cells]
            full = board.cells.get((row, None))
            label = _row_label(*row)
            if points:
                xs = [b for b, _ in points]
                ys = [info.shown(c.mean) for _, c in points]
                sd = [0.0 if math.isnan(c.std) else info.shown(c.std) for _, c in points]
                ax.plot(xs, ys, label=label, **style)  # type: ignore[arg-type]
                ax.fill_between(xs, [y - s for y, s in zip(ys, sd, strict=True)],
                                [y + s for y, s in zip(ys, sd, strict=True)], color=style["color"], alpha=0.12)
            if full is not None:  # no budget (the oracle): a level line across the whole axis
                ax.axhline(info.shown(full.mean), color=style["color"], linestyle=(0, (5, 2)), linewidth=1.5,
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
        fig, ax = _figure()
        fps = [p[1] for points in series.values() for p in points]
        for i, (label, points) in enumerate(series.items()):
            style = _style(i)
            ax.plot([p[1] for p in points], [p[2] for p in points], markersize=4, linewidth=0.8, label=label,
                    **style)  # type: ignore[arg-type]
            for budget, x, y in points:
                ax.annotate(budget, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6,
                            color=style["color"])
        if fps and min(fps) > 0 and max(fps) / min(fps) > 10:  # log only when speeds span an order of magnitude
            ax.set_xscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _svg(fig)


def depth_by_range_svg(boards: list[Leaderboard], title: str) -> str:
    """Depth error by ground-truth range (protocol ``depth-error``): one board per range bin, x = the bins in the
    given order, one line per (method, base, budget) through its mean (± std band). Lower is better."""
    with matplotlib.rc_context(_RC):
        fig, ax = _figure()
        labels = [b.info.display.replace("Depth error ", "") for b in boards]
        keys = list(dict.fromkeys(key for b in boards for key in b.cells))
        for i, (row, budget) in enumerate(keys):
            style = _style(i)
            cells = [b.cells.get((row, budget)) for b in boards]
            xs = [x for x, c in enumerate(cells) if c is not None and not math.isnan(c.mean)]
            if not xs:
                continue
            ys = [boards[x].info.shown(cells[x].mean) for x in xs]  # type: ignore[union-attr]
            sd = [0.0 if math.isnan(cells[x].std) else boards[x].info.shown(cells[x].std)  # type: ignore[union-attr]
                  for x in xs]
            label = f"{_row_label(*row)} @ {'all' if budget is None else budget}"
            ax.plot(xs, ys, label=label, **style)  # type: ignore[arg-type]
            ax.fill_between(xs, [y - s for y, s in zip(ys, sd, strict=True)],
                            [y + s for y, s in zip(ys, sd, strict=True)], color=style["color"], alpha=0.12)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel("ground-truth range")
        ax.set_ylabel("median |depth error| (m)")
        ax.set_ylim(bottom=0)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _svg(fig)


def reliability_svg(bins: list[dict[str, float]], title: str) -> str:
    """A reliability diagram: per confidence bin (``lo``, ``hi``, ``n``, ``confidence``, ``accuracy``) the share
    right as a bar over the bin, the mean confidence as a dot, and the diagonal a calibrated ``conf`` would follow."""
    with matplotlib.rc_context(_RC):
        fig, ax = _figure()
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=0.8, label="calibrated")
        full = [b for b in bins if b["n"] > 0]
        ax.bar([b["lo"] for b in full], [b["accuracy"] for b in full], width=[b["hi"] - b["lo"] for b in full],
               align="edge", color=_COLOURS[0], edgecolor="white", label="share right (IoU >= 0.5)")
        ax.plot([b["confidence"] for b in full], [b["accuracy"] for b in full], "o", color=_COLOURS[2], markersize=4,
                label="mean conf of the bin")
        for b in full:
            ax.annotate(str(int(b["n"])), ((b["lo"] + b["hi"]) / 2, b["accuracy"]), xytext=(0, 2),
                        textcoords="offset points", ha="center", fontsize=6)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("pseudolabel conf")
        ax.set_ylabel("share right")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _svg(fig)
