"""Figure: ``bench report`` over 1000 stored runs (target <= 10 s). Writes nothing outside a temp folder.

    python benchmarks/bench_report.py [--runs 1000] [--keep DIR]

Fills a real Store with synthetic results (methods x bases x budgets x seeds on two datasets, KITTI-style
and nuScenes-style metrics, per-sequence rows, a few failed runs), then times ``render_report``
end to end: reading the store, aggregation, tables, plots and every page.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.report.html import render_report
from bench.store import MetricRow, RunRecord, Store

METHODS = ["sparse", "interpolate", "sparse3dtrack", "spot+centernet", "spot+fcos3d", "sam2+centernet",
           "sam2+fcos3d", "sam2+sparse3dtrack", "oracle"]
BASES = ["centertrack", "deft"]
BUDGETS = [1, 2, 4, 8, 16]
DATASETS = {"synth-kitti": ("3d-iou", ["MOTA", "MOTP", "IDF1", "HOTA", "DetA", "AssA", "IDSW", "FP", "FN"]),
            "synth-nuscenes": ("nuscenes", ["AMOTA", "AMOTP", "MOTA", "MOTP", "Recall", "IDS"])}
N_SEQS = 8


def fill_store(store: Store, n_runs: int, seed: int = 0) -> int:
    """Write ``n_runs`` runs (every 40th failed) with overall and per-sequence metrics; returns runs written."""
    rng = np.random.default_rng(seed)
    # Seed outermost: n runs cover every cell with about n / 164 seeds each, as a real sweep would.
    cells = itertools.product(range(1000), DATASETS, METHODS, BASES, BUDGETS)
    written = 0
    for run_seed, dataset, method, base, budget in cells:
        if written >= n_runs:
            break
        if method == "oracle" and budget != BUDGETS[0]:
            continue
        key = f"{dataset}-{method}-{base}-{budget}-{run_seed}".replace("+", "_")
        status = "failed" if written % 40 == 39 else "ok"
        store.upsert_run(RunRecord(
            key=key, method=method, base=base, dataset=dataset, budget=None if method == "oracle" else budget,
            seed=run_seed, profile="quick", protocol_version="1", status=status,
            error="RuntimeError: diverged" if status == "failed" else None, wall_s=float(rng.uniform(5, 50)),
            peak_mem_mb=float(rng.uniform(200, 900)), fps=float(rng.uniform(2, 60)),
            config={"method": method, "budget": budget, "lr": 1e-3}, manifest={"git": "abc123", "dirty": False},
            run_dir=f"runs/{dataset}/{method}/b{budget}/s{run_seed}/{key}"))
        if status == "ok":
            protocol, names = DATASETS[dataset]
            rows = [MetricRow("val", protocol, seq, name, float(rng.uniform(0.1, 0.6)))
                    for seq in [""] + [f"{i:04d}" for i in range(N_SEQS)] for name in names]
            store.add_metrics(key, rows)
        written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--keep", type=Path, default=None, help="write the store and report here instead of a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        store = Store(root / "bench.sqlite")
        t0 = time.perf_counter()
        n = fill_store(store, args.runs)
        t1, cpu1 = time.perf_counter(), time.process_time()
        runs, metrics = store.runs_frame(), store.metrics_frame()
        result = render_report(runs, metrics, root / "report", source=str(store.path))
        t2, cpu2 = time.perf_counter(), time.process_time()
        print(f"filled {n} runs ({len(metrics)} metric rows) in {t1 - t0:.1f} s")
        # CPU time too: on a shared machine the wall time mostly measures the neighbours.
        print(f"bench report over {n} runs: {t2 - t1:.2f} s wall, {cpu2 - cpu1:.2f} s CPU "
              f"({result.pages} pages, render {result.seconds:.2f} s wall)")


if __name__ == "__main__":
    main()
