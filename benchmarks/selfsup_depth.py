"""The self-supervised depth network on a development world: does it learn depth, or collapse to ``min_depth``?

Trains :func:`methods.sparse3dtrack.depth.train_depth` on a world's training videos and poses (no depth label), as
``delta``/``deltav2`` do with ``depth_source=selfsup``, then scores it on the world's validation videos against
the dataset's given depth (synth-dense: rendered depth through its noise model): mean abs-rel per video and the
share of pixels at the 0.5 m floor (a collapsed network). Used to choose ``depth_steps`` and ``depth_lr`` on the
development world (bench/data/dev_world.py), never on the benchmark's world.

    OMP_NUM_THREADS=1 python benchmarks/selfsup_depth.py --data-seed 1 steps=2000 lr=0.0003 [scale=0.5]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bench.data.datasets import load_dataset
from bench.data.dev_world import check_dev_seed
from methods.sparse3dtrack.depth import DEFAULTS, train_depth

FLOOR_MARGIN = 1.1  # a pixel within 10 % of min_depth counts as collapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synth-dense")
    parser.add_argument("--data-seed", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("settings", nargs="*", help="train_depth settings as key=value (steps, lr, scale, ...)")
    args = parser.parse_args()
    check_dev_seed(args.data_seed)
    torch.set_num_threads(1)
    cfg: dict = {"steps": 700, "scale": 0.5}  # delta's selfsup settings before this check
    for item in args.settings:
        key, _, value = item.partition("=")
        cfg[key] = type(DEFAULTS[key])(value) if not isinstance(DEFAULTS[key], tuple) else json.loads(value)
    ds = load_dataset(args.dataset, scale="quick", seed=args.data_seed)
    cpu = time.process_time()
    net, history = train_depth(ds.train.sequences, cfg, seed=args.seed)
    cpu = time.process_time() - cpu
    net.eval()
    floor = float(DEFAULTS["min_depth"]) * FLOOR_MARGIN
    rows = []
    for name in sorted(ds.val.sequences):
        images = torch.from_numpy(np.array(ds.val.sequences[name].load_images())).permute(0, 3, 1, 2)
        with torch.no_grad():
            depth = torch.cat([net(images[i:i + 8])[0][:, 0] for i in range(0, len(images), 8)])
        given = torch.from_numpy(np.array(ds.val.depth[name], np.float32))
        valid = given > 0
        rows.append({"video": name, "abs_rel": float(((depth[valid] - given[valid]).abs() / given[valid]).mean()),
                     "at_floor": float((depth < floor).float().mean())})
    print(json.dumps({"dataset": args.dataset, "data_seed": args.data_seed, "seed": args.seed, "settings": cfg,
                      "cpu_s": round(cpu), "final_loss": history[-1]["photometric"], "val": rows}))


if __name__ == "__main__":
    main()
