"""Where a dense 3D point tracker's error comes from (issue 20): 2D error and depth error by frame offset, beside the
"still" guess that leaves every point where it was queried.

APD3D folds 2D position and depth into one number. This script splits them for one stored run of ``delta`` or
``deltav2``: for each validation video and each offset t from the query frame it prints, over the points visible at
t, the median image distance between the prediction and the truth, the same for the still guess, and the median
relative depth error |z_pred / z_true - 1|. A tracker that has learnt to match beats the still guess on every video;
one that has learnt only the training videos' typical motion beats it where the camera moves as in training and
loses where it moves less.

    python benchmarks/point_track_errors.py RUN_DIR [--data DIR] [--offsets 1,4,8,16,32] [--json OUT]

``--data`` is the dataset's val folder of TAPVid-3D npz files (default: the run's dataset in ./data).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml


def project(xyz: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Camera-frame points ``(..., 3)`` -> pixels ``(..., 2)`` (NaN behind the camera or where ``z`` is NaN)."""
    z = xyz[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.stack([xyz[..., 0] / z * k[0, 0] + k[0, 2], xyz[..., 1] / z * k[1, 1] + k[1, 2]], -1)
    uv[z <= 0] = np.nan
    return uv


def video_errors(pred_xyz: np.ndarray, true_xyz: np.ndarray, visible: np.ndarray, k: np.ndarray,
                 offsets: list[int]) -> dict[int, dict[str, float]]:
    """Per offset t (frames after the query frame 0): median 2D error of the prediction and of the still guess (px),
    and median relative depth error, over the points visible at t. Offsets past the video's end are left out."""
    pred_uv, true_uv = project(pred_xyz.astype(np.float64), k), project(true_xyz.astype(np.float64), k)
    out = {}
    for t in offsets:
        if t >= len(true_uv):
            continue
        seen = visible[t] & np.isfinite(true_uv[t]).all(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.abs(pred_xyz[t, seen, 2] / true_xyz[t, seen, 2] - 1.0)
        out[t] = {"points": int(seen.sum()),
                  "px": float(np.nanmedian(np.linalg.norm(pred_uv[t, seen] - true_uv[t, seen], axis=-1))),
                  "still_px": float(np.nanmedian(np.linalg.norm(true_uv[0, seen] - true_uv[t, seen], axis=-1))),
                  "depth_rel": float(np.nanmedian(depth))}
    return out


def main() -> None:
    from bench.data.formats import tapvid3d
    from bench.runner.artifacts import load_point_tracks

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--offsets", default="1,4,8,16,32")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    offsets = [int(x) for x in args.offsets.split(",")]
    data = args.data
    if data is None:
        cfg = yaml.safe_load((args.run / "config.yaml").read_text())["data"]
        data = Path("data") / f"synth-dense-{cfg['scale']}-s{cfg['seed']}" / "val"
    report = {}
    for name, points in sorted(load_point_tracks(args.run / "prediction" / "predictions.npz").items()):
        seq, truth = tapvid3d.read_video(data / f"{name}.npz")
        if not np.all(np.asarray(points.queries)[:, 2] == 0):
            raise SystemExit(f"{name}: this script reads queries at frame 0 only (synth-dense's)")
        report[name] = video_errors(np.asarray(points.xyz), np.asarray(truth.xyz), np.asarray(truth.visible),
                                    seq.intrinsics[0], offsets)
        cells = [f"t{t}: {e['px']:.1f} px (still {e['still_px']:.1f}), depth {e['depth_rel']:.2f}"
                 for t, e in report[name].items()]
        print(name, " | ".join(cells))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
