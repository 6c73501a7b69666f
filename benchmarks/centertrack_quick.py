"""CenterTrack oracle run on synth-kitti: training time, peak memory, inference FPS, tracking quality.

    python benchmarks/centertrack_quick.py [--profile quick] [--device cpu] [--scale quick] [--set steps=1500]

Trains on all training ground truth (the oracle upper bound), tracks the validation videos and
scores them with bench.metrics (kitti-2d, 3d-iou and bev-center). Prints one JSON line of results.
"""

from __future__ import annotations

import argparse
import ast
import json
import resource
import sys
import time

import torch

from baselines.centertrack.infer import track_sequences
from baselines.centertrack.learner import CenterTrackLearner
from baselines.centertrack.model import load_weights, save_weights
from baselines.centertrack.train import build_model, resolve_input_size, train
from bench.config import method_params
from bench.data.datasets import load_dataset
from bench.data.tracks import CLASSES, DONTCARE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--preset", default="synth-kitti")
    ap.add_argument("--scale", default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--save", help="write the trained weights here")
    ap.add_argument("--load", help="skip training: load these weights (threshold sweeps)")
    ap.add_argument("--set", nargs="*", default=[], help="config overrides key=value (python literals)")
    args = ap.parse_args()

    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = ast.literal_eval(value)  # numbers / tuples from the command line, never code
        except (ValueError, SyntaxError):
            overrides[key] = value
    cfg = CenterTrackLearner(**{**method_params(args.profile, "centertrack"), **overrides}).config()
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    # bench's own dataset cache ($BENCH_DATA_DIR or ./data), written once and read back without pickle.
    ds = load_dataset(args.preset, scale=args.scale, seed=0)
    data_s = time.perf_counter() - t0
    cfg = resolve_input_size(cfg, ds.train.sequences)
    labels = ds.train.tracks
    present = set(labels["cls"]) - {DONTCARE}
    classes = tuple(c for c in CLASSES if c in present)

    def progress(done: int, total: int, log: dict) -> None:
        if done % 100 == 0 or done == total:
            print(f"step {done}/{total} loss {log['total']:.3f} hm {log['hm']:.3f} dep {log['dep']:.3f} "
                  f"{log['seconds']:.0f}s", file=sys.stderr, flush=True)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if args.load:
        model, history = build_model(cfg, len(classes)), [{"total": float("nan")}]
        load_weights(model, args.load)
        model.eval()
    else:
        model, history = train(ds.train.sequences, labels, classes, cfg, device=args.device, seed=args.seed,
                               progress=progress)
    train_s = time.perf_counter() - t0
    train_cpu_s = time.process_time() - cpu0  # CPU seconds: wall time on a shared machine overstates the cost
    if args.save:
        save_weights(model, args.save)
    pred, stats = track_sequences(model, ds.val.sequences, classes, cfg, device=args.device)
    # Fair speed: a second pass now that everything is warm.
    _, stats = track_sequences(model, ds.val.sequences, classes, cfg, device=args.device)

    from bench.metrics import evaluate

    scores = {}
    for protocol in ("kitti-2d", "3d-iou", "bev-center"):
        try:
            scores[protocol] = evaluate(protocol, ds.val.tracks, pred, sequences=ds.val.sequences).summary
        except Exception as err:  # report and keep going: the timing numbers are still worth having
            scores[protocol] = {"error": repr(err)}
    result = {
        "profile": args.profile, "device": args.device, "overrides": overrides, "classes": classes,
        "threads": torch.get_num_threads(), "data_seconds": round(data_s, 1), "train_seconds": round(train_s, 1),
        "train_cpu_seconds": round(train_cpu_s, 1),
        "steps": len(history), "first_loss": history[0]["total"], "final_loss": history[-1]["total"],
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "rss_before_train_gib": round(rss0 / 2**20, 2),
        "val_frames": stats["frames"], "fps": round(stats["fps"], 1), "val_pred_rows": len(pred),
        "val_gt_rows": int((ds.val.tracks["cls"] != DONTCARE).sum()), "scores": scores,
    }
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
