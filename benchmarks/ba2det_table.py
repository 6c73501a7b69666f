"""BA²-Det's tables from stored runs: detection (paper Table 1 layout) and pseudo-label quality per stage (Table 3).

Reads a runs folder (``bench run/sweep --runs-dir``), never re-runs a method. For every ba2det* run on synth-waymo:

* detection, VEHICLE, from the stored predictions through bench's Waymo metric (:mod:`bench.metrics.let_ap`, the
  official op's twin): 3D AP and APH at IoU 0.05 (the paper's "3D AP@0.05"; the waymo-let protocol reports 0.5 only,
  and adding a threshold to the shared protocol would change every stored run's protocol version), LET-3D-AP, -APL
  and -APH at 0.5, overall and by range (0-30, 30-50, 50+ m);
* pseudo-label quality of the ba2det runs against the hidden training ground truth (this script is evaluation, not
  method code): the initial labels after stage 1 (``work/pseudolabels_initial.parquet``) and the final ones after
  self-training (``work/pseudolabels.parquet``), with :func:`ba2det_pseudolabels.quality`.

    python benchmarks/ba2det_table.py --runs /tmp/ba2/runs_quick --out docs-figures.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from ba2det_pseudolabels import moving_tracks, quality, summary  # noqa: E402

from bench.data.datasets import load_dataset  # noqa: E402
from bench.data.tracks import DONTCARE  # noqa: E402
from bench.metrics.let_ap import LET_CONFIG, PLAIN_3D_CONFIG, WaymoDetectionMetric, tracks_to_waymo  # noqa: E402

AT_005 = dataclasses.replace(PLAIN_3D_CONFIG, iou_thresholds=(0.0, 0.05, 0.05, 0.05, 0.05))
BY_RANGE = dataclasses.replace(LET_CONFIG, breakdowns=("OBJECT_TYPE", "RANGE"))


def detection(gt: pd.DataFrame, pred: pd.DataFrame) -> dict[str, float]:
    g, index = tracks_to_waymo(gt)
    p, _ = tracks_to_waymo(pred, index)
    out: dict[str, float] = {}
    for label, config in (("3D@0.05", AT_005), ("LET@0.5", BY_RANGE)):
        metric = WaymoDetectionMetric(config)
        result = metric.combine_sequences({"all": metric.eval_sequence(g, p)})
        for name, r in result.items():
            if "VEHICLE" not in name:
                continue
            shard = name.replace("OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2", "all").replace("RANGE_TYPE_VEHICLE_", "")
            shard = shard.replace("_LEVEL_2", "")
            out[f"{label} AP {shard}"] = 100 * r.ap
            out[f"{label} APH {shard}"] = 100 * r.aph
            if label.startswith("LET"):
                out[f"{label} APL {shard}"] = 100 * r.apl
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    datasets: dict[tuple[str, int], object] = {}
    for run_json in sorted(args.runs.glob("synth-waymo/ba2det*/b*/s*/*/run.json")):
        record = json.loads(run_json.read_text())
        if record["status"] != "ok":
            continue
        folder = run_json.parent
        scale = record["config"]["data"]["scale"]
        data_seed = int(record["config"]["data"].get("seed", 0))
        if (scale, data_seed) not in datasets:
            datasets[(scale, data_seed)] = load_dataset("synth-waymo", scale=scale, seed=data_seed)
        ds = datasets[(scale, data_seed)]
        pred = pd.read_parquet(folder / "prediction" / "predictions.parquet")
        row: dict[str, object] = {"method": record["method"], "budget_3d_%": record["budget"], "seed": record["seed"],
                                  "profile": record["profile"], "wall_s": record["wall_s"],
                                  "peak_mem_mb": record["peak_mem_mb"],
                                  "label_cost": record["manifest"].get("label_cost"),
                                  "timings": record["manifest"].get("timings")}
        row.update(detection(ds.val.tracks, pred))  # type: ignore[attr-defined]
        gt_train = ds.train.tracks  # type: ignore[attr-defined]
        moving = moving_tracks(gt_train[gt_train["cls"] != DONTCARE], ds.train.sequences)  # type: ignore[attr-defined]
        for stage, name in (("initial", "pseudolabels_initial.parquet"), ("final", "pseudolabels.parquet")):
            path = folder / "work" / name
            if path.exists():
                q = quality(pd.read_parquet(path), gt_train, moving)
                row[f"pseudo {stage}"] = {"all": summary(q), "static": summary(q[~q["moving"]]),
                                          "moving": summary(q[q["moving"]]),
                                          "50m+": summary(q[q["depth"] >= 50])}
        rows.append(row)
    text = json.dumps(rows, indent=1, default=lambda v: None if isinstance(v, float) and np.isnan(v) else float(v))
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
