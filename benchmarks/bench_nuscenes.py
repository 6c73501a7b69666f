"""AMOTA on a nuScenes-validation-size synthetic case: bench vs nuscenes-devkit 1.2.0 TrackingEval.

    python benchmarks/bench_nuscenes.py --dir /tmp/nusc/val            # generate + run the devkit + compare
    python benchmarks/bench_nuscenes.py --dir /tmp/nusc/val --reuse    # case and devkit result already there

The case (150 scenes x 40 samples, ~30 GT boxes per sample, 7 classes, tracker noise, misses, false
positives, ID switches, fragments and duplicate hypotheses) is written and scored by the devkit in
``.venvs/nuscenes`` (``scripts/golden/make_nuscenes_golden.py --bench``); bench then reads the same dataroot and
submission and scores them. Prints both timings and the largest difference over all metrics and classes.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=ROOT / ".benchmarks" / "nuscenes_val")
    ap.add_argument("--reuse", action="store_true", help="use the case and devkit result already in --dir")
    ap.add_argument("--scenes", type=int, default=150)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--boxes", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-devkit", action="store_true",
                    help="only write the case and time bench (the devkit needs hours at validation size)")
    args = ap.parse_args()
    if not args.reuse:
        venv_python = ROOT / ".venvs" / "nuscenes" / "bin" / "python"
        subprocess.run([str(venv_python), str(ROOT / "scripts" / "golden" / "make_nuscenes_golden.py"), "--bench",
                        str(args.dir), "--scenes", str(args.scenes), "--samples", str(args.samples),
                        "--boxes", str(args.boxes)] + (["--no-run"] if args.no_devkit else []), check=True)
    sys.path.insert(0, str(ROOT))
    from bench.data.formats.nuscenes_eval import load_nuscenes_eval
    from bench.metrics.nuscenes_tracking import METRIC_NAMES, evaluate_boxes

    result_file = args.dir / "devkit_result.json"
    devkit = None if args.no_devkit or not result_file.exists() else json.loads(result_file.read_text())
    t0 = time.perf_counter()
    gt, pred = load_nuscenes_eval(args.dir / "dataroot", args.dir / "submission.json")
    load_s = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = evaluate_boxes(gt, pred)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    ours_s, ours_cpu = sorted(times)[len(times) // 2], sorted(cpu)[len(cpu) // 2]
    print(f"GT boxes {len(gt)}, predicted boxes {len(pred)}; AMOTA {result.summary['amota']:.6f}")
    print(f"bench: load {load_s:.1f} s, evaluate {ours_s:.2f} s wall / {ours_cpu:.2f} s CPU "
          f"(median of {args.repeats})")
    if devkit is None:
        return 0
    worst, where = 0.0, ""
    for metric in METRIC_NAMES:
        pairs = [(f"{metric}/{c}", result.extras["per_class"][c][metric], v)
                 for c, v in devkit["expected"]["per_class"][metric].items()]
        pairs.append((metric, result.summary[metric], devkit["expected"]["overall"][metric]))
        for name, ours, theirs in pairs:
            if theirs is None:
                diff = 0.0 if math.isnan(ours) else math.inf
            else:
                diff = abs(ours - theirs)
            if diff > worst or not where:
                worst, where = diff, name
    dk = devkit["timing"]
    print(f"AMOTA devkit {devkit['expected']['overall']['amota']:.6f}")
    print(f"max |bench - devkit| over all metrics and classes: {worst:.3g} ({where})")
    print(f"devkit TrackingEval: load {dk['load_s']:.1f} s, evaluate {dk['evaluate_s']:.1f} s wall; "
          f"{dk.get('total_cpu_s', float('nan')):.1f} s CPU in all")
    print(f"speed-up (evaluate, wall): {dk['evaluate_s'] / ours_s:.0f}x; end to end (wall): "
          f"{dk['total_s'] / (load_s + ours_s):.0f}x")
    return 0 if worst <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
