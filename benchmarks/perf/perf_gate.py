"""The speed gate: compare this run's speed ratios with the committed baselines.

Absolute times differ between machines (and, on a shared machine, between minutes), so the gate only
compares *ratios* measured in one session: for metric code, the official tool's time over bench's
(a speed-up, higher is better); for the rest, bench's time over a fixed calibration workload timed in
the same session (lower is better). A figure fails when it is worse than its baseline by more than the
relative tolerance declared in the baseline file: ``worse = baseline / now`` for a speed-up,
``now / baseline`` for a time ratio, and it fails when ``worse > 1 + tolerance``.

This module has no pytest dependency so that the comparison itself is unit-tested in the default suite
(tests/report/test_perf_gate.py): a gate whose comparison is wrong would pass silently for ever.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASELINE_FILE = Path(__file__).with_name("baseline.json")
DEFAULT_TOLERANCE = 0.30
KEEP_RUNS = 3  # a baseline is the median of the last few recorded runs: one noisy run does not set it
BETTER = ("higher", "lower")


@dataclass(frozen=True)
class Figure:
    """One measured ratio. ``better`` says which way is faster: "higher" (speed-up) or "lower" (time ratio)."""

    name: str
    value: float
    better: str
    what: str = ""

    def __post_init__(self) -> None:
        if self.better not in BETTER:
            raise ValueError(f"figure {self.name}: better must be one of {BETTER}, not {self.better!r}")
        if not (math.isfinite(self.value) and self.value > 0):
            raise ValueError(f"figure {self.name}: a ratio must be a positive finite number, not {self.value!r}")


@dataclass(frozen=True)
class Verdict:
    name: str
    baseline: float
    now: float
    tolerance: float
    better: str
    worse_by: float  # 0.25 = 25 % slower than the baseline; negative = faster

    @property
    def failed(self) -> bool:
        return self.worse_by > self.tolerance

    def line(self) -> str:
        direction = "speed-up over the official tool" if self.better == "higher" else "time / calibration"
        state = "SLOWER than allowed" if self.failed else "ok"
        return (f"{self.name} ({direction}): baseline {self.baseline:.4g}, now {self.now:.4g}, "
                f"{self.worse_by:+.0%} worse (tolerance {self.tolerance:.0%}): {state}")


def worse_by(baseline: float, now: float, better: str) -> float:
    """How much slower ``now`` is than ``baseline``, relative (0.3 = 30 % slower; negative: faster)."""
    if better not in BETTER:
        raise ValueError(f"better must be one of {BETTER}, not {better!r}")
    if baseline <= 0 or now <= 0:
        raise ValueError(f"ratios must be positive (baseline {baseline}, now {now})")
    return (baseline / now if better == "higher" else now / baseline) - 1.0


def load_baseline(path: Path = BASELINE_FILE) -> dict[str, Any]:
    """The committed baseline file ({} when there is none yet)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("figures", {}), dict):
        raise ValueError(f"{path}: not a perf baseline file (expected an object with 'figures')")
    return data


def compare(baseline: dict[str, Any], measured: dict[str, Figure]) -> tuple[list[Verdict], list[str]]:
    """Verdicts for every measured figure that has a baseline, plus notes (no baseline / not measured).

    A figure in the baseline that was not measured (skipped: the official tool's venv is missing, or
    ``-k`` chose other tests) is a note, not a failure; a figure measured without a baseline likewise.
    A figure whose direction changed is an error in the suite, not a slowdown: raises.
    """
    default = float(baseline.get("tolerance", DEFAULT_TOLERANCE))
    figures = baseline.get("figures", {})
    verdicts, notes = [], []
    for name, fig in sorted(measured.items()):
        base = figures.get(name)
        if base is None:
            notes.append(f"{name}: {fig.value:.4g} measured, no baseline (write one with --perf-write-baseline)")
            continue
        if base.get("better") != fig.better:
            raise ValueError(f"{name}: baseline says better={base.get('better')!r}, the test says {fig.better!r}")
        tol = float(base.get("tolerance", default))
        verdicts.append(Verdict(name, float(base["value"]), fig.value, tol, fig.better,
                                worse_by(float(base["value"]), fig.value, fig.better)))
    for name in sorted(set(figures) - set(measured)):
        notes.append(f"{name}: in the baseline, not measured in this run")
    return verdicts, notes


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def updated_baseline(old: dict[str, Any], measured: dict[str, Figure], *, date: str | None = None,
                     tolerance: float | None = None) -> dict[str, Any]:
    """``old`` with this run appended to each measured figure's recent runs; value = median of the kept runs.

    Each figure keeps its last ``KEEP_RUNS`` values, so writing twice records the spread between runs
    (``spread`` = max / min - 1); the figure's tolerance is the file's, or twice its spread when that is
    larger (a gate tighter than the machine's own noise fails every other night). Figures not measured
    keep what they had (a machine without the Waymo venv does not erase the Waymo baseline).
    """
    date = date or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    new = dict(old)
    new.setdefault("tolerance", DEFAULT_TOLERANCE if tolerance is None else tolerance)
    if tolerance is not None:
        new["tolerance"] = tolerance
    figures = dict(new.get("figures", {}))
    for name, fig in sorted(measured.items()):
        entry = dict(figures.get(name, {}))
        if entry.get("better") not in (None, fig.better):
            entry = {}  # the figure changed meaning: its old runs say nothing about the new one
        runs = (list(entry.get("runs", [])) + [round(fig.value, 4)])[-KEEP_RUNS:]
        spread = max(runs) / min(runs) - 1.0
        # A figure that already moved this much between two runs on one machine needs room: twice its spread.
        entry.update(better=fig.better, what=fig.what, runs=runs, value=round(statistics.median(runs), 4),
                     spread=round(spread, 3), tolerance=round(max(float(new["tolerance"]), 2 * spread), 2))
        figures[name] = entry
    new["figures"] = figures
    machine = {"cpu": cpu_model(), "cores": str(os.cpu_count()), "python": platform.python_version()}
    new["written"] = list(new.get("written", []))[-(KEEP_RUNS - 1):] + [{"date": date, **machine}]
    return new


def write_baseline(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
