"""pretrained2d's training corpus: fully labelled 2D tracks of synthetic worlds that are never the benchmark's.

SAM 2 learns from abundant 2D labels of videos that are not the benchmark's (SA-V). Its stand-in here learns
from other *worlds* of bench's own generator: a world is a (preset, world seed) pair at the benchmark's scale,
generated in memory (:func:`bench.data.synth.generate`), its train and val sequences both used, every box with
its identity. The benchmark is data seed 0 and the development worlds that tuned defaults are seeds 1 and 7
(docs/benchmarks.md); corpus worlds start at seed 1000, and :func:`check_disjoint` refuses a corpus that shares a
sequence with the videos a run is given (content hashes of the pixels, not names).

The corpus is identified by its *data hash*: the sha256 of its worlds' data hashes (the generator's own,
:func:`bench.data.synth.data_hash`, which covers the generator version, preset revision, scale and seed). It is
recorded in the checkpoint and in the run's manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.data.tracks import DONTCARE

# The lowest world seed a corpus may use: 0 is the benchmark, small seeds are development worlds.
MIN_CORPUS_SEED = 1000


@dataclass(frozen=True)
class World:
    """One generated world of the corpus."""

    preset: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.preset}:{self.seed}"


def parse_worlds(spec: list[str] | tuple[str, ...]) -> list[World]:
    """``["synth-kitti:1001", ...]`` -> worlds; ValueError on a malformed entry, a benchmark or development seed,
    an unknown preset or a repeated world."""
    from bench.data.synth import PRESETS

    worlds = []
    for entry in spec:
        preset, _, seed = str(entry).partition(":")
        if preset not in PRESETS or not seed.isdigit():
            raise ValueError(f"pretrained2d: corpus entry {entry!r} is not '<synthetic preset>:<world seed>' "
                             f"(presets: {', '.join(PRESETS)})")
        if int(seed) < MIN_CORPUS_SEED:
            raise ValueError(f"pretrained2d: corpus world {entry!r}: seeds below {MIN_CORPUS_SEED} are the "
                             "benchmark's (0) or development worlds; use another world seed")
        worlds.append(World(preset, int(seed)))
    if not worlds or len(set(worlds)) != len(worlds):
        raise ValueError(f"pretrained2d: the corpus must list distinct worlds, got {list(spec)}")
    return worlds


def world_hashes(worlds: list[World], scale: str) -> dict[str, str]:
    """The generator's data hash of every world at ``scale`` (what the benchmark's datasets are keyed by)."""
    from bench.data.synth import data_hash

    return {w.name: data_hash(w.preset, scale, w.seed) for w in worlds}


def corpus_hash(worlds: list[World], scale: str) -> str:
    """The corpus's data hash: sha256 over its worlds' data hashes, in order."""
    digest = hashlib.sha256(f"pretrained2d-corpus/{scale}".encode())
    for name, value in world_hashes(worlds, scale).items():
        digest.update(f"{name}={value}\n".encode())
    return digest.hexdigest()


def corpus_size(worlds: list[World], scale: str) -> int:
    """How many sequences the corpus holds (train and val of every world), known without generating it: the N of
    the row label "SAM2 role: 2D tracker pretrained on N synthetic sequences"."""
    from bench.data.synth import config_for

    return sum(config_for(w.preset, scale).train_seqs + config_for(w.preset, scale).val_seqs for w in worlds)


def sequence_fingerprint(images: np.ndarray) -> str:
    """A content hash of a video's pixels (``(T, H, W, 3)`` uint8): equal videos, equal fingerprints."""
    images = np.ascontiguousarray(images)
    digest = hashlib.sha256(str(images.shape).encode())
    digest.update(images.tobytes())
    return digest.hexdigest()


@dataclass
class CorpusVideo:
    """One corpus sequence: uint8 frames and its 2D ground truth (``seq, frame index, track_id, cls, box,
    occlusion``; DontCare left out)."""

    name: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    tracks: pd.DataFrame
    fingerprint: str


def generate_corpus(worlds: list[World], scale: str) -> Iterator[CorpusVideo]:
    """Every sequence of every world, generated in memory one world at a time (nothing is read from disk)."""
    from bench.data.synth import generate

    for world in worlds:
        dataset = generate(world.preset, scale=scale, seed=world.seed)
        for split in (dataset.train, dataset.val):
            for name, seq in sorted(split.sequences.items()):
                frames = np.asarray(seq.images, dtype=np.uint8)
                rows = split.tracks[(split.tracks["seq"] == name).to_numpy()
                                    & (split.tracks["cls"] != DONTCARE).to_numpy()]
                index = {int(f): i for i, f in enumerate(seq.frame_ids)}
                table = pd.DataFrame({
                    "frame": [index[int(f)] for f in rows["frame"]],
                    "track_id": rows["track_id"].to_numpy(int),
                    "cls": rows["cls"].astype(str).to_numpy(),
                    "x1": rows["x1"].to_numpy(float), "y1": rows["y1"].to_numpy(float),
                    "x2": rows["x2"].to_numpy(float), "y2": rows["y2"].to_numpy(float),
                    "occlusion": rows["occlusion"].to_numpy(int)})
                yield CorpusVideo(f"{world.name}/{split.name}/{name}", frames, table.reset_index(drop=True),
                                  sequence_fingerprint(frames))
        del dataset


def check_disjoint(corpus_fingerprints: dict[str, str], videos: dict[str, np.ndarray]) -> None:
    """RuntimeError when a video a run is given is also a corpus sequence (same pixels)."""
    mine = {fp: name for name, fp in corpus_fingerprints.items()}
    for name, images in videos.items():
        hit = mine.get(sequence_fingerprint(images))
        if hit is not None:
            raise RuntimeError(f"pretrained2d: training video {name!r} is corpus sequence {hit!r}: the pretraining "
                               "corpus must never hold a benchmark sequence; choose other corpus worlds")


__all__ = ["MIN_CORPUS_SEED", "CorpusVideo", "World", "check_disjoint", "corpus_hash", "corpus_size", "generate_corpus",
           "parse_worlds", "sequence_fingerprint", "world_hashes"]
