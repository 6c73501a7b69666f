"""The development worlds: where a method's defaults may be chosen, never the benchmark's own world.

A label-efficient method may only be tuned on what its labels allow. Its thresholds and switches are
therefore chosen on a *development world*: the same synthetic generators at another data seed
(``--set data.seed=N`` on the command line, ``load_dataset(name, scale, seed=N)`` in a script). The
benchmark itself is data seed :data:`BENCHMARK_SEED` (the default of ``data.seed``), train and val splits.

How the seed flows: ``data.seed`` (bench/runner/jobs.py) -> the dataset loader -> the generator, whose every
sequence draws from ``np.random.default_rng([data seed, preset, split, index])`` (bench/data/synth); the export
is cached per seed (``data/<name>-<scale>-s<seed>``) and the data hash, hence every run key, includes it. So
another data seed is another world with the same statistics: other roads, other objects, other videos --
but sequence *names* repeat ("0000", ...), which is why :func:`overlap` compares contents, not names.

One owner: every development world in use is named in :data:`DEV_WORLDS` with what it was used for;
tests/data/test_dev_world.py checks that none shares a seed or a sequence (by content hash) with the
benchmark's splits.
"""

from __future__ import annotations

import hashlib

import numpy as np

from bench.data.sequence import Dataset, Sequence

BENCHMARK_SEED = 0  # the benchmark's world: its train split feeds the budgets, its val split the tables

# dataset -> the data seeds used as development worlds, and what chose what on them.
DEV_WORLDS: dict[str, dict[int, str]] = {
    "synth-kitti": {1: "Sparse3DTrack's geometry defaults (depth prior; docs/methods/sparse3dtrack.md), "
                       "CenterTrack's score thresholds (benchmarks/centertrack_thresholds.py), SPOT's filters"},
    "synth-nuscenes": {1: "CenterTrack's input resolution and depth (issue 21, docs/methods/centertrack.md)"},
    "synth-waymo": {1: "BA2-Det's pseudo-label checks (benchmarks/ba2det_pseudolabels.py)"},
    "synth-mot": {7: "SORT's and nkf-em's tracker thresholds (scripts/tune_sort.py)"},
}


def dev_seeds(dataset: str) -> list[int]:
    """The development world seeds of ``dataset`` (its first is the default one); ValueError if none."""
    if dataset not in DEV_WORLDS:
        raise ValueError(f"no development world for {dataset!r}; known: {sorted(DEV_WORLDS)}")
    return sorted(DEV_WORLDS[dataset])


def dev_seed(dataset: str) -> int:
    """The default development world of ``dataset``: ``--set data.seed=<this>`` when choosing a default."""
    return dev_seeds(dataset)[0]


def check_dev_seed(seed: int) -> int:
    """``seed`` if it names a development world; a clear error for the benchmark's own world."""
    if int(seed) == BENCHMARK_SEED:
        raise ValueError(f"data seed {BENCHMARK_SEED} is the benchmark's world: choose defaults on a development "
                         "world (another data seed, bench/data/dev_world.py)")
    return int(seed)


def sequence_hash(seq: Sequence) -> str:
    """Content hash of one video: its pixels, intrinsics and poses (not its name, which repeats across worlds)."""
    h = hashlib.sha256()
    for t in range(seq.num_frames):
        h.update(np.ascontiguousarray(seq.image(t)).tobytes())
    h.update(np.ascontiguousarray(seq.intrinsics, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(seq.cam_to_world, dtype=np.float64).tobytes())
    return h.hexdigest()


def content_hashes(dataset: Dataset) -> dict[str, str]:
    """``"<split>/<name>" -> sequence_hash`` for every video of both splits."""
    return {f"{split.name}/{name}": sequence_hash(seq)
            for split in (dataset.train, dataset.val) for name, seq in split.sequences.items()}


def overlap(benchmark: Dataset, dev: Dataset) -> list[tuple[str, str]]:
    """Pairs (benchmark video, development video) with the same content; empty when the worlds are disjoint."""
    seen: dict[str, str] = {}
    for key, digest in content_hashes(benchmark).items():
        seen.setdefault(digest, key)
    return [(seen[digest], key) for key, digest in content_hashes(dev).items() if digest in seen]
