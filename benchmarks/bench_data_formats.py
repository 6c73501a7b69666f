"""Export + read-back time of a synthetic dataset and the annotation density reduction of label budgets.

    python benchmarks/bench_data_formats.py [--preset synth-kitti] [--scale quick] [--seed 0]

Prints the generation time (for context), the time to export to the preset's native format, the
time to read the export back through the format reader (what ``load_dataset`` does on every job once
the cache exists), the cached ``load_dataset`` time, and for k = 2, 4, 8, 16 the number of labels and
dense GT boxes / budget labels over train + val (DontCare regions excluded).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.data.datasets import COMPLETE, dataset_spec, export_dataset, format_module, load_dataset
from bench.data.synth import generate
from bench.labels import K_LEVELS, density_reduction, make_manifest, sample_budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="synth-kitti")
    parser.add_argument("--scale", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    spec = dataset_spec(args.preset)
    work = Path(tempfile.mkdtemp(prefix="bench-formats-"))
    try:
        start = time.perf_counter()
        ds = generate(args.preset, args.scale, args.seed)
        generated = time.perf_counter() - start
        frames = ds.train.num_frames + ds.val.num_frames
        print(f"{args.preset} {args.scale} seed {args.seed}: {frames} frames, generated in {generated:.1f} s")

        folder = work / "export"
        start = time.perf_counter()
        export_dataset(ds, spec.format, folder)
        exported = time.perf_counter() - start
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
        start = time.perf_counter()
        back = format_module(spec.format).read_dataset(folder)
        read = time.perf_counter() - start
        assert (folder / COMPLETE).exists()
        start = time.perf_counter()
        load_dataset(args.preset, args.scale, args.seed, root=folder)
        cached = time.perf_counter() - start
        print(f"export to {spec.format}: {exported:.2f} s ({size:.0f} MiB); read back: {read:.2f} s; "
              f"cached load_dataset: {cached:.2f} s")

        gt = pd.concat([back.train.tracks, back.val.tracks], ignore_index=True)
        dense = int((gt["cls"] != "DontCare").sum())
        tracks = gt[gt["cls"] != "DontCare"].groupby(["seq", "track_id"]).ngroups
        print(f"dense labels: {dense} boxes in {tracks} tracks")
        print("| k | budget labels | density reduction | sampling time | manifest sha256 |")
        print("| --- | --- | --- | --- | --- |")
        for k in K_LEVELS:
            start = time.perf_counter()
            labels = sample_budget(gt, k, seed=args.seed)
            took = time.perf_counter() - start
            n = int((labels["cls"] != "DontCare").sum())
            sha = make_manifest(gt, k, seed=args.seed).sha256[:12]
            print(f"| {k} | {n} | {density_reduction(gt, labels):.1f}x | {took * 1000:.0f} ms | {sha} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
