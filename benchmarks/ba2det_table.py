"""BA²-Det's tables from stored runs: detection (paper Table 1 layout) and pseudo-label quality per stage (Table 3).

Reads a runs folder (``bench run/sweep --runs-dir``), never re-runs a method. For every ba2det* run on synth-waymo:

* detection, VEHICLE, as the waymo-let protocol stored it (``metrics/metrics.parquet``): 3D AP and APH at IoU 0.05
  (the paper's "3D AP@0.05"), LET-3D-AP, -APL and -APH at 0.5, overall and by range (0-30, 30-50, 50+ m);
* pseudo-label quality of the ba2det runs against the hidden training ground truth (this script is evaluation, not
  method code): the initial labels after stage 1 (``work/pseudolabels_initial.parquet``) and the final ones after
  self-training (``work/pseudolabels.parquet``), with :func:`ba2det_pseudolabels.quality`.

Prints the per-run rows as JSON, then the Table 1 layout in Markdown: mean ± std over seeds (percent) and the
issue's comparisons as paired differences over shared seeds with 95 % t intervals.

    python benchmarks/ba2det_table.py --runs runs-i18 [--out rows.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from ba2det_pseudolabels import moving_tracks, quality, summary  # noqa: E402

from bench.data.datasets import load_dataset  # noqa: E402
from bench.data.tracks import DONTCARE  # noqa: E402
from bench.metrics.let_ap import RANGE_KEYS  # noqa: E402
from bench.report.stats import format_interval, paired_difference  # noqa: E402

# Table 1's columns: (label, the waymo-let summary name for vehicles).
COLUMNS = (("3D AP@0.05", "3D-AP@0.05"), ("3D APH@0.05", "3D-APH@0.05"), ("LET-AP@0.5", "LET-3D-AP"),
           ("LET-APL@0.5", "LET-3D-APL"), ("LET-APH@0.5", "LET-3D-APH"))
# The claims: (row, reference) as (method, budget %).
COMPARISONS = ((("ba2det", 0), ("ba2det-sfm", 0)), (("ba2det", 0), ("ba2det-supervised", 10)),
               (("ba2det", 10), ("ba2det-supervised", 10)), (("ba2det", 10), ("ba2det-supervised", 100)))


def detection(folder: Path) -> dict[str, float]:
    """The run's stored waymo-let vehicle numbers (percent), overall and by range."""
    m = pd.read_parquet(folder / "metrics" / "metrics.parquet")
    m = m[(m["split"] == "val") & (m["protocol"] == "waymo-let") & (m["seq"].fillna("") == "")]
    values = dict(zip(m["metric"], m["value"], strict=True))
    out: dict[str, float] = {}
    for label, name in COLUMNS:
        out[label] = 100 * float(values.get(f"{name}/VEHICLE", 0.0))
        for key in RANGE_KEYS:
            out[f"{label} {key}"] = 100 * float(values.get(f"{name}/VEHICLE/{key}", 0.0))
    return out


def table1(rows: list[dict]) -> str:
    """Mean ± std per (method, budget) and the paired comparisons, as Markdown."""
    by_cell: dict[tuple[str, int], dict[int, dict]] = {}
    for row in rows:
        by_cell.setdefault((row["method"], int(row["budget_3d_%"])), {})[int(row["seed"])] = row
    lines = ["| method | 3D sup. | seeds | " + " | ".join(label for label, _ in COLUMNS) + " |",
             "| --- | --- | ---: |" + " ---: |" * len(COLUMNS)]
    for (method, budget), seeds in sorted(by_cell.items()):
        cells = []
        for label, _ in COLUMNS:
            v = np.array([r[label] for r in seeds.values()])
            cells.append(f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v.mean():.2f}")
        lines.append(f"| {method} | {budget} % | {len(seeds)} | " + " | ".join(cells) + " |")
    lines += ["", "| comparison | seeds | " + " | ".join(label for label, _ in COLUMNS) + " |",
              "| --- | ---: |" + " ---: |" * len(COLUMNS)]
    for a, b in COMPARISONS:
        if a not in by_cell or b not in by_cell:
            continue
        diffs = [paired_difference({s: r[label] for s, r in by_cell[a].items()},
                                   {s: r[label] for s, r in by_cell[b].items()}) for label, _ in COLUMNS]
        lines.append(f"| {a[0]} {a[1]} % − {b[0]} {b[1]} % | {diffs[0].n} | "
                     + " | ".join(format_interval(d) for d in diffs) + " |")
    return "\n".join(lines)


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
        row: dict[str, object] = {"method": record["method"], "budget_3d_%": record["budget"], "seed": record["seed"],
                                  "profile": record["profile"], "wall_s": record["wall_s"],
                                  "peak_mem_mb": record["peak_mem_mb"],
                                  "label_cost": record["manifest"].get("label_cost"),
                                  "timings": record["manifest"].get("timings")}
        row.update(detection(folder))
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
    print(table1(rows))
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
