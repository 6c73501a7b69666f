"""Choose SORT's (and nkf-em's tracker) thresholds on a development world, never on the benchmark's validation split.

The development world is synth-mot at another data seed (default 7; the benchmark uses data seed 0): its
training split's ground truth scores every grid point with the mot17 protocol (HOTA); the best point is
printed (copy it to the profiles' methods sections). Run: ``python scripts/tune_sort.py [--seed 7] [--scale quick]``.
"""

from __future__ import annotations

import argparse
import itertools

import torch

from baselines.sort import Sort
from bench import firewall, metrics
from bench.data.datasets import load_dataset
from bench.interface import RunContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", default="quick")
    parser.add_argument("--nkf-em", action="store_true", help="also tune nkf-em's tracker thresholds")
    args = parser.parse_args()
    if args.seed == 0:
        raise SystemExit("data seed 0 is the benchmark's world: tune on another one")
    torch.set_num_threads(1)
    ds = load_dataset("synth-mot", scale=args.scale, seed=args.seed)
    view = firewall.split_view(ds.train, ds.frame_rate)

    def hota(method) -> float:
        pred = method.predict(view, RunContext(seed=0))
        return float(metrics.evaluate("mot17", ds.train.tracks, pred, sequences=ds.train.sequences).summary["HOTA"])

    grid = {"max_age": [1, 3, 5, 10, 20, 30], "min_hits": [1, 2, 3], "iou_threshold": [0.05, 0.1, 0.2, 0.3],
            "det_thresh": [0.0, 0.2, 0.4]}
    results = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        results.append((hota(Sort(**params)), params))
    best = max(results, key=lambda r: r[0])
    print(f"sort: best HOTA {best[0]:.4f} on synth-mot {args.scale} data seed {args.seed} train: {best[1]}",
          flush=True)
    if args.nkf_em:
        from methods.nkf_em.method import NkfEm, NkfEmSupervised

        grid = {"min_prob": [0.02, 0.05, 0.1, 0.2], "birth_score": [0.3, 0.4, 0.5], "max_age": [5, 10, 20, 30],
                "min_hits": [1, 2]}
        for cls in (NkfEm, NkfEmSupervised):
            labels = ds.train.tracks if cls.sees_identities else ds.train.tracks.iloc[:0]
            train = firewall.train_view(ds.train, labels, ds.frame_rate, None, identities=cls.sees_identities)
            model = cls()
            model.fit(train, train.labels, RunContext(seed=0))
            results = []
            for values in itertools.product(*grid.values()):
                params = dict(zip(grid, values, strict=True))
                tuned = cls(**params)
                tuned.net_ = model.net_
                results.append((hota(tuned), params))
            best = max(results, key=lambda r: r[0])
            print(f"{cls.__name__}: best HOTA {best[0]:.4f}: {best[1]}", flush=True)

if __name__ == "__main__":
    main()
