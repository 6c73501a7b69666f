"""How far linear interpolation between budget labels is from the truth on the synthetic world.

The ``interpolate`` labeler moves a track's 3D box linearly in the world frame between its labelled
frames. If the world's movers drove at constant velocity on straight lines it would be exact, and the
benchmark could not tell a learned labeler from it. This script measures, on the generated ground truth
(no export round trip), the world-frame centre error of that interpolation on the frames between labels,
separately for moving and static tracks.

    python benchmarks/bench_synth_motion.py [--preset synth-kitti] [--scale quick] [--budget 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from bench.data.geometry import boxes_to_world
from bench.data.synth import generate
from bench.data.tracks import BOX3D_COLUMNS, DONTCARE
from bench.labels import sample_budget


def interpolation_errors(split, budget: int, seed: int = 0) -> pd.DataFrame:
    """One row per unlabelled frame inside a track's labelled span: centre error (m), frames to the nearest
    label, moving flag, class; ``attrs["turns"]`` lists (class, heading change in rad) of every labelled track."""
    gt = split.tracks[split.tracks["cls"] != DONTCARE]
    labels = sample_budget(gt, budget, seed=seed)
    labelled = set(zip(labels["seq"], labels["track_id"], labels["frame"], strict=True))
    rows, turns = [], []
    for (seq, track_id), track in gt.groupby(["seq", "track_id"], sort=True):
        sequence = split.sequences[seq]
        track = track.sort_values("frame")
        poses = sequence.cam_to_world[[sequence.index_of(int(f)) for f in track["frame"]]]
        boxes = track[list(BOX3D_COLUMNS)].to_numpy(dtype=np.float64)
        world = [boxes_to_world(b, p) for b, p in zip(boxes, poses, strict=True)]
        centres = np.stack([c[0] for c, _ in world])
        turn = float(np.ptp(np.unwrap([h[0] for _, h in world])))  # heading change along the labelled track
        frames = track["frame"].to_numpy()
        is_label = np.array([(seq, track_id, f) in labelled for f in frames])
        turns.append((track["cls"].iloc[0], turn))
        if is_label.sum() < 2:
            continue
        lf = frames[is_label]
        inside = ~is_label & (frames > lf[0]) & (frames < lf[-1])
        if not inside.any():
            continue
        interp = np.stack([np.interp(frames[inside], lf, centres[is_label, k]) for k in range(3)], axis=1)
        err = np.linalg.norm(interp - centres[inside], axis=1)
        moving = float(np.linalg.norm(centres[-1] - centres[0])) > 0.5 or np.ptp(centres[:, 0]) > 0.5
        gap = np.abs(frames[inside][:, None] - lf[None, :]).min(axis=1)  # frames to the nearest label
        rows.append(pd.DataFrame({"err": err, "gap": gap, "moving": moving, "cls": track["cls"].iloc[0]}))
    errs = pd.concat(rows, ignore_index=True)
    errs.attrs["turns"] = turns
    return errs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="synth-kitti")
    parser.add_argument("--scale", default="quick")
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    ds = generate(args.preset, args.scale, seed=args.seed)
    print(f"generated {args.preset} {args.scale} seed {args.seed} in {time.perf_counter() - start:.1f} s")
    parts = [interpolation_errors(ds.train, args.budget), interpolation_errors(ds.val, args.budget)]
    errs = pd.concat(parts)
    turns = [t for p in parts for t in p.attrs["turns"]]
    vehicles = [t for c, t in turns if c in ("Car", "Van", "Truck")]
    print(f"labelled vehicle tracks turning > 45 deg: {sum(t > np.pi / 4 for t in vehicles)} of {len(vehicles)}; "
          f"> 10 deg: {sum(t > np.pi / 18 for t in vehicles)}")
    print(f"interpolation between budget-{args.budget} labels, world-frame centre error (m), train + val:")
    print("| tracks | frames | median | mean | p90 | max |")
    moving = errs[errs["moving"]]
    for name, part in (("moving", moving), ("moving, >= 3 frames from a label", moving[moving["gap"] >= 3]),
                       ("static", errs[~errs["moving"]])):
        e = part["err"].to_numpy()
        print(f"| {name} | {len(e)} | {np.median(e):.3f} | {e.mean():.3f} | {np.percentile(e, 90):.3f} | "
              f"{e.max():.3f} |")
    for cls, part in errs[errs["moving"]].groupby("cls"):
        e = part["err"].to_numpy()
        print(f"| moving {cls} | {len(e)} | {np.median(e):.3f} | {e.mean():.3f} | {np.percentile(e, 90):.3f} | "
              f"{e.max():.3f} |")


if __name__ == "__main__":
    main()
