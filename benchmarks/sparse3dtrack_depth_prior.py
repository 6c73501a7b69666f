"""Sparse3DTrack's geometry on a development world: depth error by range per depth prior, with and without depth.

Chooses (and re-checks) the geometry module's ``depth_prior`` default under the tuning protocol: on a
development world (bench/data/dev_world.py; synth-kitti data seed 1 by default, never the benchmark's seed 0).
Trains the self-supervised DepthNet on that world's training videos (no depth labels) and, per variant, a
GeometryNet on the budget's labels, then lifts the 2D boxes of every unlabelled object on the training videos
(the boxes the labeler lifts into pseudolabels; here the world's hidden 2D boxes, so that only the geometry is
measured) and scores them with the ``depth-error`` protocol (bench/metrics/depth_error.py): median |dz| by range.
The hidden ground truth of the development world is used only to score.

Variants: ``depth`` (D2, the default: the self-supervised depth prior), ``pinhole`` (D2 with the pinhole prior),
``d1`` (no depth features: constant prior), ``d1-pinhole`` (no depth features, pinhole prior: the old D1).

    OMP_NUM_THREADS=1 python benchmarks/sparse3dtrack_depth_prior.py [--profile quick] [--data-seed 1] [--out r.json]
        [--depth-scale 0.5]   # re-check the depth net's working size (quick: 0.375)
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from bench.data.datasets import load_dataset
from bench.data.dev_world import check_dev_seed, dev_seed
from bench.data.tracks import DONTCARE
from bench.labels import sample_budget
from bench.metrics.depth_error import RANGE_BINS, evaluate_protocol
from methods.sparse3dtrack import depth as depth_module
from methods.sparse3dtrack import geometry as geometry_module
from methods.sparse3dtrack.config import module_profile

VARIANTS = {"depth": (True, "depth"), "pinhole": (True, "pinhole"), "d1": (False, "depth"),
            "d1-pinhole": (False, "pinhole")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick"])
    parser.add_argument("--data-seed", type=int, default=dev_seed("synth-kitti"))
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="the run seed (labels and training)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--depth-scale", type=float, default=None,
                        help="the depth net's working size (default: the profile's), to re-check that default")
    parser.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = parser.parse_args()
    check_dev_seed(args.data_seed)
    torch.set_num_threads(1)
    ds = load_dataset("synth-kitti", scale=args.profile, seed=args.data_seed)
    labels = sample_budget(ds.train.tracks, args.budget, seed=args.seed)
    keys = ["seq", "frame", "track_id"]
    gt = ds.train.tracks[ds.train.tracks["cls"] != DONTCARE]
    labelled = gt.set_index(keys).index.isin(labels.set_index(keys).index)
    targets = gt[~labelled].reset_index(drop=True)
    result: dict = {"machine": platform.node(), "profile": args.profile, "data_seed": args.data_seed,
                    "budget": args.budget, "seed": args.seed, "labelled_boxes": int((labels["cls"] != DONTCARE).sum()),
                    "scored_boxes": len(targets), "rows": []}
    cpu = time.process_time()
    depth_cfg = module_profile("depth", args.profile)
    if args.depth_scale is not None:
        depth_cfg["scale"] = args.depth_scale
    result["depth_scale"] = depth_cfg.get("scale")
    net, _ = depth_module.train_depth(ds.train.sequences, depth_cfg, seed=args.seed)
    result["depth_cpu_s"] = time.process_time() - cpu
    print(f"depth net: {result['depth_cpu_s']:.0f} CPU-s", flush=True)
    for name in args.variants.split(","):
        use_depth, prior = VARIANTS[name]
        cpu = time.process_time()
        cfg = {**module_profile("geometry", args.profile), "depth_prior": prior}
        model, _ = geometry_module.train_geometry(ds.train.sequences, labels, net if use_depth else None, cfg,
                                                  seed=args.seed)
        lifted = geometry_module.lift_boxes(model, net if use_depth else None, ds.train.sequences, targets)
        summary = evaluate_protocol(targets, lifted).summary
        row = {"variant": name, "use_depth": use_depth, "depth_prior": prior, "cpu_s": time.process_time() - cpu,
               **summary}
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
    bins = [b for b, _, _ in RANGE_BINS]
    print(f"\nsynth-kitti {args.profile}, data seed {args.data_seed} (development world), budget {args.budget}, "
          f"seed {args.seed}, depth scale {result['depth_scale']}: median |dz| (m) of {len(targets)} lifted "
          "unlabelled training boxes\n")
    print("| variant | depth features | prior | all | 0-20 m | 20-40 m | 40+ m | bias | CPU-s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        cells = " | ".join(f"{r[b]:.2f}" for b in bins)
        print(f"| {r['variant']} | {'yes' if r['use_depth'] else 'no'} | {r['depth_prior']} | {r['DepthErr']:.2f} | "
              f"{cells} | {r['DepthBias']:+.2f} | {r['cpu_s']:.0f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1, default=float)


if __name__ == "__main__":
    main()
