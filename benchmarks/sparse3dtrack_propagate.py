"""Sparse3DTrack 2D pseudolabel propagation: frames/s and 2D pseudolabel quality per propagation setting.

    python benchmarks/sparse3dtrack_propagate.py [--dataset synth-kitti|synth-nuscenes] [--profile quick]
        [--data-seed 0] [--budget 4] [--seed 0] [--variant paper|motion] [--mining support,self,cycle,step]
        [--grid "conf_drop=0.1,0.2,0.3 conf_update=0.3,0.5 patience=3"] [--save PATH | --load PATH] [--no-crop-check]

Trains ``train_matcher`` (the profile's settings, the variant's matcher settings) on the budget's labels
exactly as the runner cuts them (``bench.runner.jobs.budget_labels``) with their instance masks (as the
firewall hands them out), encodes every training frame once, then runs ``propagate`` (the variant's
settings) for every combination of the grid and scores the 2D pseudo tracks against the HIDDEN
training ground truth with the kitti-2d protocol (evaluation only: the method sees the budget rows).
Tuning a default: ``--data-seed 1`` (the development world), never the benchmark's data seed 0.
Frames/s = training frames / (encoding + propagation) seconds. With the crop check, the default
setting also runs once with ``crop=False`` (the matcher on whole frames) to show what the crop saves.
The first row scores the budget's labels alone (what the base tracker gets when nothing propagates).
Grid values are Python literals (``span_interval=0.25,None``). A ``--load``ed matcher must have been
saved by this script with the same ``--profile``.
Prints a table and one JSON line. One torch thread unless --threads says otherwise.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import resource
import time

import torch

from bench.data.datasets import load_dataset
from bench.data.masks import label_masks
from bench.data.tracks import DONTCARE, make_tracks
from bench.metrics import evaluate
from bench.runner.jobs import budget_labels
from methods.sparse3dtrack.config import VARIANTS, module_profile
from methods.sparse3dtrack.matching import DEFAULTS, build_matcher, train_matcher
from methods.sparse3dtrack.propagate import encode_sequence, propagate

FIELDS = ("MOTA", "IDF1", "HOTA", "DetRe", "DetPr", "FP", "FN", "IDSW")


def parse_grid(text: str) -> list[dict]:
    axes = {}
    for part in text.split():
        key, _, values = part.partition("=")
        axes[key] = [ast.literal_eval(v) for v in values.split(",")]
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())] or [{}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--dataset", default="synth-kitti")
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--variant", default="paper", choices=sorted(VARIANTS))
    parser.add_argument("--mining", default="support,self,cycle,step")
    parser.add_argument("--grid", default="")
    parser.add_argument("--save")
    parser.add_argument("--load")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-crop-check", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = load_dataset(args.dataset, scale=args.profile if args.profile != "paper" else "full", seed=args.data_seed)
    truth = data.train.tracks
    labels, _ = budget_labels(truth, args.budget, seed=args.seed)
    labels = labels[labels["cls"] != DONTCARE].reset_index(drop=True)
    seqs = data.train.sequences
    masks, _ = label_masks(data.name, data.train.layers, labels, seqs)
    variant = VARIANTS[args.variant]
    cfg = {**module_profile("matcher", args.profile), **variant.get("matcher", {})}
    base = dict(variant.get("propagate", {}))
    start = time.perf_counter()
    if args.load:
        matcher = build_matcher({**DEFAULTS, **cfg})
        matcher.load_state_dict(torch.load(args.load, weights_only=True))  # tensors only: no pickle runs
        matcher.eval()
        train_s = float("nan")
    else:
        matcher, _ = train_matcher(seqs, labels, cfg, seed=args.seed, mining=args.mining.split(","), masks=masks)
        train_s = time.perf_counter() - start
        if args.save:
            torch.save(matcher.state_dict(), args.save)
    start = time.perf_counter()
    features = {n: encode_sequence(matcher, s) for n, s in seqs.items()}
    encode_s = time.perf_counter() - start
    frames = sum(s.num_frames for s in seqs.values())

    settings = [{**base, **s} for s in parse_grid(args.grid)]
    if not args.no_crop_check and base.get("search") == "window":
        settings.append({**base, "crop": False})
    rows = []
    # Reference: the budget's labels alone (what the base tracker gets when nothing propagates).
    ref = make_tracks(labels.assign(conf=1.0), source="labels")
    summary = evaluate("kitti-2d", truth, ref, sequences=seqs).summary
    reference = {"rows": len(labels), **{k: round(float(summary[k]), 3) for k in FIELDS}}
    print(f"{'budget labels alone':60s} rows {len(labels):5d}                         "
          + "  ".join(f"{k} {reference[k]}" for k in FIELDS), flush=True)
    for setting in settings:
        start = time.perf_counter()
        out = propagate(matcher, seqs, labels, setting, features=features, masks=masks)
        prop_s = time.perf_counter() - start
        pred = make_tracks(out.drop(columns="labelled"), source="propagate")
        summary = evaluate("kitti-2d", truth, pred, sequences=seqs).summary
        rows.append({"setting": setting, "rows": len(out), "propagate_s": round(prop_s, 2),
                     "fps": round(frames / (encode_s + prop_s), 1), **{k: round(float(summary[k]), 3) for k in FIELDS}})
        print(f"{json.dumps(setting):60s} rows {len(out):5d} prop {prop_s:6.1f}s fps {rows[-1]['fps']:6.1f}  "
              + "  ".join(f"{k} {rows[-1][k]}" for k in FIELDS), flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"dataset": args.dataset, "profile": args.profile, "data_seed": args.data_seed, "seed": args.seed,
                      "variant": args.variant, "mining": args.mining, "budget": args.budget, "frames": frames,
                      "labels": len(labels), "train_s": round(train_s, 1), "encode_s": round(encode_s, 2),
                      "peak_mb": round(peak_mb), "reference": reference,
                      "results": rows}))


if __name__ == "__main__":
    main()
