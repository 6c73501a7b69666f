"""3D quality of lifted pseudolabels from ground-truth 2D tracks (``gt2d+<lifter>`` runs), box by box.

    python benchmarks/lifter_quality.py RUN_DIR [RUN_DIR ...]

Why: the ``pseudolabel`` protocol's box errors are medians over boxes that already match a GT box at 3D IoU >=
0.25, so a lifter that misplaces most boxes looks good on the few it places. A ``gt2d+X`` run keeps the
ground-truth identities of its 2D tracks, so here every pseudolabel is compared with the GT box of the same
(seq, frame, track id) on the training split; the human-labelled boxes are left out (they are copies).
Prints one JSON line per run: boxes, share with a 3D box, median centre error (m), median mean |dh, dw, dl| (m),
median |yaw error| (rad) and the share facing the wrong way (|yaw error| > pi/2). Writes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench.data.datasets import load_dataset
from bench.data.geometry import box_center, wrap_angle
from bench.data.tracks import BOX3D_COLUMNS, DONTCARE

KEYS = ["seq", "frame", "track_id"]


def quality(gt: pd.DataFrame, pseudo: pd.DataFrame, labelled: pd.DataFrame) -> dict[str, float]:
    gt = gt[gt["cls"] != DONTCARE]
    human = pd.MultiIndex.from_frame(labelled[KEYS])
    gt = gt[~pd.MultiIndex.from_frame(gt[KEYS]).isin(human)]
    joined = gt.merge(pseudo[pseudo["cls"] != DONTCARE], on=KEYS, suffixes=("", "_p"), how="left")
    p = joined[[f"{c}_p" for c in BOX3D_COLUMNS]].to_numpy(float)
    ok = np.isfinite(p).all(axis=1)
    g = joined[list(BOX3D_COLUMNS)].to_numpy(float)[ok]
    p = p[ok]
    yaw = np.abs(wrap_angle(p[:, 6] - g[:, 6]))
    return {"boxes": int(len(joined)), "lifted": float(ok.mean()) if len(joined) else float("nan"),
            "centre_m": float(np.median(np.linalg.norm(box_center(p) - box_center(g), axis=1))),
            "size_m": float(np.median(np.abs(p[:, 3:6] - g[:, 3:6]).mean(axis=1))),
            "yaw_rad": float(np.median(yaw)), "wrong_facing": float(np.mean(yaw > np.pi / 2))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    for run in args.runs:
        config = yaml.safe_load((run / "config.yaml").read_text())
        record = json.loads((run / "run.json").read_text())
        data = load_dataset(record["dataset"], scale=config["data"]["scale"], seed=int(config["data"]["seed"]))
        pseudo = pd.read_parquet(run / "pseudolabels" / "pseudolabels.parquet")
        labels = pd.read_parquet(run / "labels" / "labels.parquet")
        print(json.dumps({"run": str(run), "method": record["method"], "budget": record["budget"],
                          "seed": record["seed"], **quality(data.train.tracks, pseudo, labels)}))


if __name__ == "__main__":
    main()
