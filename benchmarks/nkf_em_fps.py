"""Association speed of nkf-em on one core: frames per second of ``predict`` on synth-mot's validation split.

    OMP_NUM_THREADS=1 python benchmarks/nkf_em_fps.py [--scale quick] [--steps 300] [--repeat 3]

Trains nkf-em on the training split (detections only), then times ``predict`` (appearance descriptors from
the images, Kalman prediction, network scores, Sinkhorn, Hungarian, births and deaths; the detections are
given, so no detector time) on the validation split, best of ``--repeat``. Also times the same tracker on
the validation videos with their detections duplicated and shifted (twice the density) to show how the
cost grows with detections per frame (MOT17's public FRCNN detections: about 20-30 per frame).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import pandas as pd
import torch

from bench import firewall
from bench.data.datasets import load_dataset
from bench.interface import RunContext
from methods.nkf_em.method import NkfEm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="quick")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset("synth-mot", scale=args.scale, seed=0)
    train = firewall.train_view(ds.train, ds.train.tracks, ds.frame_rate, None, identities=False)
    model = NkfEm(steps=args.steps)
    model.fit(train, train.labels, RunContext(seed=0))
    val = firewall.split_view(ds.val, ds.frame_rate)
    shifted = val.detections.copy()
    shifted[["x1", "x2"]] += 0.5 * (shifted["x2"] - shifted["x1"]).to_numpy()[:, None]
    dense = replace(val, detections=pd.concat([val.detections, shifted], ignore_index=True))
    for name, view in (("val", val), ("val x2 density", dense)):
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            model.predict(view, RunContext(seed=0))
            best = min(best, time.perf_counter() - start)
        per_frame = len(view.detections) / view.num_frames
        print(f"{name}: {view.num_frames} frames, {per_frame:.1f} detections/frame, "
              f"{view.num_frames / best:.0f} frames/s (best of {args.repeat})")


if __name__ == "__main__":
    main()
