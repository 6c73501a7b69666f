"""Score the stored val predictions of a dataset's runs under another protocol (default: kitti-2d).

    python benchmarks/rescore_2d.py [--dataset synth-nuscenes] [--protocol kitti-2d] [--store runs/bench.sqlite]

Why: on synth-nuscenes the nuScenes protocol matches by centre distance (2 m), so a base tracker whose monocular
depth is off by 2-3 m scores AMOTA 0 whatever labels it was trained on. The 2D view (kitti-2d: Car, IoU 0.5)
of the same predictions still ranks the labelers. Reads each plain (non-variant) ok run's
``prediction/predictions.parquet``; the latest run per (method, budget, seed) counts, as in ``bench table``.
Prints mean ± std over seeds per (method, budget), each seed's MOTA and IDF1, and one JSON line.
Writes nothing to the store.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.datasets import load_dataset
from bench.metrics import evaluate

METRICS = ("MOTA", "MOTP", "IDF1", "HOTA", "DetRe", "DetPr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="synth-nuscenes")
    parser.add_argument("--protocol", default="kitti-2d")
    parser.add_argument("--store", default="runs/bench.sqlite")
    args = parser.parse_args()

    with sqlite3.connect(args.store) as con:
        runs = pd.read_sql_query(
            "SELECT method, budget, seed, run_dir, finished_at FROM runs "
            "WHERE dataset = ? AND status = 'ok' AND variant = '' ORDER BY finished_at", con, params=(args.dataset,))
    runs = runs.drop_duplicates(["method", "budget", "seed"], keep="last")
    if runs.empty:
        raise SystemExit(f"no finished runs on {args.dataset} in {args.store}")
    root = Path(args.store).parent.parent  # run_dir is relative to the folder that holds runs/
    ds = load_dataset(args.dataset, scale="quick", seed=0)
    rows = []
    for run in runs.itertuples():
        path = root / run.run_dir / "prediction" / "predictions.parquet"
        if not path.exists():
            continue
        result = evaluate(args.protocol, ds.val.tracks, pd.read_parquet(path), sequences=ds.val.sequences)
        rows.append({"method": run.method, "budget": "all" if pd.isna(run.budget) else int(run.budget),
                     "seed": int(run.seed), **{m: float(result.summary[m]) for m in METRICS}})
    table = pd.DataFrame(rows)
    print(f"{args.dataset} val, {args.protocol} on the stored predictions (mean ± std over seeds)\n")
    print("| method | budget | seeds | " + " | ".join(METRICS) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in METRICS) + " |")
    out = []
    for (method, budget), group in table.groupby(["method", "budget"], sort=False):
        cells = []
        for m in METRICS:
            values = group[m].to_numpy()
            cells.append(f"{values.mean():.3f}" + (f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else ""))
        seeds = ",".join(str(s) for s in sorted(group["seed"]))
        print(f"| {method} | {budget} | {seeds} | " + " | ".join(cells) + " |")
        out.append({"method": method, "budget": budget, "seeds": seeds,
                    **{m: float(group[m].mean()) for m in METRICS}})
    for (method, budget), group in table.groupby(["method", "budget"], sort=False):
        print(f"per seed, {method} @ {budget}: " + ", ".join(
            f"s{r.seed} MOTA {r.MOTA:.3f} IDF1 {r.IDF1:.3f}" for r in group.sort_values("seed").itertuples()))
    print(json.dumps({"dataset": args.dataset, "protocol": args.protocol, "cells": out}))


if __name__ == "__main__":
    main()
