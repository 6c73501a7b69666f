"""A run's artifact files: what each stage writes into its folder and reads back.

Predictions and pseudolabels (track tables, parquet), point tracks and FNComp weight maps (``.npz``,
never pickled), metric rows (parquet). Every write is atomic (:mod:`bench.runner.stages`); every
method output is validated before it is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.data.sequence import PointTracks
from bench.data.tracks import validate_tracks
from bench.runner.stages import StageDir, atomic_write, read_parquet, write_parquet
from bench.store import MetricRow


def metric_rows(split: str, result: Any) -> list[MetricRow]:
    rows = [MetricRow(split, result.protocol, "", str(k), float(v)) for k, v in result.summary.items()]
    for r in result.per_sequence.itertuples(index=False):
        rows.append(MetricRow(split, result.protocol, str(r.seq), str(r.metric), float(r.value)))
    return rows


def save_point_tracks(path: Path, tracks: dict[str, PointTracks]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, t in tracks.items():
        arrays[f"xyz::{name}"] = np.asarray(t.xyz)
        arrays[f"visible::{name}"] = np.asarray(t.visible)
        arrays[f"queries::{name}"] = np.asarray(t.queries)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]

    atomic_write(path, write)


def load_point_tracks(path: Path) -> dict[str, PointTracks]:
    with np.load(path, allow_pickle=False) as z:
        names = sorted(k.split("::", 1)[1] for k in z.files if k.startswith("xyz::"))
        return {n: PointTracks(z[f"xyz::{n}"], z[f"visible::{n}"], z[f"queries::{n}"]) for n in names}


WEIGHT_MAPS = "neg_weight_maps"  # labels.attrs key and the pseudolabels stage's file stem


def check_weight_maps(maps: Any, sequences: dict[str, Any], what: str) -> dict[tuple[str, int], np.ndarray]:
    """A labeler's FNComp maps, validated: {(seq, frame id) of a training frame: finite 2D array in [0, 1]}.

    Returns float32 copies (the labeler keeps no handle on what the base tracker reads)."""
    if not isinstance(maps, dict):
        raise TypeError(f"{what}: attrs[{WEIGHT_MAPS!r}] must be a dict {{(seq, frame id): 2D array}}, "
                        f"got {type(maps).__name__}")
    frames = {name: {int(f) for f in seq.frame_ids} for name, seq in sequences.items()}
    out: dict[tuple[str, int], np.ndarray] = {}
    for key, value in maps.items():
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str)
                and isinstance(key[1], int | np.integer)):
            raise ValueError(f"{what}: attrs[{WEIGHT_MAPS!r}] key {key!r} is not a (seq name, frame id) pair")
        seq, frame = key[0], int(key[1])
        if seq not in frames or frame not in frames[seq]:
            raise ValueError(f"{what}: attrs[{WEIGHT_MAPS!r}] has a map for {key!r}, which is not a frame of "
                             f"the training videos")
        array = np.asarray(value)
        if array.ndim != 2 or array.size == 0 or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{what}: attrs[{WEIGHT_MAPS!r}][{key!r}] must be a non-empty 2D numeric array, "
                             f"got shape {array.shape} dtype {array.dtype}")
        array = array.astype(np.float32)
        finite = np.isfinite(array)
        if not finite.all():
            raise ValueError(f"{what}: attrs[{WEIGHT_MAPS!r}][{key!r}] must hold finite weights in [0, 1], "
                             f"got {int((~finite).sum())} NaN/inf values")
        if array.min() < 0.0 or array.max() > 1.0:
            raise ValueError(f"{what}: attrs[{WEIGHT_MAPS!r}][{key!r}] must hold finite weights in [0, 1], "
                             f"got range [{array.min():.3g}, {array.max():.3g}]")
        out[(seq, frame)] = array
    return out


def save_weight_maps(path: Path, maps: dict[tuple[str, int], np.ndarray]) -> None:
    """Compressed ``.npz``: the (seq, frame) keys as two arrays beside one array per map (no pickles)."""
    keys = sorted(maps)
    arrays: dict[str, np.ndarray] = {"seqs": np.array([k[0] for k in keys], dtype=str),
                                     "frames": np.array([k[1] for k in keys], dtype=np.int64)}
    arrays.update({f"map{i}": maps[k] for i, k in enumerate(keys)})

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]

    atomic_write(path, write)


def load_weight_maps(path: Path) -> dict[tuple[str, int], np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        seqs, frames = z["seqs"], z["frames"]
        return {(str(seq), int(frame)): z[f"map{i}"] for i, (seq, frame) in enumerate(zip(seqs, frames, strict=True))}


def write_metrics(stage: StageDir, rows: list[MetricRow]) -> None:
    frame = pd.DataFrame([r.__dict__ for r in rows], columns=["split", "protocol", "seq", "metric", "value"])
    stage.start()
    write_parquet(stage.file("metrics.parquet"), frame)
    stage.mark_done(["metrics.parquet"])


def check_output(frame: Any, what: str, path: Path) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must return a track table (pandas DataFrame), got {type(frame).__name__}")
    validate_tracks(frame, f"{what} output for {path}")
    return frame


def read_metrics(stage: StageDir) -> list[MetricRow]:
    """The metric rows a finished metrics stage wrote."""
    stored = read_parquet(stage.file("metrics.parquet"))
    return [MetricRow(str(r.split), str(r.protocol), str(r.seq), str(r.metric), float(r.value))  # type: ignore[arg-type]
            for r in stored.itertuples(index=False)]
