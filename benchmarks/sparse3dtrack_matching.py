"""Sparse3DTrack 2D query matcher on synth-kitti: training time and matching accuracy on held-out pairs.

    python benchmarks/sparse3dtrack_matching.py [--profile quick] [--budget 4] [--mining support,self,cycle,step]
                                                [--set steps=400 lr=0.002] [--save PATH | --load PATH]

Trains ``train_matcher`` on the budget's labels of the training videos (exactly the rows the runner
gives a labeler: ``bench.runner.jobs.budget_labels``), then for every label of every track uses the
label as the template and each of the next 1..5 frames as the target. A match succeeds when the
located box has IoU >= 0.5 with the HIDDEN ground-truth box of that track in that frame (evaluation
only; targets that are themselves labels of the track, i.e. training pairs, and frames where the
track is absent are skipped). Reported with the prior window (the template box as the previous
position, as propagation uses it) and without, next to a "stay" baseline (the template box itself).
Prints a table and one JSON line. Uses one torch thread unless --threads says otherwise.
"""

from __future__ import annotations

import argparse
import ast
import json
import resource
import sys
import time

import numpy as np
import pandas as pd
import torch

from bench.data.datasets import load_dataset
from bench.data.tracks import DONTCARE
from bench.runner.jobs import budget_labels
from methods.sparse3dtrack.config import module_profile
from methods.sparse3dtrack.matching import DEFAULTS, QueryMatcher, box_iou, build_matcher, train_matcher
from methods.sparse3dtrack.mining import MINING, label_tracks

GAPS = (1, 2, 3, 4, 5)


def held_out_pairs(labels: pd.DataFrame, truth: pd.DataFrame, sequences: dict) -> pd.DataFrame:
    """(seq, track_id, template index, template box, target index, gap, true box) for gaps 1..5 forwards."""
    gt = truth[truth["cls"] != DONTCARE]
    gt_boxes = {(r.seq, r.track_id, r.frame): (r.x1, r.y1, r.x2, r.y2) for r in gt.itertuples()}
    rows = []
    for (seq, track_id), items in label_tracks(labels, sequences).items():
        ids = sequences[seq].frame_ids
        labelled = {i for i, _ in items}
        for a, box in items:
            for gap in GAPS:
                b = a + gap
                if b >= len(ids) or b in labelled:
                    continue
                true = gt_boxes.get((seq, track_id, int(ids[b])))
                if true is not None:
                    rows.append({"seq": seq, "track_id": track_id, "a": a, "box": box, "b": b, "gap": gap,
                                 "true": true})
    return pd.DataFrame(rows)


@torch.no_grad()
def evaluate(model: QueryMatcher, sequences: dict, pairs: pd.DataFrame, batch: int = 64) -> pd.DataFrame:
    """Located boxes (with and without the prior window) and their IoU with the hidden truth."""
    model.eval()
    feats = {}
    for name in sorted(set(pairs["seq"])):
        images = torch.from_numpy(np.ascontiguousarray(sequences[name].load_images())).permute(0, 3, 1, 2)
        feats[name] = torch.cat([model.features(images[i:i + 16]) for i in range(0, len(images), 16)])
    out = pairs.copy()
    for column in ("iou_prior", "iou_free", "conf_prior", "iou_stay"):
        out[column] = np.nan
    for start in range(0, len(pairs), batch):
        chunk = pairs.iloc[start:start + batch]
        src = torch.stack([feats[s][a] for s, a in zip(chunk["seq"], chunk["a"], strict=True)])
        dst = torch.stack([feats[s][b] for s, b in zip(chunk["seq"], chunk["b"], strict=True)])
        boxes = torch.tensor(np.stack(chunk["box"].to_numpy()), dtype=torch.float32)
        true = np.stack(chunk["true"].to_numpy())
        tokens = model.template(src, boxes)
        with_prior, conf = model.locate(tokens, dst, prior_boxes=boxes)
        free, _ = model.locate(tokens, dst)
        idx = out.index[start:start + batch]
        out.loc[idx, "iou_prior"] = box_iou(with_prior.numpy(), true)
        out.loc[idx, "iou_free"] = box_iou(free.numpy(), true)
        out.loc[idx, "conf_prior"] = conf.numpy()
        out.loc[idx, "iou_stay"] = box_iou(boxes.numpy(), true)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    ap.add_argument("--preset", default="synth-kitti")
    ap.add_argument("--scale", default="quick")
    ap.add_argument("--budget", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mining", default=",".join(MINING))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", nargs="*", default=[], help="matcher config overrides key=value (python literals)")
    ap.add_argument("--save", help="write the trained weights here")
    ap.add_argument("--load", help="skip training: load these weights (evaluate only)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = dict(module_profile("matcher", args.profile))
    for item in args.set:
        key, value = item.split("=", 1)
        cfg[key] = ast.literal_eval(value)

    dataset = load_dataset(args.preset, scale=args.scale, seed=args.seed)
    train = dataset.train
    labels, _ = budget_labels(train.tracks, args.budget, args.seed)
    real = labels[labels["cls"] != DONTCARE]
    print(f"{args.preset} {args.scale}: {len(train.sequences)} training videos, budget {args.budget}: "
          f"{len(real)} labels on {real.groupby(['seq', 'track_id']).ngroups} tracks", file=sys.stderr)

    start = time.perf_counter()
    history: list[dict] = []
    if args.load:
        model = build_matcher({**DEFAULTS, **cfg})
        model.load_state_dict(torch.load(args.load, map_location="cpu", weights_only=True))
        model.eval()
    else:
        model, history = train_matcher(train.sequences, labels, cfg, mining=args.mining.split(","), seed=args.seed)
    train_s = time.perf_counter() - start
    if args.save:
        torch.save(model.state_dict(), args.save)

    pairs = held_out_pairs(labels, train.tracks, train.sequences)
    start = time.perf_counter()
    result = evaluate(model, train.sequences, pairs)
    eval_s = time.perf_counter() - start

    print(f"{'gap':>4} {'pairs':>6} {'prior':>7} {'free':>7} {'stay':>7}")
    per_gap = {}
    for gap, group in result.groupby("gap"):
        rates = {k: float((group[f"iou_{k}"] >= 0.5).mean()) for k in ("prior", "free", "stay")}
        per_gap[int(gap)] = {"pairs": len(group), **rates}
        print(f"{gap:>4} {len(group):>6} {rates['prior']:>7.3f} {rates['free']:>7.3f} {rates['stay']:>7.3f}")
    overall = {k: float((result[f"iou_{k}"] >= 0.5).mean()) for k in ("prior", "free", "stay")}
    print(f"{'all':>4} {len(result):>6} {overall['prior']:>7.3f} {overall['free']:>7.3f} {overall['stay']:>7.3f}")
    summary = {
        "preset": args.preset, "scale": args.scale, "budget": args.budget, "seed": args.seed,
        "profile": args.profile, "overrides": cfg if args.set else {}, "mining": args.mining,
        "threads": args.threads, "labels": len(real), "train_s": round(train_s, 1),
        "steps_done": len(history), "final_loss": history[-1]["total"] if history else None,
        "eval_pairs": len(result), "eval_s": round(eval_s, 1),
        "success_prior": round(overall["prior"], 4), "success_free": round(overall["free"], 4),
        "success_stay": round(overall["stay"], 4), "median_iou_prior": round(float(result["iou_prior"].median()), 4),
        "per_gap": per_gap, "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
