"""Shared pieces of the speed suite: the calibration workload, the planted slowdown, small cases.

Kept out of conftest.py so that test modules can import them (conftest is not an importable module
under --import-mode=importlib).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

PLANT_ENV = "BENCH_PERF_PLANT"
# Every figure is timed in this process's CPU seconds, not wall seconds: on a shared 2-core machine the wall
# clock mostly measures the neighbours (a report render measured 1.1 s, then 3.3 s best-of-5 wall a minute
# later with the load average at 3.5), while CPU time moves far less. Test modules pass it to pytest-benchmark
# with ``pytest.mark.benchmark(timer=TIMER)``. The code timed runs in this process (the runner's in-process
# executor, TrackEval without its parallel pool) with one BLAS thread (conftest.py sets it).
TIMER = time.process_time


def calibration_workload() -> float:
    """A fixed mix of what bench's code does (numpy vectorised, pandas groupby, a Python loop); returns a checksum.

    Never change it without rewriting the baselines: every non-metric ratio is divided by its time.
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=1_500_000)
    s = float(np.sort(x)[::1000].sum())
    a = rng.normal(size=(250, 250))
    s += float(np.linalg.norm(a @ a.T))
    df = pd.DataFrame({"k": rng.integers(0, 500, 400_000), "v": rng.normal(size=400_000)})
    s += float(df.groupby("k")["v"].agg(["mean", "std"]).to_numpy().sum())
    acc = 0
    for i in range(600_000):
        acc += i % 7
    return s + acc


def min_time(fn: Callable[[], Any], repeats: int) -> float:
    """The best of ``repeats`` calls of ``fn``, in TIMER seconds (as pytest-benchmark's min with that timer)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = TIMER()
        fn()
        best = min(best, TIMER() - t0)
    return best


def planted_factor(name: str) -> float:
    """How much slower BENCH_PERF_PLANT makes ``name``: 1 (untouched), 2 for ``name`` or ``all``, F for ``name=F``.

    The variable is a comma-separated list: ``kitti2d_vs_trackeval``, ``all``, ``report_render_200=1.4,all=1.2``.
    """
    factor = 1.0
    for entry in os.environ.get(PLANT_ENV, "").split(","):
        key, _, value = entry.strip().partition("=")
        if key in (name, "all"):
            factor = float(value) if value else 2.0
            if key == name:
                break  # the figure's own entry wins over "all"
    if factor < 1.0:
        raise ValueError(f"{PLANT_ENV}: a planted slowdown factor must be >= 1, not {factor}")
    return factor


def planted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, or, when BENCH_PERF_PLANT names this figure (or "all"), ``fn`` made ``planted_factor`` times slower.

    The slowdown is CPU time, (factor - 1) times the call's own, spent inside the timed call: what a real
    regression looks like to the timer (a sleep would not show on a CPU-time timer). It exists only to prove
    that the gate fails on a slowdown, and to measure the smallest one it catches.
    """
    factor = planted_factor(name)
    if factor == 1.0:
        return fn

    def slowed(*args: Any, **kwargs: Any) -> Any:
        t0 = TIMER()
        out = fn(*args, **kwargs)
        extra = (TIMER() - t0) * (factor - 1.0)
        t1 = TIMER()
        while TIMER() - t1 < extra:
            pass
        return out

    return slowed


def best_of(benchmark: Any) -> float | None:
    """The benchmark's minimum round time, or None when benchmarks are disabled (no stats)."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    return float(stats.stats.min)


