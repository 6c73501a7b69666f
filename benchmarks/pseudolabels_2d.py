"""2D quality of stored pseudolabels on the training videos: kitti-2d against the hidden training ground truth.

    python benchmarks/pseudolabels_2d.py [--dataset synth-kitti] [--scale quick] [--data-seed 0] [--budget 4]
        [--seeds 0 1 2] [--protocols kitti-2d-scaled kitti-2d] -- PSEUDOLABELS.parquet ...

Why: a 2D tracker's pseudolabels (spot, sam2) are scored by the runner with kitti-2d, while a 3D labeler's are
scored with the 3D pseudolabel protocol; this puts them on one scale (docs/methods/spot.md). Prints one JSON line
per table: the budget's labels alone for each seed (sparse@k), then each given parquet file (read only), with the
share of its propagated boxes (``conf`` < 1) on frames where their track is not in the ground truth (a track kept
alive after its object left the view, or before it entered). Evaluation only: writes nothing.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from bench.data.datasets import load_dataset
from bench.metrics import evaluate
from bench.runner.jobs import budget_labels

FIELDS = ("MOTA", "IDF1", "HOTA", "DetRe", "DetPr", "FP", "FN", "IDSW")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="*")
    parser.add_argument("--dataset", default="synth-kitti")
    parser.add_argument("--scale", default="quick")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--protocols", nargs="*", default=["kitti-2d-scaled", "kitti-2d"])
    args = parser.parse_args()
    data = load_dataset(args.dataset, scale=args.scale, seed=args.data_seed)
    gt, seqs = data.train.tracks, data.train.sequences
    present = set(zip(gt["seq"], gt["track_id"], gt["frame"], strict=True))

    def show(what: str, table: pd.DataFrame) -> None:
        propagated = table[(table["conf"] < 1) & (table["track_id"] >= 0)]
        absent = sum(key not in present for key in zip(propagated["seq"], propagated["track_id"], propagated["frame"],
                                                         strict=True))
        for protocol in args.protocols:
            summary = evaluate(protocol, gt, table, sequences=seqs).summary
            print(json.dumps({"what": what, "protocol": protocol, "rows": len(table),
                              **{k: round(float(summary[k]), 3) for k in FIELDS}, "propagated": len(propagated),
                              "absent_share": round(absent / len(propagated), 3) if len(propagated) else None}))

    for seed in args.seeds:
        labels, _ = budget_labels(gt, args.budget, seed=seed)
        show(f"sparse@{args.budget} seed {seed} (the budget's labels)", labels)
    for path in args.tables:
        show(path, pd.read_parquet(path))


if __name__ == "__main__":
    main()
