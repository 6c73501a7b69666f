"""Figure: CLEAR + Identity + HOTA at KITTI-validation size (11 sequences, ~3000 frames); target <= 10 s.

    python benchmarks/bench_trackeval.py [--sequences 11] [--frames 273] [--objects 48] [--official]

Generates KITTI-like 2D ground truth (cars, pedestrians, vans, cyclists moving through a 1242 x 375 image,
occlusion/truncation levels, DontCare regions; ~12 boxes per frame) and a tracker's output (jittered boxes,
10 % missed, ID switches, ~1 false positive per frame), then times ``evaluate("kitti-2d", ...)`` end to end
(KITTI preprocessing of both classes, CLEAR, Identity and HOTA through TrackEval's metric classes) and the
``3d-iou`` protocol on the same tracks. With ``--official`` the same tracks are written as KITTI files and
scored by TrackEval's own Evaluator + Kitti2DBox; its time and HOTA are printed next to ours.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.tracks import make_tracks
from bench.metrics import evaluate

ROOT = Path(__file__).resolve().parents[1]
W, H = 1242.0, 375.0
CLASSES = np.array(["Car", "Pedestrian", "Van", "Cyclist"])
SIZE = {"Car": (120, 70), "Pedestrian": (35, 80), "Van": (140, 90), "Cyclist": (50, 75)}


def make_case(sequences: int, frames: int, objects: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    gt_parts, pred_parts = [], []
    for s in range(sequences):
        n = objects
        cls = rng.choice(CLASSES, n, p=[0.6, 0.25, 0.08, 0.07])
        wh = np.array([SIZE[c] for c in cls]) * rng.uniform(0.6, 1.4, (n, 1))
        start = rng.integers(0, frames - 10, n)
        length = np.minimum(rng.integers(20, 140, n), frames - start)
        obj = np.repeat(np.arange(n), length)
        frame = np.concatenate([np.arange(a, a + b) for a, b in zip(start, length, strict=True)])
        age = frame - start[obj]
        x0, y0 = rng.uniform(0, W - 150, n), rng.uniform(120, H - 100, n)
        vx, vy = rng.normal(0, 3, n), rng.normal(0, 0.3, n)
        x1, y1 = x0[obj] + vx[obj] * age, y0[obj] + vy[obj] * age
        box = np.clip(np.column_stack([x1, y1, x1 + wh[obj, 0], y1 + wh[obj, 1]]), 0, [W, H, W, H])
        keep = (box[:, 2] - box[:, 0] > 2) & (box[:, 3] - box[:, 1] > 2)
        m = int(keep.sum())
        gt = pd.DataFrame({"seq": f"{s:04d}", "frame": frame[keep], "track_id": obj[keep], "cls": cls[obj][keep],
                           "x1": box[keep, 0], "y1": box[keep, 1], "x2": box[keep, 2], "y2": box[keep, 3],
                           "occlusion": rng.choice(4, m, p=[0.6, 0.2, 0.12, 0.08]),
                           "truncation": rng.choice(3, m, p=[0.88, 0.09, 0.03])})
        dc = rng.integers(0, frames, frames)
        dx, dy = rng.uniform(0, W - 100, frames), rng.uniform(100, H - 60, frames)
        dontcare = pd.DataFrame({"seq": f"{s:04d}", "frame": dc, "track_id": -1, "cls": "DontCare", "x1": dx,
                                 "y1": dy, "x2": dx + 60, "y2": dy + 40, "occlusion": 0, "truncation": 0})
        gt_parts += [gt, dontcare]

        pred = gt[rng.uniform(size=m) > 0.1].copy()
        size = np.column_stack([pred.x2 - pred.x1, pred.y2 - pred.y1, pred.x2 - pred.x1, pred.y2 - pred.y1])
        jitter = rng.normal(0, 0.06, (len(pred), 4)) * size
        b = pred[["x1", "y1", "x2", "y2"]].to_numpy() + jitter
        pred[["x1", "y1", "x2", "y2"]] = np.column_stack([np.minimum(b[:, 0], b[:, 2]), np.minimum(b[:, 1], b[:, 3]),
                                                          np.maximum(b[:, 0], b[:, 2]), np.maximum(b[:, 1], b[:, 3])])
        pred["cls"] = pred["cls"].replace({"Van": "Car"})
        # ID switches: from a random frame on, part of each switched track gets a new ID.
        switched = rng.uniform(size=n) < 0.3
        cut = start + rng.integers(0, 20, n)
        late = switched[pred.track_id] & (pred.frame.to_numpy() >= cut[pred.track_id])
        pred.loc[late, "track_id"] += 10_000
        fp_frames = rng.integers(0, frames, frames)
        fx, fy = rng.uniform(0, W - 80, frames), rng.uniform(100, H - 60, frames)
        fps = pd.DataFrame({"seq": f"{s:04d}", "frame": fp_frames, "track_id": 20_000 + np.arange(frames),
                            "cls": rng.choice(["Car", "Pedestrian"], frames), "x1": fx, "y1": fy, "x2": fx + 70,
                            "y2": fy + 50, "occlusion": 0, "truncation": 0, "score": rng.uniform(0.1, 1, frames)})
        pred["score"] = rng.uniform(0.1, 1, len(pred))
        pred_parts += [pred, fps]
    gt_all = pd.concat(gt_parts, ignore_index=True)
    pred_all = pd.concat(pred_parts, ignore_index=True)
    for df in (gt_all, pred_all):  # 3D columns for the 3d-iou run; DontCare rows have none
        real = (df["cls"] != "DontCare").to_numpy()
        n = len(df)
        cx = ((df["x1"] + df["x2"]) / 2 - W / 2).to_numpy() / 40
        depth = 2000 / np.maximum((df["y2"] - df["y1"]).to_numpy(), 1)
        for col, value in {"x": cx, "y": np.full(n, 1.6), "z": depth, "h": np.full(n, 1.5), "w": np.full(n, 1.7),
                           "l": np.full(n, 4.0), "yaw": np.zeros(n)}.items():
            df[col] = np.where(real, value, np.nan)
    return make_tracks(gt_all), make_tracks(pred_all)


def official(gt: pd.DataFrame, pred: pd.DataFrame, frames: int) -> tuple[float, float, float]:
    sys.path.insert(0, str(ROOT / "scripts" / "golden"))
    from make_trackeval_golden import trackeval_kitti, write_kitti_case

    seqs = {s: frames for s in sorted(set(gt["seq"]))}
    with tempfile.TemporaryDirectory() as tmp:
        write_kitti_case(Path(tmp) / "case", gt, pred, seqs)
        start, cpu = time.perf_counter(), time.process_time()
        res = trackeval_kitti(Path(tmp) / "case", seqs, Path(tmp) / "work")
        return time.perf_counter() - start, time.process_time() - cpu, res["car"]["combined"]["HOTA"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=11)
    parser.add_argument("--frames", type=int, default=273)
    parser.add_argument("--objects", type=int, default=48)
    parser.add_argument("--official", action="store_true", help="also time TrackEval's Evaluator on the files")
    args = parser.parse_args()
    gt, pred = make_case(args.sequences, args.frames, args.objects)
    real = gt[gt["cls"] != "DontCare"]
    n_frames = args.sequences * args.frames
    print(f"{args.sequences} sequences, {n_frames} frames, {len(real)} GT boxes ({len(real) / n_frames:.1f}/frame), "
          f"{len(pred)} predictions")
    from types import SimpleNamespace

    sequences = {s: SimpleNamespace(frame_ids=np.arange(args.frames)) for s in sorted(set(gt["seq"]))}
    start, cpu = time.perf_counter(), time.process_time()
    result = evaluate("kitti-2d", gt, pred, sequences=sequences)
    t_kitti, c_kitti = time.perf_counter() - start, time.process_time() - cpu
    print(f"kitti-2d (car + pedestrian, CLEAR + Identity + HOTA): {t_kitti:.2f} s wall, {c_kitti:.2f} s CPU  "
          f"car HOTA {result.summary['HOTA']:.4f} MOTA {result.summary['MOTA']:.4f} IDF1 {result.summary['IDF1']:.4f}")
    start, cpu = time.perf_counter(), time.process_time()
    r3d = evaluate("3d-iou", gt, pred, sequences=sequences)
    print(f"3d-iou (all classes): {time.perf_counter() - start:.2f} s wall, {time.process_time() - cpu:.2f} s CPU  "
          f"HOTA {r3d.summary['HOTA']:.4f}")
    if args.official:
        t_off, c_off, hota = official(gt, pred, args.frames)
        print(f"TrackEval Evaluator + Kitti2DBox (reads the files): {t_off:.2f} s wall, {c_off:.2f} s CPU  "
              f"car HOTA {hota:.4f}")


if __name__ == "__main__":
    main()
