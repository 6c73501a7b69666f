"""Sparse3DTrack confidence calibration on the development world: expected calibration error of ``conf``.

    python benchmarks/s3dt_calibration.py [--profile quick] [--data-seed 1] [--budget 4] [--seed 0]
        [--variant paper|motion] [--bins 10] [--save PATH | --load PATH]

Trains the matcher on the budget's labels of the development world (synth-kitti, data seed 1 by default:
the benchmark is data seed 0), propagates them with the variant's settings, and scores every propagated
box (not the human labels) against that world's ground truth: right = IoU >= 0.5 with the track's true box
in that frame (a box where the track is absent is wrong). The calibration itself is fitted on the labels
only (propagation's held-out label matches); the ground truth here only *measures* it. Prints the
reliability table of the raw heatmap peak and of the calibrated ``conf`` and one JSON line with both ECEs.
One torch thread.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import pandas as pd
import torch

from bench.data.datasets import load_dataset
from bench.data.masks import label_masks
from bench.data.tracks import DONTCARE
from bench.runner.jobs import budget_labels
from methods.sparse3dtrack.calibration import expected_calibration_error, fit_calibration, reliability
from methods.sparse3dtrack.config import VARIANTS, module_profile
from methods.sparse3dtrack.matching import DEFAULTS, build_matcher, train_matcher
from methods.sparse3dtrack.propagate import encode_sequence, propagate


def correctness(boxes: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Per row of ``boxes``: IoU >= 0.5 with the same track's true box in the same frame (absent: False)."""
    keys = ["seq", "frame", "track_id"]
    gt = truth.loc[truth["cls"] != DONTCARE, [*keys, "x1", "y1", "x2", "y2"]]
    joined = boxes[[*keys, "x1", "y1", "x2", "y2"]].merge(gt, on=keys, how="left", suffixes=("", "_gt"))
    a = joined[["x1", "y1", "x2", "y2"]].to_numpy(float)
    b = joined[["x1_gt", "y1_gt", "x2_gt", "y2_gt"]].to_numpy(float)
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    iou = np.where(np.isfinite(b).all(axis=1), inter / np.maximum(union, 1e-9), 0.0)
    return iou >= 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--data-seed", type=int, default=1)
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", default="paper", choices=sorted(VARIANTS))
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--save")
    parser.add_argument("--load")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("synth-kitti", scale=args.profile if args.profile != "paper" else "full", seed=args.data_seed)
    truth, seqs = data.train.tracks, data.train.sequences
    labels, _ = budget_labels(truth, args.budget, seed=args.seed)
    labels = labels[labels["cls"] != DONTCARE].reset_index(drop=True)
    masks, _ = label_masks(data.name, data.train.layers, labels, seqs)
    variant = VARIANTS[args.variant]
    cfg = {**module_profile("matcher", args.profile), **variant.get("matcher", {})}
    start = time.perf_counter()
    if args.load:
        matcher = build_matcher({**DEFAULTS, **cfg})
        matcher.load_state_dict(torch.load(args.load, weights_only=True))  # tensors only: no pickle runs
        matcher.eval()
    else:
        matcher, _ = train_matcher(seqs, labels, cfg, seed=args.seed, masks=masks)
        if args.save:
            torch.save(matcher.state_dict(), args.save)
    features = {n: encode_sequence(matcher, s) for n, s in seqs.items()}
    # Raw peaks out, then the same fit propagate() makes from the same held-out label matches.
    out = propagate(matcher, seqs, labels, {**variant.get("propagate", {}), "calibration": "none"}, features=features,
                    masks=masks)
    samples = out.attrs["calibration_samples"]
    calibration = fit_calibration(samples[:, 0], samples[:, 1] >= 0.5)
    rows = out[~out["labelled"]].reset_index(drop=True)
    right = correctness(rows, truth)
    raw = rows["conf"].to_numpy(float)
    calibrated = calibration(raw)
    report = {}
    for name, conf in (("raw heatmap peak", raw), ("calibrated conf", calibrated)):
        print(f"{name}: bin      n   confidence  accuracy")
        for b in reliability(conf, right, args.bins):
            if b["n"]:
                print(f"  [{b['lo']:.1f}, {b['hi']:.1f})  {b['n']:6d}   {b['confidence']:.3f}      {b['accuracy']:.3f}")
        report[name] = round(expected_calibration_error(conf, right, args.bins), 4)
    print(json.dumps({"data_seed": args.data_seed, "profile": args.profile, "budget": args.budget, "seed": args.seed,
                      "variant": args.variant, "propagated": len(rows), "share_right": round(float(right.mean()), 3),
                      "label_samples": int(len(samples)), "ece_raw": report["raw heatmap peak"],
                      "ece_calibrated": report["calibrated conf"], "seconds": round(time.perf_counter() - start, 1),
                      "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
