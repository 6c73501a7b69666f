"""Figure: LET-3D-AP at Waymo-validation size (202 sequences x 20 frames, ~20 boxes per frame); target <= 30 s.

    python benchmarks/bench_let_ap.py [--sequences 202] [--frames 20] [--boxes 20] [--official]

Generates vehicle-frame ground truth (vehicles, pedestrians, cyclists around the sensor) and predictions
(80 % recalled with longitudinal, lateral, size and heading noise, plus 25 % false positives, random scores),
then times bench.metrics.let_ap.detection_metrics with the LET config (OBJECT_TYPE breakdown, LEVEL_2) and with
the plain 3D config. With ``--official`` (needs ``scripts/make_waymo_venv.sh``) the same arrays also go through
the official op in ``.venvs/waymo`` in a subprocess; its time and its APs are printed next to ours.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SENSOR = np.array([1.43, 0.0, 2.18])
SIZES = {1: (4.6, 1.9, 1.6), 2: (0.8, 0.8, 1.8), 4: (1.8, 0.7, 1.7)}


def make_case(sequences: int, frames: int, boxes: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = sequences * frames * boxes
    frame = np.repeat(np.arange(sequences * frames), boxes)
    types = rng.choice([1, 1, 1, 2, 4], n)
    size = np.array([SIZES[int(t)] for t in types]) * rng.uniform(0.9, 1.1, (n, 1))
    r, a = rng.uniform(4, 75, n), rng.uniform(-np.pi, np.pi, n)
    centre = np.column_stack([SENSOR[0] + r * np.cos(a), r * np.sin(a), size[:, 2] / 2])
    gt = np.column_stack([centre, size, rng.uniform(-np.pi, np.pi, n)])
    keep = rng.uniform(size=n) < 0.8
    pred = gt[keep].copy()
    m = len(pred)
    rel = pred[:, :3] - SENSOR
    pred[:, :3] = SENSOR + rel * (1 + rng.normal(0, 0.05, m))[:, None] + rng.normal(0, 0.15, (m, 3))
    pred[:, 3:6] *= rng.uniform(0.85, 1.15, (m, 3))
    pred[:, 6] += rng.normal(0, 0.2, m)
    n_fp = n // 4
    fp_types = rng.choice([1, 1, 2, 4], n_fp)
    fp_size = np.array([SIZES[int(t)] for t in fp_types])
    fr, fa = rng.uniform(4, 75, n_fp), rng.uniform(-np.pi, np.pi, n_fp)
    fp = np.column_stack([SENSOR[0] + fr * np.cos(fa), fr * np.sin(fa), fp_size[:, 2] / 2, fp_size,
                          rng.uniform(-np.pi, np.pi, n_fp)])
    return {
        "gt_boxes": gt.astype(np.float32), "gt_types": types, "gt_frames": frame,
        "pred_boxes": np.concatenate([pred, fp]).astype(np.float32),
        "pred_types": np.concatenate([types[keep], fp_types]),
        "pred_frames": np.concatenate([frame[keep], rng.integers(0, sequences * frames, n_fp)]),
        "pred_scores": rng.uniform(0, 1, m + n_fp).astype(np.float32),
    }


def run_ours(case: dict[str, np.ndarray]) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from bench.metrics.let_ap import LET_CONFIG, PLAIN_3D_CONFIG, WaymoObjects, detection_metrics

    gt = WaymoObjects(case["gt_boxes"], case["gt_types"], case["gt_frames"])
    pred = WaymoObjects(case["pred_boxes"], case["pred_types"], case["pred_frames"], scores=case["pred_scores"])
    out: dict[str, object] = {}
    for label, config in (("let", LET_CONFIG), ("3d", PLAIN_3D_CONFIG)):
        start = time.perf_counter()
        result = detection_metrics(pred, gt, config)
        out[f"{label}_seconds"] = time.perf_counter() - start
        out[label] = {k: {"ap": r.ap, "apl": r.apl, "aph": r.aph} for k, r in result.items() if r.num_gt}
    return out


def run_official(case_path: Path) -> dict[str, object]:
    """Inside .venvs/waymo: the official op on the same arrays."""
    sys.path.insert(0, str(ROOT / "scripts" / "golden"))
    import tensorflow as tf
    from make_waymo_golden import _config
    from waymo_open_dataset.metrics.ops import py_metrics_ops
    from waymo_open_dataset.metrics.python import config_util_py

    case = dict(np.load(case_path))
    out: dict[str, object] = {}
    for label, let in (("let", True), ("3d", False)):
        config = _config(let)
        del config.breakdown_generator_ids[1:]  # OBJECT_TYPE only, LEVEL_2 only, as ours is timed
        del config.difficulties[1:]
        config.difficulties[0].ClearField("levels")
        config.difficulties[0].levels.append(2)
        start = time.perf_counter()
        ap, aph, apl, *_ = py_metrics_ops.detection_metrics(
            prediction_bbox=tf.constant(case["pred_boxes"]), prediction_type=tf.constant(case["pred_types"], tf.uint8),
            prediction_score=tf.constant(case["pred_scores"]), prediction_frame_id=tf.constant(case["pred_frames"]),
            prediction_overlap_nlz=tf.zeros(len(case["pred_boxes"]), tf.bool),
            ground_truth_bbox=tf.constant(case["gt_boxes"]), ground_truth_type=tf.constant(case["gt_types"], tf.uint8),
            ground_truth_frame_id=tf.constant(case["gt_frames"]),
            ground_truth_difficulty=tf.constant(np.full(len(case["gt_boxes"]), 1), tf.uint8),
            config=config.SerializeToString())
        out[f"{label}_seconds"] = time.perf_counter() - start
        names = config_util_py.get_breakdown_names_from_config(config)
        out[label] = {name: {"ap": float(ap[i]), "apl": float(apl[i]), "aph": float(aph[i])}
                      for i, name in enumerate(names) if "SIGN" not in name}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=202)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--boxes", type=int, default=20)
    parser.add_argument("--official", action="store_true")
    parser.add_argument("--official-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.official_worker:
        print(json.dumps(run_official(args.official_worker)))
        return 0
    case = make_case(args.sequences, args.frames, args.boxes)
    print(f"{args.sequences} sequences x {args.frames} frames: {len(case['gt_boxes'])} GT boxes, "
          f"{len(case['pred_boxes'])} predictions")
    ours = run_ours(case)
    print(f"bench LET-3D-AP (LET config): {ours['let_seconds']:.2f} s; plain 3D config: {ours['3d_seconds']:.2f} s")
    if args.official:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "case.npz"
            np.savez(path, **case)
            proc = subprocess.run([str(ROOT / ".venvs" / "waymo" / "bin" / "python"), __file__,
                                   "--official-worker", str(path)], capture_output=True, text=True, check=True)
        official = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"official op (LET config): {official['let_seconds']:.2f} s; plain 3D: {official['3d_seconds']:.2f} s")
        worst = 0.0
        for label in ("let", "3d"):
            for name, theirs in official[label].items():
                mine = ours[label].get(name)
                if mine is None:
                    continue
                for key in ("ap", "apl", "aph"):
                    worst = max(worst, abs(mine[key] - theirs[key]))
                if "VEHICLE" in name or label == "let":
                    print(f"  {label} {name}: AP ours {mine['ap']:.4f} official {theirs['ap']:.4f}, "
                          f"APL {mine['apl']:.4f}/{theirs['apl']:.4f}, APH {mine['aph']:.4f}/{theirs['aph']:.4f}")
        print(f"largest |ours - official| over AP/APL/APH: {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
