"""Depth error of stored val predictions: how far off z is on the objects a tracker did find in 2D.

    python benchmarks/centertrack_depth_error.py [--dataset synth-nuscenes] [--data-seed 0] RUN_DIR [RUN_DIR ...]

Why: centre-distance (nuScenes, 2 m) and 3D-IoU metrics fail together when monocular depth is off by a few
metres, and they do not say by how much. The matching is the ``depth-error`` protocol's
(bench/metrics/depth_error.py: per frame and class, one-to-one by 2D IoU >= 0.5), so the depth error is measured
only where the 2D detection is right; this prints finer range bins than the protocol's three. Per run and GT
depth bin: matches, median signed dz (pred - gt, positive = too far), median |dz|, share with |dz| < 2 m (the
nuScenes gate). One JSON line per run. Writes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.datasets import load_dataset
from bench.metrics.depth_error import DepthErrorMetric

BINS = (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, np.inf)


def summarise(gt_z: np.ndarray, pred_z: np.ndarray) -> dict:
    dz = pred_z - gt_z
    if not len(dz):
        return {"n": 0}
    return {"n": int(len(dz)), "bias": float(np.median(dz)), "abs": float(np.median(np.abs(dz))),
            "within_2m": float(np.mean(np.abs(dz) < 2.0))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="run folders (holding prediction/predictions.parquet)")
    parser.add_argument("--dataset", default="synth-nuscenes")
    parser.add_argument("--data-seed", type=int, default=0, help="the world the runs were scored on")
    args = parser.parse_args()
    ds = load_dataset(args.dataset, scale="quick", seed=args.data_seed)
    metric = DepthErrorMetric()
    gt = ds.val.tracks
    print(f"{args.dataset} (data seed {args.data_seed}) val: depth error on 2D matches (IoU >= 0.5); "
          "median dz = pred - gt (m)\n")
    print("| run | GT depth (m) | matches | median dz | median abs dz | abs dz < 2 m |")
    print("| --- | --- | --- | --- | --- | --- |")
    for run_dir in args.run_dirs:
        pred = pd.read_parquet(Path(run_dir) / "prediction" / "predictions.parquet")
        matched = metric.combine_sequences({seq: metric.eval_sequence(gt[gt["seq"] == seq], pred[pred["seq"] == seq])
                                            for seq in sorted(set(gt["seq"]))})
        out = {"all": summarise(matched.gt, matched.pred)}
        for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
            inside = (matched.gt >= lo) & (matched.gt < hi)
            out[f"{lo:g}-{hi:g}"] = summarise(matched.gt[inside], matched.pred[inside])
        for name, s in out.items():
            if s["n"]:
                print(f"| {Path(run_dir).name} | {name} | {s['n']} | {s['bias']:+.2f} | {s['abs']:.2f} | "
                      f"{s['within_2m']:.2f} |")
        print(json.dumps({"run": str(run_dir), "dataset": args.dataset, "depth_error": out}))


if __name__ == "__main__":
    main()
