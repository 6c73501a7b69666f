"""Harness speed: runner overhead, report rendering, data generation and pseudolabel frames/s.

There is no official tool to race here, so each figure is bench's best round divided by the
calibration workload's best time measured in the same session (perf_cases.calibration_workload):
a machine twice as fast halves both. Cases are the smallest that still exercise the real code path
(smoke-scale data), so the whole suite stays within a few minutes on a 2-core machine.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from perf_cases import TIMER, calibration_workload, planted

DATASET = "synth-kitti"

pytestmark = pytest.mark.benchmark(timer=TIMER)


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private synthetic-data cache (BENCH_DATA_DIR) so the runner's data loads never touch ./data."""
    root = tmp_path_factory.mktemp("perf-data")
    old = os.environ.get("BENCH_DATA_DIR")
    os.environ["BENCH_DATA_DIR"] = str(root)
    yield root
    if old is None:
        os.environ.pop("BENCH_DATA_DIR", None)
    else:
        os.environ["BENCH_DATA_DIR"] = old


@pytest.fixture(scope="module")
def smoke_data():
    from bench.data.synth import generate

    return generate(DATASET, "smoke", seed=0)


def test_calibration(benchmark, calibration_s: float) -> None:
    """The workload every ratio below is divided by, benchmarked for the record (not gated: it is the unit)."""
    benchmark.pedantic(calibration_workload, rounds=5, iterations=1)
    benchmark.extra_info.update(calibration_s=round(calibration_s, 5), what="fixed numpy/pandas/Python workload")


def test_synth_generation(benchmark, perf, calibration_s: float) -> None:
    """Generating synth-kitti at smoke scale (world, renderer, every layer) from scratch."""
    from bench.data.synth import generate

    ds = benchmark.pedantic(planted("synth_generate_smoke", lambda: generate(DATASET, "smoke", seed=0)),
                            rounds=5, iterations=1, warmup_rounds=1)
    frames = ds.train.num_frames + ds.val.num_frames
    perf.time_ratio(benchmark, "synth_generate_smoke", calibration_s,
                    "generate('synth-kitti', 'smoke') time / calibration", frames=frames)


def test_data_export_read(benchmark, perf, calibration_s: float, smoke_data, tmp_path: Path) -> None:
    """Export to the preset's native format and read it back (what every job's cached load does)."""
    from bench.data.datasets import dataset_spec, export_dataset, format_module

    spec = dataset_spec(DATASET)
    folders = (tmp_path / f"export{i}" for i in itertools.count())

    def export_and_read():
        folder = next(folders)
        export_dataset(smoke_data, spec.format, folder)
        return format_module(spec.format).read_dataset(folder)

    back = benchmark.pedantic(planted("data_export_read_smoke", export_and_read), rounds=7, iterations=1,
                              warmup_rounds=1)
    assert len(back.train.tracks) == len(smoke_data.train.tracks)
    perf.time_ratio(benchmark, "data_export_read_smoke", calibration_s,
                    f"export_dataset + read_dataset ({spec.format}, smoke) time / calibration")


def test_pseudolabel_interpolate(benchmark, perf, calibration_s: float, smoke_data) -> None:
    """Pseudolabel frames/s of the interpolate labeler at budget 4 (the naive labeler every method beats)."""
    from baselines.interpolate import Interpolate
    from bench.interface import RunContext, TrainView
    from bench.labels import sample_budget

    labels = sample_budget(smoke_data.train.tracks, 4, seed=0)
    view = TrainView(name="train", sequences=smoke_data.train.sequences, frame_rate=10.0, labels=labels, budget=4)
    out = benchmark.pedantic(planted("pseudolabel_interpolate_smoke", lambda: Interpolate().label(view, RunContext())),
                             rounds=9, iterations=1, warmup_rounds=1)
    assert len(out) > len(labels[labels["cls"] != "DontCare"])  # it did interpolate between labels
    best = benchmark.stats.stats.min if benchmark.stats else None
    fps = smoke_data.train.num_frames / best if best else None
    perf.time_ratio(benchmark, "pseudolabel_interpolate_smoke", calibration_s,
                    "Interpolate.label (budget 4, smoke train split) time / calibration",
                    frames=smoke_data.train.num_frames, fps=fps)


def test_report_render(benchmark, perf, calibration_s: float, tmp_path: Path) -> None:
    """``render_report`` over 200 stored runs (benchmarks/bench_report.py's synthetic store, scaled down)."""
    from bench_report import fill_store

    from bench.report.html import render_report
    from bench.store import Store

    store = Store(tmp_path / "bench.sqlite")
    n = fill_store(store, 200)
    runs, metrics = store.runs_frame(), store.metrics_frame()
    sites = (tmp_path / f"report{i}" for i in itertools.count())
    result = benchmark.pedantic(planted("report_render_200", lambda: render_report(runs, metrics, next(sites),
                                                                                    source="perf")),
                                rounds=5, iterations=1, warmup_rounds=1)
    assert result.pages > 0
    perf.time_ratio(benchmark, "report_render_200", calibration_s,
                    "render_report over 200 runs time / calibration", runs=n, pages=result.pages)


def _noop_labeler():
    # Built on first use: importing this module must not import bench's runner.
    from bench.interface import Labeler

    class NoOp(Labeler):
        """Returns its labels: what remains of a job's time is the runner's (benchmarks/bench_runner.py)."""

        def label(self, train, ctx) -> pd.DataFrame:
            return train.labels

    return NoOp


def test_runner_noop_jobs(benchmark, perf, calibration_s: float, data_cache: Path, tmp_path: Path) -> None:
    """A sweep of 5 no-op jobs at smoke scale, no scoring: planning, views, stages, markers, store rows, manifests.

    Data loading (from the warm cache) and label sampling are included; benchmarks/bench_runner.py
    overhead subtracts them for the documented per-job figure, here the ratio only has to hold still.
    """
    from bench import registry
    from bench.runner import Job, SweepOptions, run_sweep

    registry.register("perf-noop", _noop_labeler())
    overrides = ("eval.pseudolabel=[]", "data.scale=smoke")
    jobs = [Job("perf-noop", dataset=DATASET, budget=4, seed=s, profile="smoke", overrides=overrides)
            for s in range(5)]
    run_sweep(jobs[:1], SweepOptions(runs_root=tmp_path / "warm", progress=False, device="cpu"))  # data cache
    roots = (tmp_path / f"runs{i}" for i in itertools.count())

    def sweep():
        return run_sweep(jobs, SweepOptions(runs_root=next(roots), progress=False, device="cpu"))

    result = benchmark.pedantic(planted("runner_noop_5_jobs", sweep), rounds=5, iterations=1)
    assert result.exit_code == 0
    perf.time_ratio(benchmark, "runner_noop_5_jobs", calibration_s,
                    "run_sweep of 5 no-op smoke jobs (fresh runs folder) time / calibration", jobs=len(jobs))


def test_runner_skip_finished(benchmark, perf, calibration_s: float, data_cache: Path, tmp_path: Path) -> None:
    """Re-running a sweep of 200 finished cells: the skip path (store + markers), nothing recomputed.

    The cells are marked finished as a completed run leaves them (copied from benchmarks/bench_runner.py
    skip_figure, at 200 instead of 1000 cells).
    """
    from baselines.interpolate import Interpolate
    from bench import registry
    from bench.runner import SweepOptions, expand_grid, plan, run_sweep
    from bench.runner.stages import StageDir, write_text
    from bench.store import MetricRow, RunRecord, Store

    names = [f"perf-interpolate-{i}" for i in range(4)]
    for name in names:
        registry.register(name, Interpolate)
    jobs = expand_grid(names, [1, 2, 4, 8, 16], [DATASET], list(range(10)), profile="smoke")
    root = tmp_path / "runs"
    run_sweep([], SweepOptions(runs_root=root, progress=False, device="cpu"))  # claims the folder as bench's own
    options = SweepOptions(runs_root=root, progress=False, device="cpu")
    planned = plan(jobs, options)
    store = Store(options.store())
    for p in planned:
        stage = StageDir(p.run_dir, "metrics")
        write_text(stage.file("metrics.parquet"), "x")
        stage.mark_done(["metrics.parquet"])
        j = p.job
        store.upsert_run(RunRecord(key=p.key, method=j.method, base=None, dataset=j.dataset, budget=j.budget,
                                   seed=j.seed, profile=j.profile, protocol_version=p.protocol_version, status="ok",
                                   run_dir=str(p.run_dir), wall_s=1.0, config=p.config))
        store.add_metrics(p.key, [MetricRow("train-pseudolabel", "pseudolabel", "", "HOTA", 0.5)])

    def sweep():
        return run_sweep(jobs, SweepOptions(runs_root=root, progress=False, device="cpu"))

    result = benchmark.pedantic(planted("runner_skip_200_cells", sweep), rounds=7, iterations=1, warmup_rounds=1)
    assert len(result.skipped) == len(jobs) == 200
    perf.time_ratio(benchmark, "runner_skip_200_cells", calibration_s,
                    "run_sweep over 200 finished cells (all skipped) time / calibration", cells=len(jobs))


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "--benchmark-only"]))
