"""The tuning protocol's firewall: a development world shares no seed and no video with the benchmark's splits."""

from __future__ import annotations

import dataclasses

import pytest

from bench.data.dev_world import (
    BENCHMARK_SEED,
    DEV_WORLDS,
    check_dev_seed,
    content_hashes,
    dev_seed,
    overlap,
)
from bench.data.synth import data_hash
from bench.runner.jobs import _load


@pytest.mark.parametrize("dataset", sorted(DEV_WORLDS))
def test_no_development_world_is_the_benchmarks_seed(dataset):
    seeds = DEV_WORLDS[dataset]
    assert seeds and BENCHMARK_SEED not in seeds
    assert dev_seed(dataset) in seeds
    for seed in seeds:
        assert check_dev_seed(seed) == seed
        assert data_hash(dataset, "quick", seed) != data_hash(dataset, "quick", BENCHMARK_SEED)
    with pytest.raises(ValueError, match="benchmark's world"):
        check_dev_seed(BENCHMARK_SEED)


def test_the_development_world_shares_no_video_with_the_benchmark_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    # Through the runner's own loader, as `--set data.seed=N` reaches it.
    from bench.registry import datasets

    loader = datasets.get("synth-kitti")
    bench_world = _load(loader, {"scale": "smoke", "seed": BENCHMARK_SEED})
    dev = _load(loader, {"scale": "smoke", "seed": dev_seed("synth-kitti")})
    assert dev.data_hash == data_hash("synth-kitti", "smoke", dev_seed("synth-kitti")) != bench_world.data_hash
    # Each world has its own cache folder: a development run never reads (or replaces) the benchmark's export.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth-kitti-smoke-s0", "synth-kitti-smoke-s1"]
    # Names repeat across worlds (0000, 0001, ...): only the contents tell them apart.
    assert set(dev.train.sequences) & set(bench_world.train.sequences)
    assert overlap(bench_world, dev) == []
    assert len(set(content_hashes(bench_world).values())) == len(content_hashes(bench_world))
    # The check can fail: the same world against itself, or one video slipped into the other world, is caught.
    assert len(overlap(bench_world, bench_world)) == len(content_hashes(bench_world))
    leaked = dataclasses.replace(dev.val, sequences={"0009": bench_world.train.sequences["0000"]},
                                 tracks=dev.val.tracks.iloc[:0])
    assert overlap(bench_world, dataclasses.replace(dev, val=leaked)) == [("train/0000", "val/0009")]
