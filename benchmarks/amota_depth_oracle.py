"""What AMOTA a run's 2D detections would reach with better 3D: the nuScenes score of stored val predictions with
their depth, or their whole 3D box, taken from the ground truth they match in 2D.

    python benchmarks/amota_depth_oracle.py [--dataset synth-nuscenes] [--data-seed 0] RUN_DIR [RUN_DIR ...]

Why (issue 21): every synth-nuscenes run reads AMOTA 0.000, and the depth-error protocol says monocular depth is
off by about 2 m at 20-40 m, the size of the nuScenes centre gate. This splits the blame. Each prediction is
matched to the ground truth of its frame and class by 2D IoU (one-to-one, IoU >= 0.5:
``bench.metrics.depth_error.match_2d``, the depth-error protocol's matching), and the run is re-scored with

- ``as run``: the predictions unchanged;
- ``true depth``: each matched box slid along its viewing ray to the true depth (x, y, z scaled by z_gt / z), so
  its 2D position, size and yaw are the tracker's own: the AMOTA a perfect depth head would give these detections;
- ``true centre``: the matched box's centre set to the true centre (size and yaw kept);
- ``true box``: centre, size and yaw of the matched ground truth: the ceiling of these 2D detections and tracks.

Unmatched predictions keep their 3D box in every row, so false positives cost what they cost. Writes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.datasets import load_dataset
from bench.metrics import evaluate
from bench.metrics.depth_error import MIN_IOU, match_2d

SUMMARY = ("amota", "amotp", "recall", "motar", "amota/car", "amota/pedestrian")


def with_truth(gt: pd.DataFrame, pred: pd.DataFrame, mode: str) -> pd.DataFrame:
    """``pred`` with the 3D of its 2D-matched boxes taken from ``gt`` as ``mode`` says (see the module doc)."""
    gt, out = gt.reset_index(drop=True), pred.reset_index(drop=True).copy()
    if mode == "as run":
        return out
    g_rows, p_rows = match_2d(gt, out, MIN_IOU)
    if mode == "true depth":
        ratio = gt.loc[g_rows, "z"].to_numpy(float) / np.maximum(out.loc[p_rows, "z"].to_numpy(float), 1e-3)
        for col in ("x", "y", "z"):
            out.loc[p_rows, col] = out.loc[p_rows, col].to_numpy(float) * ratio
        return out
    cols = ["x", "y", "z"] + (["h", "w", "l", "yaw"] if mode == "true box" else [])
    out.loc[p_rows, cols] = gt.loc[g_rows, cols].to_numpy(float)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="run folders (holding prediction/predictions.parquet)")
    parser.add_argument("--dataset", default="synth-nuscenes")
    parser.add_argument("--data-seed", type=int, default=0, help="the world the runs were scored on")
    args = parser.parse_args()
    ds = load_dataset(args.dataset, scale="quick", seed=args.data_seed)
    gt = ds.val.tracks
    print(f"{args.dataset} (data seed {args.data_seed}) val, nuScenes protocol on stored predictions whose 2D-matched "
          "boxes take their 3D from the ground truth\n")
    print("| run | 3D of the 2D matches | matches | " + " | ".join(SUMMARY) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in SUMMARY) + " |")
    for run_dir in args.run_dirs:
        pred = pd.read_parquet(Path(run_dir) / "prediction" / "predictions.parquet")
        n_match = len(match_2d(gt.reset_index(drop=True), pred.reset_index(drop=True), MIN_IOU)[0])
        scores = {}
        for mode in ("as run", "true depth", "true centre", "true box"):
            result = evaluate("nuscenes", gt, with_truth(gt, pred, mode), sequences=ds.val.sequences)
            scores[mode] = {m: float(result.summary[m]) for m in SUMMARY if m in result.summary}
            cells = " | ".join(f"{scores[mode].get(m, float('nan')):.3f}" for m in SUMMARY)
            print(f"| {'/'.join(Path(run_dir).parts[-4:-1])} | {mode} | {n_match} | {cells} |")
        print(json.dumps({"run": str(run_dir), "dataset": args.dataset, "matches": n_match, "scores": scores}))


if __name__ == "__main__":
    main()
