"""Generalization of nkf-em across worlds: trained on synth-mot, tested on synth-kitti without retraining.

    OMP_NUM_THREADS=1 python benchmarks/nkf_em_generalization.py [--seeds 0 1 2] [--steps 300]

synth-kitti ships no public detections, so this script makes them with synth-mot's own generator
(``bench.data.synth.labels.public_detections``: misses under occlusion, jitter, false positives, score
spread) from each split's boxes, the visible fraction taken from the visibility bins. Association is scored
class-agnostically (cars, vans, cyclists and pedestrians all as one class, through the mot17 protocol):
the question is whether the learned association transfers, not the classes. Rows: nkf-em trained on
synth-mot (data seed 0, its training split), nkf-em trained on synth-kitti's training split (detections
only), and sort / bytetrack with the profiles' thresholds, all on synth-kitti's validation split.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import torch

from baselines.bytetrack import ByteTrack
from baselines.sort import Sort
from bench import firewall, metrics
from bench.data.datasets import load_dataset
from bench.data.formats.mot import VISIBILITY_BIN_VALUES
from bench.data.synth.labels import public_detections
from bench.data.tracks import DONTCARE
from bench.interface import RunContext
from methods.nkf_em.method import NkfEm


def with_detections(split, width: int, height: int, seed: int):
    real = split.tracks[split.tracks["cls"] != DONTCARE]
    vis = real["visibility"].map(VISIBILITY_BIN_VALUES).fillna(1.0).to_numpy()
    split.detections = public_detections(split.tracks, vis, width, height, np.random.default_rng([seed, 77]))
    return split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--scale", default="quick")
    args = parser.parse_args()
    torch.set_num_threads(1)
    mot = load_dataset("synth-mot", scale=args.scale, seed=0)
    kitti = load_dataset("synth-kitti", scale=args.scale, seed=0)
    w, h = kitti.meta.get("image_size") or next(iter(kitti.val.sequences.values())).image_size
    train_k = with_detections(kitti.train, w, h, 0)
    val_k = with_detections(kitti.val, w, h, 1)
    gt = val_k.tracks.copy()
    gt.loc[gt["cls"] != DONTCARE, "cls"] = "Pedestrian"  # class-agnostic: every object is scored
    gt["score"] = 1.0
    view = firewall.split_view(val_k, kitti.frame_rate)
    view = replace(view, detections=view.detections.assign(cls="Pedestrian"))

    def score(method) -> dict[str, float]:
        pred = method.predict(view, RunContext(seed=0))
        s = metrics.evaluate("mot17", gt, pred, sequences=val_k.sequences).summary
        return {k: float(s[k]) for k in ("HOTA", "IDF1", "MOTA", "IDSW", "AssA")}

    rows: dict[str, list[dict[str, float]]] = {}
    for seed in args.seeds:
        for name, dataset in (("nkf-em trained on synth-mot", mot.train), ("nkf-em trained on synth-kitti", train_k)):
            torch.manual_seed(seed)
            model = NkfEm(steps=args.steps)
            train = firewall.train_view(dataset, dataset.tracks, 10.0, None, identities=False)
            model.fit(train, train.labels, RunContext(seed=seed))
            rows.setdefault(name, []).append(score(model))
    rows["sort"] = [score(Sort())]
    rows["bytetrack"] = [score(ByteTrack())]
    print(f"synth-kitti {args.scale} val (class-agnostic, mot17 protocol), seeds {args.seeds}:")
    print("| method | HOTA | IDF1 | MOTA | IDSW | AssA |\n|---|---:|---:|---:|---:|---:|")
    for name, results in rows.items():
        cells = []
        for k in ("HOTA", "IDF1", "MOTA", "IDSW", "AssA"):
            v = np.array([r[k] for r in results]) * (1 if k == "IDSW" else 100)
            cells.append(f"{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0:.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
