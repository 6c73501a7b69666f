"""Depth error of stored val predictions: how far off z is on the objects a tracker did find in 2D.

    python benchmarks/centertrack_depth_error.py --dataset synth-nuscenes RUN_DIR [RUN_DIR ...]

Why: centre-distance (nuScenes, 2 m) and 3D-IoU metrics fail together when monocular depth is off by a few
metres, and they do not say by how much. Here each val frame's predictions are matched one-to-one to the
ground-truth boxes of the same class by 2D IoU >= 0.5 (Hungarian on IoU), so the depth error is measured only
where the 2D detection is right. Prints, per run and per GT depth bin: matches, median signed dz (pred - gt,
positive = too far), median |dz|, share with |dz| < 2 m. One JSON line per run. Writes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from bench.data.datasets import load_dataset
from bench.data.tracks import DONTCARE

BINS = (0.0, 10.0, 20.0, 40.0, np.inf)


def iou_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) x1 y1 x2 y2 boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def matched_depths(gt: pd.DataFrame, pred: pd.DataFrame, min_iou: float = 0.5) -> pd.DataFrame:
    """(gt z, pred z) of every 2D match, one-to-one per (seq, frame, cls)."""
    gt = gt[(gt["cls"] != DONTCARE) & np.isfinite(gt["z"])]
    cols = ["x1", "y1", "x2", "y2"]
    rows = []
    preds = dict(tuple(pred.groupby(["seq", "frame", "cls"])))
    for key, g in gt.groupby(["seq", "frame", "cls"]):
        p = preds.get(key)
        if p is None:
            continue
        iou = iou_2d(g[cols].to_numpy(float), p[cols].to_numpy(float))
        gi, pi = linear_sum_assignment(-iou)
        ok = iou[gi, pi] >= min_iou
        rows.append(pd.DataFrame({"z_gt": g["z"].to_numpy()[gi[ok]], "z_pred": p["z"].to_numpy()[pi[ok]]}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["z_gt", "z_pred"])


def summarise(m: pd.DataFrame) -> dict:
    dz = (m["z_pred"] - m["z_gt"]).to_numpy(float)
    if not len(dz):
        return {"n": 0}
    return {"n": int(len(dz)), "bias": float(np.median(dz)), "abs": float(np.median(np.abs(dz))),
            "within_2m": float(np.mean(np.abs(dz) < 2.0))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="run folders (holding prediction/predictions.parquet)")
    parser.add_argument("--dataset", default="synth-nuscenes")
    args = parser.parse_args()
    ds = load_dataset(args.dataset, scale="quick", seed=0)
    print(f"{args.dataset} val: depth error on 2D matches (IoU >= 0.5); median dz = pred - gt (m)\n")
    print("| run | GT depth (m) | matches | median dz | median abs dz | abs dz < 2 m |")
    print("| --- | --- | --- | --- | --- | --- |")
    for run_dir in args.run_dirs:
        pred = pd.read_parquet(Path(run_dir) / "prediction" / "predictions.parquet")
        m = matched_depths(ds.val.tracks, pred)
        out = {"all": summarise(m)}
        for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
            out[f"{lo:g}-{hi:g}"] = summarise(m[(m["z_gt"] >= lo) & (m["z_gt"] < hi)])
        for name, s in out.items():
            if s["n"]:
                print(f"| {Path(run_dir).name} | {name} | {s['n']} | {s['bias']:+.2f} | {s['abs']:.2f} | "
                      f"{s['within_2m']:.2f} |")
        print(json.dumps({"run": str(run_dir), "dataset": args.dataset, "depth_error": out}))


if __name__ == "__main__":
    main()
