"""BA²-Det's initial pseudo-labels scored against the hidden ground truth of the training videos.

Diagnostic (not a benchmark cell): reconstruct every training video of a synthetic world, run DoubleClustering
and the box fit, and report recall (share of ground-truth boxes that got a pseudo-box within 2 m BEV centre
distance), median centre / size / yaw errors, split into static and moving objects, and the reconstruction time.
Run on a development world (``--data-seed 1``) when choosing settings; the benchmark's own world is seed 0.

    OMP_NUM_THREADS=1 python benchmarks/ba2det_pseudolabels.py --scale quick --data-seed 1 \
        --min-points 5 10 20 --min-iou 0 0.3
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.datasets import load_dataset
from bench.data.geometry import boxes_to_world, wrap_angle
from bench.data.tracks import BOX3D_COLUMNS, DONTCARE
from bench.labels import make_2d_manifest
from methods.ba2det.clustering import ClusterConfig
from methods.ba2det.pseudolabels import BoxChecks, initial_pseudolabels
from methods.ba2det.reconstruct import ReconstructionConfig


def moving_tracks(gt: pd.DataFrame, sequences: dict, speed: float = 1.0) -> set[tuple[str, int]]:
    """(seq, track) whose world centre moves faster than ``speed`` m/s on average (the paper's omega = 1 m/s)."""
    out = set()
    for (seq, track), rows in gt.groupby(["seq", "track_id"]):
        s = sequences[seq]
        index = {int(f): i for i, f in enumerate(s.frame_ids)}
        centres = np.array([boxes_to_world(r[list(BOX3D_COLUMNS)].to_numpy(float)[None],
                                           s.cam_to_world[index[int(r["frame"])]])[0][0] for _, r in rows.iterrows()])
        times = np.array([s.timestamps[index[int(f)]] for f in rows["frame"]])
        if len(rows) > 1 and np.linalg.norm(centres[-1] - centres[0]) / max(times[-1] - times[0], 1e-6) > speed:
            out.add((seq, int(track)))
    return out


def quality(pseudo: pd.DataFrame, gt: pd.DataFrame, moving: set[tuple[str, int]]) -> pd.DataFrame:
    """Per GT box: whether it got a pseudo-box, and the errors of that box (same seq, frame, track id)."""
    real = gt[gt["cls"] != DONTCARE]
    merged = real.merge(pseudo, on=["seq", "frame", "track_id"], suffixes=("", "_p"), how="left")
    p = merged[[f"{c}_p" for c in BOX3D_COLUMNS]].to_numpy(float)
    g = merged[list(BOX3D_COLUMNS)].to_numpy(float)
    has = np.isfinite(p).all(axis=1)
    centre = np.linalg.norm(p[:, [0, 2]] - g[:, [0, 2]], axis=1)
    yaw = np.abs(wrap_angle(2 * (p[:, 6] - g[:, 6]))) / 2  # modulo pi: the fit does not know the front
    size = np.abs(p[:, 3:6] - g[:, 3:6]).mean(axis=1)
    return pd.DataFrame({"seq": merged["seq"], "track_id": merged["track_id"], "depth": g[:, 2], "has": has,
                         "centre": centre, "yaw": yaw, "size": size,
                         "moving": [(s, int(t)) in moving for s, t in zip(merged["seq"], merged["track_id"],
                                                                          strict=True)]})


def summary(q: pd.DataFrame, near: float = 2.0) -> dict[str, float]:
    good = q["has"] & (q["centre"] < near)
    hit = q[q["has"]]
    return {"boxes": len(q), "with_pseudo": float(q["has"].mean()), "recall@2m": float(good.mean()),
            "median_centre_m": float(hit["centre"].median()) if len(hit) else float("nan"),
            "median_size_m": float(hit["size"].median()) if len(hit) else float("nan"),
            "median_yaw_deg": float(np.degrees(hit["yaw"].median())) if len(hit) else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="quick")
    parser.add_argument("--data-seed", type=int, default=1)
    parser.add_argument("--min-points", type=int, nargs="+", default=[100])
    parser.add_argument("--min-iou", type=float, nargs="+", default=[0.3])
    parser.add_argument("--ground-tol", type=float, nargs="+", default=[0.5], help="inf: no ground check")
    parser.add_argument("--delta-1", type=float, default=0.5)
    parser.add_argument("--delta-2", type=float, default=0.7)
    parser.add_argument("--peak-threshold", type=float, default=0.004)
    parser.add_argument("--out", type=Path, default=None, help="write the summary as JSON here")
    args = parser.parse_args()
    ds = load_dataset("synth-waymo", scale=args.scale, seed=args.data_seed)
    for seq in ds.train.sequences.values():
        seq.load_images()
    gt = ds.train.tracks
    manifest = make_2d_manifest(gt, 0, 0)
    labels = manifest.labels(gt)
    moving = moving_tracks(gt[gt["cls"] != DONTCARE], ds.train.sequences)
    cache: dict = {}  # each video is reconstructed once, whatever the clustering settings
    results = []
    for min_points, min_iou, ground_tol in itertools.product(args.min_points, args.min_iou, args.ground_tol):
        start, cpu = time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory() as work:
            pseudo, report = initial_pseudolabels(ds.train.sequences, labels, Path(work),
                                                  ReconstructionConfig(peak_threshold=args.peak_threshold),
                                                  ClusterConfig(args.delta_1, args.delta_2, min_points),
                                                  checks=BoxChecks(min_iou=min_iou, ground_tol=ground_tol),
                                                  cache=cache)
        q = quality(pseudo, gt, moving)
        near, mid, far = q["depth"] < 30, (q["depth"] >= 30) & (q["depth"] < 50), q["depth"] >= 50
        results.append({"min_points": min_points, "min_iou": min_iou, "ground_tol": ground_tol,
                        "seconds": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
                        "all": summary(q), "static": summary(q[~q["moving"]]), "moving": summary(q[q["moving"]]),
                        "0-30m": summary(q[near]), "30-50m": summary(q[mid]), "50m+": summary(q[far]),
                        "per_video": report.frame().to_dict("records")})
    text = json.dumps({"settings": {k: v for k, v in vars(args).items() if k != "out"}, "results": results},
                      indent=1, default=float)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
