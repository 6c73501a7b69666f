"""Sparse3DTrack depth + 3D geometry on synth-kitti quick (budget 4): training times and accuracy.

Trains the self-supervised DepthNet on the training videos (no depth labels), reports its abs-rel
error against the HIDDEN rendered depth of the val split, then trains a GeometryNet per yaw mode,
with and without depth, on the budget-4 labels and lifts the HIDDEN ground-truth 2D boxes of the
val split: median 3D centre error (m), size error (mean |dh|,|dw|,|dl|, m) and yaw error (deg).
Ground truth is used here only to score. One torch thread, as the CPU budget assumes. It runs on a development
world (``--data-seed``, default 1; bench/data/dev_world.py): a default chosen from these numbers must never have
looked at the benchmark's own world (data seed 0).

    OMP_NUM_THREADS=1 python benchmarks/sparse3dtrack_geometry.py [--profile quick] [--data-seed 1] [--out r.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from bench.data.datasets import load_dataset
from bench.data.dev_world import check_dev_seed, dev_seed
from bench.data.geometry import wrap_angle
from bench.data.tracks import DONTCARE
from bench.labels import sample_budget
from methods.sparse3dtrack import depth as depth_module
from methods.sparse3dtrack import geometry as geometry_module
from methods.sparse3dtrack.config import module_profile
from methods.sparse3dtrack.yaw import YAW_MODES


def depth_errors(net: depth_module.DepthNet, split, every: int = 5, cap: float = 80.0) -> dict[str, float]:
    """abs-rel / median relative error / sq-rel over GT pixels within [0.5, cap] m (sky is inf there)."""
    rel, ratios = [], []
    with torch.no_grad():
        for name, seq in split.sequences.items():
            images = torch.from_numpy(seq.load_images()[::every]).permute(0, 3, 1, 2)
            pred = net(images)[0][:, 0].numpy()
            gt = split.layers[name]["depth"][::every]
            ok = np.isfinite(gt) & (gt > 0.5) & (gt < cap)
            rel.append(np.abs(pred[ok] - gt[ok]) / gt[ok])
            ratios.append(np.median(gt[ok] / pred[ok]))
    r = np.concatenate(rel)
    return {"abs_rel": float(r.mean()), "median_rel": float(np.median(r)), "a1": float(np.mean(r < 0.25)),
            "scale_ratio_median": float(np.median(ratios))}


def box_errors(pred, gt) -> dict[str, float]:
    centre = np.linalg.norm(pred[["x", "y", "z"]].to_numpy(float) - gt[["x", "y", "z"]].to_numpy(float), axis=1)
    size = np.abs(pred[["h", "w", "l"]].to_numpy(float) - gt[["h", "w", "l"]].to_numpy(float)).mean(axis=1)
    yaw = np.degrees(np.abs(wrap_angle(pred["yaw"].to_numpy(float) - gt["yaw"].to_numpy(float))))
    depth = np.abs(pred["z"].to_numpy(float) - gt["z"].to_numpy(float)) / gt["z"].to_numpy(float)
    return {"centre_m": float(np.median(centre)), "size_m": float(np.median(size)), "yaw_deg": float(np.median(yaw)),
            "yaw_flipped": float(np.mean(yaw > 90)), "z_rel": float(np.median(depth))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick"])
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="the run seed (labels and training)")
    parser.add_argument("--data-seed", type=int, default=dev_seed("synth-kitti"), help="a development world")
    parser.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = parser.parse_args()
    check_dev_seed(args.data_seed)
    torch.set_num_threads(1)
    ds = load_dataset("synth-kitti", scale=args.profile, seed=args.data_seed)
    labels = sample_budget(ds.train.tracks, args.budget, seed=args.seed)
    result: dict = {"machine": platform.node(), "profile": args.profile, "budget": args.budget, "seed": args.seed,
                    "data_seed": args.data_seed,
                    "labelled_boxes": int((labels["cls"] != DONTCARE).sum())}
    start = time.perf_counter()
    net, hist = depth_module.train_depth(ds.train.sequences, module_profile("depth", args.profile), seed=args.seed)
    result["depth"] = {"train_s": time.perf_counter() - start, "steps": len(hist), **depth_errors(net, ds.val)}
    print("depth", json.dumps(result["depth"]), flush=True)
    gt = ds.val.tracks[ds.val.tracks["cls"] != DONTCARE].reset_index(drop=True)
    result["geometry"] = []
    for use_depth in (True, False):
        for yaw_mode in YAW_MODES:
            start = time.perf_counter()
            model, hist = geometry_module.train_geometry(ds.train.sequences, labels, net if use_depth else None,
                                                         module_profile("geometry", args.profile), yaw_mode=yaw_mode,
                                                         seed=args.seed)
            train_s = time.perf_counter() - start
            start = time.perf_counter()
            lifted = geometry_module.lift_boxes(model, net if use_depth else None, ds.val.sequences, gt)
            row = {"use_depth": use_depth, "yaw_mode": yaw_mode, "train_s": train_s, "steps": len(hist),
                   "lift_s": time.perf_counter() - start, "boxes": len(gt), **box_errors(lifted, gt)}
            result["geometry"].append(row)
            print("geometry", json.dumps(row), flush=True)
    print("\n| depth | yaw mode | centre err (m) | z rel err | size err (m) | yaw err (deg) | yaw > 90 deg | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in result["geometry"]:
        print(f"| {'yes' if r['use_depth'] else 'no'} | {r['yaw_mode']} | {r['centre_m']:.2f} | {r['z_rel']:.3f} | "
              f"{r['size_m']:.3f} | {r['yaw_deg']:.1f} | {r['yaw_flipped']:.2f} | {r['train_s']:.0f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
