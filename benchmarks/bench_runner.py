"""Runner figures for docs/benchmarks.md (## Runner).

    python benchmarks/bench_runner.py skip       # a sweep of 1000 already-finished cells (target <= 30 s)
    python benchmarks/bench_runner.py overhead   # runner overhead per job, method work excluded (target <= 50 ms)
    python benchmarks/bench_runner.py quick      # `bench run --method interpolate --budget 4` at the quick profile

Data and runs go to a temporary folder (BENCH_DATA_DIR is honoured for the synthetic data cache).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from baselines.interpolate import Interpolate
from bench import registry
from bench.interface import Labeler
from bench.runner import Job, SweepOptions, expand_grid, plan, run_sweep
from bench.runner.stages import StageDir, write_text
from bench.store import MetricRow, RunRecord, Store


def skip_figure(root: Path, dataset: str, profile: str) -> None:
    # 1000 cells = 10 method names x 10 budgets x 10 seeds. The ten names all point at the interpolate
    # labeler (there are not ten real methods yet); each is its own cell with its own key and folder.
    names = [f"interpolate-{i}" for i in range(10)]
    for name in names:
        registry.register(name, Interpolate)
    jobs = expand_grid(names, list(range(1, 11)), [dataset], list(range(10)), profile=profile)
    options = SweepOptions(runs_root=root / "runs", progress=False, device="cpu")
    # Mark every cell finished exactly as a completed run leaves it: an "ok" row in the store and a
    # metrics stage with its artifact and marker. (Running 1000 real cells would take ~10 min and
    # exercise nothing more on the skip path, which only reads the store and the markers.)
    t0 = time.perf_counter()
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
    print(f"setup (plan + mark 1000 cells finished): {time.perf_counter() - t0:.1f} s")
    for attempt in range(2):
        cmd = [sys.executable, "-c", (
            "import sys, time; t = time.perf_counter()\n"
            "from bench import registry\nfrom baselines.interpolate import Interpolate\n"
            "from bench.runner import SweepOptions, expand_grid, run_sweep\n"
            f"names = {names!r}\n"
            "[registry.register(n, Interpolate) for n in names]\n"
            f"jobs = expand_grid(names, list(range(1, 11)), [{dataset!r}], list(range(10)), profile={profile!r})\n"
            f"r = run_sweep(jobs, SweepOptions(runs_root={str(root / 'runs')!r}, progress=False, device='cpu'))\n"
            "print(len(r.planned), len(r.skipped), r.exit_code, f'{time.perf_counter() - t:.2f}')\n")]
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
        wall = time.perf_counter() - start
        print(f"run {attempt + 1}: cells {out[0]}, skipped {out[1]}, exit {out[2]}; in-process {out[3]} s, "
              f"process wall (python start + imports included) {wall:.2f} s")


class NoOp(Labeler):
    """Does nothing: returns its labels. What remains of a job's time is the runner's."""

    def label(self, train, ctx) -> pd.DataFrame:
        return train.labels


def overhead_figure(root: Path, dataset: str, profile: str, n: int) -> None:
    """Per job: the sweep's wall time minus data loading, label sampling, method code and scoring.

    Each run's manifest records those four timings (``manifest["timings"]``); what is left is the
    runner's own work: planning (config, key, folders, store query), views, artifact and marker
    writes, store rows and the manifest.
    """
    registry.register("noop", NoOp)
    overrides = ("eval.pseudolabel=[]", f"data.scale={profile}")  # no scoring: that is metric work
    jobs = [Job("noop", dataset=dataset, budget=4, seed=s, profile="smoke", overrides=overrides) for s in range(n)]
    run_sweep(jobs[:1], SweepOptions(runs_root=root / "warm", progress=False, device="cpu"))  # imports, data cache
    options = SweepOptions(runs_root=root / "runs", progress=False, device="cpu")
    from bench.runner.jobs import PLANNING_TIMINGS

    PLANNING_TIMINGS.update(labels_s=0.0, labels_cpu_s=0.0, data_s=0.0, data_cpu_s=0.0)
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = run_sweep(jobs, options)
    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    # Label manifests are sampled while planning (and reused by the labels stage): label work, not overhead.
    # So is the one dataset load planning does for the data hash.
    total -= PLANNING_TIMINGS["labels_s"] + PLANNING_TIMINGS["data_s"]
    cpu -= PLANNING_TIMINGS["labels_cpu_s"] + PLANNING_TIMINGS["data_cpu_s"]
    assert result.exit_code == 0
    store = Store(options.store())
    timings = pd.DataFrame([store.run(p.key).manifest["timings"] for p in result.planned]).fillna(0.0)
    excluded = timings[["data_s", "labels_s", "method_s"]].sum(axis=1)
    planning = total - timings["wall_s"].sum()
    per_job = (timings["wall_s"] - excluded).to_numpy() + planning / n
    med = timings.median() * 1000
    pt = PLANNING_TIMINGS
    skipped = f"planning's label sampling {pt['labels_s']:.2f} s, dataset load {pt['data_s']:.2f} s"
    print(f"{n} jobs in {total:.2f} s (without {skipped}); per job (medians): data loading {med['data_s']:.0f} ms, "
          f"labels stage {med['labels_s']:.0f} ms, method {med['method_s']:.1f} ms; "
          f"planning {planning / n * 1000:.0f} ms")
    print(f"runner overhead per job (excluding data loading, label sampling, method): wall median "
          f"{statistics.median(per_job) * 1000:.0f} ms, mean {per_job.mean() * 1000:.0f} ms")
    cpu_excluded = timings[["data_cpu_s", "labels_cpu_s", "method_cpu_s"]].sum().sum()
    print(f"CPU time of this process: {cpu:.2f} s; minus data/labels/method CPU: {(cpu - cpu_excluded) / n * 1000:.0f} "
          "ms per job")


def quick_figure(root: Path) -> None:
    for attempt in ("cold (synthetic data generated)", "warm (data cached)"):
        runs = root / f"runs-{len(attempt)}"
        start = time.perf_counter()
        proc = subprocess.run(["bench", "run", "--method", "interpolate", "--budget", "4", "--runs-dir", str(runs)],
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        print(f"{attempt}: exit {proc.returncode}, wall {wall:.1f} s")
    store = Store(runs / "bench.sqlite")
    print(store.runs_frame()[["method", "budget", "wall_s", "peak_mem_mb"]].to_string(index=False))
    m = store.metrics_frame()
    m = m[m["seq"] == ""].set_index("metric")["value"]
    keys = ["HOTA", "MOTA", "IDF1", "BoxRecall", "BoxPrecision", "CenterErr", "SizeErr", "YawErr"]
    print(" ".join(f"{k}={m[k]:.4f}" for k in keys if k in m))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("figure", choices=["skip", "overhead", "quick"])
    parser.add_argument("--dataset", default="synth-kitti")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("-n", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.figure == "skip":
            skip_figure(Path(tmp), args.dataset, args.profile)
        elif args.figure == "overhead":
            overhead_figure(Path(tmp), args.dataset, args.profile, args.n)
        else:
            quick_figure(Path(tmp))


if __name__ == "__main__":
    main()
