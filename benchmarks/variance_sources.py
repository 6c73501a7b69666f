"""Where the seed spread of a cell comes from: the evaluation set, training, labels, the world.

    python benchmarks/variance_sources.py [--dataset synth-kitti] [--protocol kitti-2d] [--metric MOTA]
                                          [--store runs/bench.sqlite ...] [--block 4]

Reads the stored val predictions of every finished plain run (no variant) of the dataset at the quick scale and
scores them again on parts of the validation split (nothing is written to the store):

* on the whole split and on disjoint blocks of ``--block`` sequences. Since revision 2, synth-kitti quick has 16
  validation sequences whose first four are the 4-sequence split used before, so block 0 of a run is exactly the
  score that run would have had on the old split (training never sees val).
* **evaluation set**: blocks differ in difficulty for every model alike (that moves all methods together and
  cancels in a comparison on one split); what does not cancel is how differently two runs fare on the same blocks:
  the seed x block interaction, the residual of an additive two-way fit of the runs' block scores. Its std is the
  noise a ``--block``-sequence split adds to each run's number; a split n blocks long divides it by sqrt(n).
* **run seed** (world and evaluation held fixed, data.seed 0): the std over run seeds of each cell, on block 0 (the
  old split) and on the whole split, and what remains of it without the evaluation noise (training, plus the
  sampled labels for a budget: the oracle has every label, so only its training seed varies).
* **world** (run seed 0, ``--set data.seed=S`` runs, kept in a store of their own so that no table mixes them into
  the plain cells, e.g. ``--runs-dir runs-world``): the std over data seeds, which moves training data and
  evaluation set together.

Prints Markdown tables and one JSON line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.datasets import load_dataset
from bench.metrics import evaluate
from bench.store import Store


def _score(protocol: str, metric: str, gt: pd.DataFrame, pred: pd.DataFrame, sequences: dict, seqs: list[str]) -> float:
    part = {s: sequences[s] for s in seqs}
    result = evaluate(protocol, gt[gt["seq"].isin(seqs)], pred[pred["seq"].isin(seqs)], sequences=part)
    return 100.0 * float(result.summary[metric])


def _std(values: pd.Series | np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def _two_way(scores: np.ndarray) -> tuple[float, float]:
    """(interaction std, run std without it) of a runs x blocks table, from an additive two-way fit.

    The residual mean square estimates the interaction variance of one block; the variance of the runs' block
    means minus its share (interaction / n_blocks) estimates the variance the runs would show on an endless split.
    """
    runs, blocks = scores.shape
    if runs < 2 or blocks < 2:
        return float("nan"), float("nan")
    residual = scores - scores.mean(axis=1, keepdims=True) - scores.mean(axis=0, keepdims=True) + scores.mean()
    interaction_var = float((residual ** 2).sum() / ((runs - 1) * (blocks - 1)))
    run_var = float(np.var(scores.mean(axis=1), ddof=1)) - interaction_var / blocks
    return float(np.sqrt(interaction_var)), float(np.sqrt(max(run_var, 0.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="synth-kitti")
    parser.add_argument("--protocol", default="kitti-2d")
    parser.add_argument("--metric", default="MOTA")
    parser.add_argument("--store", action="append", help="results database(s) (default: runs/bench.sqlite)")
    parser.add_argument("--block", type=int, default=4, help="sequences per evaluation block")
    args = parser.parse_args()

    stores = args.store or ["runs/bench.sqlite"]
    frames = []
    for store in stores:
        found = Store(store, readonly=True).runs_frame(live=False)
        found = found[(found["dataset"] == args.dataset) & (found["status"] == "ok") & (found["variant"] == "")
                      & (found["profile"] == "quick")]
        found = found.assign(root=str(Path(store).resolve().parent.parent))  # run_dir is relative to runs/'s folder
        frames.append(found.sort_values("finished_at"))
    runs = pd.concat(frames, ignore_index=True)
    if runs.empty:
        raise SystemExit(f"no finished quick runs on {args.dataset} in {', '.join(stores)}")
    runs["data_seed"] = [int(json.loads(c)["data"].get("seed", 0)) for c in runs["config"]]
    runs["budget"] = ["all" if pd.isna(b) else str(int(b)) for b in runs["budget"]]
    runs = runs.drop_duplicates(["method", "budget", "seed", "data_seed"], keep="last")

    rows = []
    worlds: dict[int, object] = {}
    for run in runs.itertuples():
        path = Path(run.root) / run.run_dir / "prediction" / "predictions.parquet"
        if not path.exists():
            continue
        if run.data_seed not in worlds:
            worlds[run.data_seed] = load_dataset(args.dataset, scale="quick", seed=run.data_seed)
        ds = worlds[run.data_seed]
        gt, sequences = ds.val.tracks, ds.val.sequences
        pred = pd.read_parquet(path)
        names = sorted(sequences)
        blocks = [names[i:i + args.block] for i in range(0, len(names) - args.block + 1, args.block)]
        row = {"method": run.method, "budget": run.budget, "seed": int(run.seed), "data_seed": run.data_seed,
               "all": _score(args.protocol, args.metric, gt, pred, sequences, names)}
        for i, block in enumerate(blocks):
            row[f"block{i}"] = _score(args.protocol, args.metric, gt, pred, sequences, block)
        rows.append(row)
    table = pd.DataFrame(rows)
    block_cols = [c for c in table.columns if c.startswith("block")]
    n_seqs = len(block_cols) * args.block
    unit = f"{args.protocol} {args.metric}, points"

    print(f"{args.dataset} quick val ({n_seqs} sequences; blocks of {args.block}), {unit}\n")
    print("| method | budget | data seed | run seed | whole split | " + " | ".join(block_cols) +
          " | std over blocks |")
    print("| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in block_cols) + " | --- |")
    for r in table.sort_values(["method", "budget", "data_seed", "seed"]).itertuples():
        blocks = [getattr(r, c) for c in block_cols]
        print(f"| {r.method} | {r.budget} | {r.data_seed} | {r.seed} | {r.all:.2f} | "
              + " | ".join(f"{b:.2f}" for b in blocks) + f" | {_std(blocks):.2f} |")

    fixed_world = table[table["data_seed"] == 0]
    print(f"\nPer cell, data seed 0, std over run seeds ({unit}):\n")
    n_blocks = len(block_cols)
    print(f"| method | budget | run seeds | old split (block0): mean ± std | whole split ({n_seqs}): mean ± std "
          f"| evaluation noise, {args.block} seq | evaluation noise, {n_seqs} seq | training and labels |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    cells = []
    for (method, budget), g in fixed_world.groupby(["method", "budget"], sort=True):
        interaction, model = _two_way(g[block_cols].to_numpy(dtype=float))
        cell = {"method": method, "budget": budget, "seeds": sorted(int(s) for s in g["seed"]),
                "old_mean": float(g["block0"].mean()), "old_std": _std(g["block0"]),
                "new_mean": float(g["all"].mean()), "new_std": _std(g["all"]),
                "eval_noise_block": interaction, "eval_noise_split": interaction / np.sqrt(n_blocks),
                "training_and_labels": model,
                "block_difficulty_std": float(np.mean([_std(g.loc[i, block_cols]) for i in g.index]))}
        cells.append(cell)
        print(f"| {method} | {budget} | {','.join(map(str, cell['seeds']))} | {cell['old_mean']:.2f} ± "
              f"{cell['old_std']:.2f} | {cell['new_mean']:.2f} ± {cell['new_std']:.2f} | {interaction:.2f} | "
              f"{cell['eval_noise_split']:.2f} | {model:.2f} |")

    worlds_table = table[(table["seed"] == 0)].groupby(["method", "budget"])
    world_rows = []
    for (method, budget), g in worlds_table:
        if g["data_seed"].nunique() > 1:
            world_rows.append({"method": method, "budget": budget, "data_seeds": sorted(map(int, g["data_seed"])),
                               "mean": float(g["all"].mean()), "std": _std(g["all"])})
    if world_rows:
        print(f"\nWorld (run seed 0, std over data seeds, whole split, {unit}):\n")
        print("| method | budget | data seeds | mean ± std |")
        print("| --- | --- | --- | --- |")
        for w in world_rows:
            print(f"| {w['method']} | {w['budget']} | {','.join(map(str, w['data_seeds']))} | "
                  f"{w['mean']:.2f} ± {w['std']:.2f} |")
    print(json.dumps({"dataset": args.dataset, "protocol": args.protocol, "metric": args.metric,
                      "block": args.block, "cells": cells, "worlds": world_rows}))


if __name__ == "__main__":
    main()
