"""The speed suite's plumbing: calibration, figure recording, the planted slowdown and the final gate.

    .venv/bin/pytest benchmarks/perf --benchmark-only -p no:cacheprovider            # measure + gate
    .venv/bin/pytest benchmarks/perf --benchmark-only -p no:cacheprovider --perf-write-baseline
    BENCH_PERF_PLANT=kitti2d_vs_trackeval .venv/bin/pytest benchmarks/perf --benchmark-only -k trackeval  # exit 1
    BENCH_PERF_PLANT=all=1.4 ...        # every figure's timed work 1.4x: the gate must fail (tolerance 30 %)

Tests call ``perf.record(benchmark, name, value, better, what)``; after the last test, the session's
figures are compared with benchmarks/perf/baseline.json (perf_gate.compare) and any figure slower than
its tolerance turns the run's exit status into 1, with one line naming figure, baseline, now and tolerance.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# One BLAS/OpenMP thread, set before numpy is first imported (perf_cases below): the figures are CPU seconds
# of this process, which extra threads would inflate by however many cores the machine happens to have.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import pytest  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# The suite reuses the case builders of the plain benchmark scripts and the golden scripts' TrackEval driver.
for extra in (HERE, ROOT / "benchmarks", ROOT / "scripts" / "golden"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import perf_gate  # noqa: E402

try:  # parquet reads and writes (stages, exports) use Arrow's own thread pools: one thread each, for the same reason
    import pyarrow

    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(1)
except ImportError:  # pragma: no cover - pyarrow is a dependency of bench
    pass
from perf_cases import best_of, calibration_workload, min_time  # noqa: E402

_FIGURES = pytest.StashKey[dict]()
_REPORT = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perf", "bench speed gate (benchmarks/perf)")
    group.addoption("--perf-baseline", type=Path, default=perf_gate.BASELINE_FILE,
                    help="baseline file the figures are compared with (default: benchmarks/perf/baseline.json)")
    group.addoption("--perf-write-baseline", action="store_true",
                    help="append this run's figures to the baseline file (value = median of the last runs) "
                         "instead of gating")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_FIGURES] = {}
    config.stash[_REPORT] = []


_CALIBRATION = pytest.StashKey[float]()


@pytest.fixture
def calibration_s(request: pytest.FixtureRequest) -> float:
    """The calibration workload's best time so far in this session (the minimum: least disturbed by neighbours).

    Re-timed (3 rounds) before every test that uses it, 7 rounds the first time, and the session's minimum
    kept: load on a shared machine comes and goes, and the test's own figure is also its best round.
    """
    stash = request.config.stash
    first = _CALIBRATION not in stash
    if first:
        calibration_workload()  # warm-up: imports, allocator
    best = min_time(calibration_workload, 7 if first else 3)
    stash[_CALIBRATION] = min(best, stash.get(_CALIBRATION, best))
    return stash[_CALIBRATION]


class Recorder:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def record(self, benchmark: Any, name: str, value: float, better: str, what: str,
               **extra: Any) -> perf_gate.Figure:
        """Keep ``value`` for the gate and put it (and ``extra``) into the benchmark's extra_info."""
        fig = perf_gate.Figure(name, float(value), better, what)
        self.config.stash[_FIGURES][name] = fig
        benchmark.extra_info.update({"figure": name, "ratio": round(fig.value, 4), "better": better, "what": what,
                                     **{k: (round(v, 5) if isinstance(v, float) else v) for k, v in extra.items()}})
        return fig

    def time_ratio(self, benchmark: Any, name: str, calibration: float, what: str, **extra: Any) -> float | None:
        """Record best round / calibration (lower is better); None when benchmarks are disabled."""
        best = best_of(benchmark)
        if best is None:
            return None
        ratio = best / calibration
        self.record(benchmark, name, ratio, "lower", what, best_s=best, calibration_s=calibration, **extra)
        return ratio


@pytest.fixture
def perf(request: pytest.FixtureRequest) -> Recorder:
    return Recorder(request.config)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After the last test: write the baseline, or compare with it and fail the run on a slowdown."""
    config = session.config
    measured: dict[str, perf_gate.Figure] = config.stash.get(_FIGURES, {})
    lines: list[str] = config.stash[_REPORT]
    if not measured:  # benchmarks skipped (the default --benchmark-skip) or disabled: nothing to gate, say so
        if session.testscollected:
            lines.append("nothing measured, nothing gated: run with --benchmark-only (tox -e perf does)")
        return
    path: Path = config.getoption("--perf-baseline")
    if config.getoption("--perf-write-baseline"):
        data = perf_gate.updated_baseline(perf_gate.load_baseline(path), measured)
        perf_gate.write_baseline(path, data)
        lines.append(f"wrote {len(measured)} figures to {path}")
        lines += [f"{n}: {f['value']} (runs {f['runs']}, spread {f['spread']:.0%})"
                  for n, f in sorted(data["figures"].items()) if n in measured]
        return
    baseline = perf_gate.load_baseline(path)
    if not baseline:
        lines.append(f"no baseline at {path}: nothing to compare (write one with --perf-write-baseline)")
        return
    verdicts, notes = perf_gate.compare(baseline, measured)
    lines += [v.line() for v in verdicts] + notes
    failed = [v for v in verdicts if v.failed]
    if failed:
        lines.append(f"speed gate: {len(failed)} of {len(verdicts)} figures slower than their tolerance: "
                     + ", ".join(v.name for v in failed))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        lines.append(f"speed gate: {len(verdicts)} figures within tolerance")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_REPORT, [])
    if lines:
        terminalreporter.section("speed gate (benchmarks/perf/baseline.json)")
        for line in lines:
            terminalreporter.write_line(line)
