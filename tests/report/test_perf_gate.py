"""The speed gate's comparison (benchmarks/perf/perf_gate.py) and its pytest hook, without timing anything real.

The perf suite itself is not part of the default run (minutes, machine-dependent); these tests are, so
that a gate which compares the wrong way round, or a hook that never fails the run, cannot pass silently.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[2] / "benchmarks" / "perf"


def _load_gate():
    spec = importlib.util.spec_from_file_location("perf_gate_under_test", PERF / "perf_gate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


gate = _load_gate()


def _baseline(**figures) -> dict:
    return {"tolerance": 0.3, "figures": {n: {"better": b, "value": v} for n, (b, v) in figures.items()}}


def test_worse_by_reads_each_direction() -> None:
    assert gate.worse_by(10.0, 5.0, "higher") == pytest.approx(1.0)  # speed-up halved: 100 % worse
    assert gate.worse_by(2.0, 4.0, "lower") == pytest.approx(1.0)  # time ratio doubled: 100 % worse
    assert gate.worse_by(10.0, 20.0, "higher") == pytest.approx(-0.5)  # faster is negative
    assert gate.worse_by(2.0, 1.0, "lower") == pytest.approx(-0.5)
    with pytest.raises(ValueError):
        gate.worse_by(1.0, 0.0, "lower")
    with pytest.raises(ValueError):
        gate.worse_by(1.0, 1.0, "sideways")


@pytest.mark.parametrize(("better", "base", "now", "fails"), [
    ("higher", 5.0, 3.0, True),     # speed-up 5x -> 3x: 67 % worse
    ("higher", 5.0, 4.0, False),    # 25 % worse, inside 30 %
    ("higher", 5.0, 50.0, False),   # much faster never fails
    ("lower", 2.0, 2.7, True),      # 35 % slower
    ("lower", 2.0, 2.5, False),     # 25 % slower
    ("lower", 2.0, 0.2, False),
])
def test_compare_fails_only_beyond_tolerance(better: str, base: float, now: float, fails: bool) -> None:
    verdicts, notes = gate.compare(_baseline(fig=(better, base)), {"fig": gate.Figure("fig", now, better)})
    assert [v.failed for v in verdicts] == [fails] and notes == []


def test_failure_line_names_figure_baseline_now_and_tolerance() -> None:
    (v,), _ = gate.compare(_baseline(report=("lower", 16.0)), {"report": gate.Figure("report", 32.0, "lower")})
    line = v.line()
    assert v.failed
    for part in ("report", "baseline 16", "now 32", "+100% worse", "tolerance 30%", "SLOWER"):
        assert part in line


def test_per_figure_tolerance_overrides_the_files() -> None:
    base = _baseline(noisy=("lower", 2.0))
    base["figures"]["noisy"]["tolerance"] = 0.5
    (v,), _ = gate.compare(base, {"noisy": gate.Figure("noisy", 2.8, "lower")})  # 40 % slower
    assert not v.failed and v.tolerance == 0.5


def test_unmeasured_and_unbaselined_figures_are_notes_not_failures() -> None:
    verdicts, notes = gate.compare(_baseline(let_ap=("higher", 3.0)), {"new": gate.Figure("new", 1.0, "lower")})
    assert verdicts == []
    assert any("let_ap" in n and "not measured" in n for n in notes)
    assert any("new" in n and "no baseline" in n for n in notes)


def test_a_changed_direction_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError, match="better"):
        gate.compare(_baseline(fig=("higher", 3.0)), {"fig": gate.Figure("fig", 3.0, "lower")})


def test_figures_must_be_positive_ratios() -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            gate.Figure("x", bad, "lower")


def test_updated_baseline_keeps_recent_runs_median_spread_and_tolerance() -> None:
    data: dict = {}
    for value in (2.0, 2.2, 3.0, 2.4):
        data = gate.updated_baseline(data, {"f": gate.Figure("f", value, "lower", "what")}, date="d")
    fig = data["figures"]["f"]
    assert fig["runs"] == [2.2, 3.0, 2.4]  # the last KEEP_RUNS
    assert fig["value"] == 2.4  # median
    assert fig["spread"] == pytest.approx(3.0 / 2.2 - 1, abs=1e-3)
    assert fig["tolerance"] == pytest.approx(round(2 * (3.0 / 2.2 - 1), 2))  # twice the spread > 30 %
    kept = gate.updated_baseline(data, {}, date="d")  # a run that measured nothing keeps what was there
    assert kept["figures"]["f"] == fig


def test_committed_baseline_would_catch_a_doubling_of_every_figure() -> None:
    """The planted slowdown doubles a figure's time: every committed tolerance must be tighter than that."""
    data = gate.load_baseline(PERF / "baseline.json")
    assert data["figures"], "benchmarks/perf/baseline.json has no figures"
    for name, fig in data["figures"].items():
        assert fig["better"] in ("higher", "lower") and fig["value"] > 0, name
        doubled = fig["value"] / 2 if fig["better"] == "higher" else fig["value"] * 2
        (v,), _ = gate.compare(data, {name: gate.Figure(name, doubled, fig["better"])})
        assert v.failed, f"{name}: tolerance {v.tolerance} would let a 2x slowdown pass"


FAKE_TEST = '''
import os
from perf_cases import planted

def test_fake(benchmark, perf):
    benchmark.pedantic(planted("fake", lambda: sum(range(1000))), rounds=2, iterations=1)
    # The figure comes from the environment: the hook's verdict, not a timing, is under test.
    perf.record(benchmark, "fake", float(os.environ["FAKE_RATIO"]), "lower", "fake figure")
'''


def _run_suite(tmp_path: Path, ratio: float, baseline: dict | None, *extra: str) -> subprocess.CompletedProcess:
    suite = tmp_path / "suite"
    if not suite.exists():
        suite.mkdir()
        for name in ("conftest.py", "perf_gate.py", "perf_cases.py"):
            shutil.copy(PERF / name, suite / name)
        (suite / "test_fake.py").write_text(FAKE_TEST)
    path = suite / "baseline.json"
    if baseline is not None:
        path.write_text(json.dumps(baseline))
    # Under pytest-xdist (-n) the workers' PYTEST_XDIST_* variables would reach the inner pytest, and
    # pytest-benchmark turns itself off where it sees them, which refuses --benchmark-only.
    env = {k: v for k, v in os.environ.items() if k != "BENCH_PERF_PLANT" and not k.startswith("PYTEST_XDIST")}
    env["FAKE_RATIO"] = str(ratio)
    return subprocess.run([sys.executable, "-m", "pytest", str(suite), "--benchmark-only", "-p", "no:cacheprovider",
                           "--perf-baseline", str(path), "-q", *extra], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)


def test_the_hook_fails_the_run_on_a_slowdown_and_passes_otherwise(tmp_path: Path) -> None:
    """End to end through pytest and pytest-benchmark: exit 1 and a named line on a slowdown, 0 within tolerance."""
    slow = _run_suite(tmp_path, 2.0, _baseline(fake=("lower", 1.0)))
    assert slow.returncode == 1, slow.stdout + slow.stderr
    assert "fake (time / calibration): baseline 1, now 2" in slow.stdout and "tolerance 30%" in slow.stdout
    assert "1 passed" in slow.stdout  # every test passed: only the gate failed the run
    ok = _run_suite(tmp_path, 1.2, None)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 figures within tolerance" in ok.stdout


def test_the_hook_writes_a_baseline_it_then_gates_against(tmp_path: Path) -> None:
    written = _run_suite(tmp_path, 1.0, None, "--perf-write-baseline")
    assert written.returncode == 0, written.stdout + written.stderr
    data = json.loads((tmp_path / "suite" / "baseline.json").read_text())
    assert data["figures"]["fake"]["value"] == 1.0 and data["figures"]["fake"]["better"] == "lower"
    assert data["written"][-1]["cpu"]  # which machine the baseline came from
    assert _run_suite(tmp_path, 1.25, None).returncode == 0
    assert _run_suite(tmp_path, 1.35, None).returncode == 1


def test_the_planted_slowdown_doubles_the_timed_cpu_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """BENCH_PERF_PLANT wraps the timed call so that it costs at least twice its own CPU time (never less:
    the busy-wait runs until the clock says so), which every committed tolerance catches (test above)."""
    spec = importlib.util.spec_from_file_location("perf_cases_under_test", PERF / "perf_cases.py")
    cases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cases)
    inner: list[float] = []

    def work() -> int:
        t0 = cases.TIMER()
        out = sum(range(200_000))
        inner.append(cases.TIMER() - t0)
        return out

    monkeypatch.setenv("BENCH_PERF_PLANT", "other,fig")
    assert cases.planted("unnamed", work) is work  # only the named figures are slowed
    slowed = cases.planted("fig", work)
    t0 = cases.TIMER()
    assert slowed() == sum(range(200_000))
    assert cases.TIMER() - t0 >= 2 * inner[-1]
    monkeypatch.setenv("BENCH_PERF_PLANT", "")
    assert cases.planted("fig", work) is work
    # name=F plants a factor F; a figure's own entry wins over "all".
    monkeypatch.setenv("BENCH_PERF_PLANT", "all=1.2,fig=1.5")
    assert cases.planted_factor("fig") == 1.5 and cases.planted_factor("other") == 1.2
    t0 = cases.TIMER()
    cases.planted("fig", work)()
    assert cases.TIMER() - t0 >= 1.5 * inner[-1]
    monkeypatch.setenv("BENCH_PERF_PLANT", "fig=0.5")
    with pytest.raises(ValueError):
        cases.planted_factor("fig")
