"""Helpers every format module shares: line errors, image files and the ``bench.json`` sidecar.

A format only carries what its real dataset carries. When the synthetic world is exported, the
columns a format has no place for (nuScenes visibility in KITTI, label confidences, hidden render
layers, per-box extras) go to a small sidecar next to the native files, so that reading the export
back gives the identical dataset. Real datasets have no sidecar and read without it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.data.sequence import DataError, Dataset, PointTracks, Split
from bench.data.tracks import DONTCARE, TRACK_COLUMNS, concat_tracks, make_tracks, sort_tracks

SIDECAR = "bench.json"
SIDECAR_DIR = "bench"
# Track-table columns that no native format stores for every dataset; the sidecar keeps them.
EXTRA_COLUMNS = ("occlusion", "truncation", "visibility", "conf", "score")
KEY = ["seq", "frame", "track_id"]


class DataWarning(UserWarning):
    """Input that bench reads but skips or changes, as the official tools do; the message names ``file:line``."""


def warn_lines(path: Path | str, lines: list[int], message: str) -> None:
    """One warning for every line of ``path`` that the same thing happened to (the first line named)."""
    if lines:
        more = f" ({len(lines)} lines, the first shown)" if len(lines) > 1 else ""
        warnings.warn(DataWarning(f"{path}:{lines[0]}: {message}{more}"), stacklevel=3)


def line_error(path: Path | str, line: int, message: str) -> DataError:
    """A DataError that names ``file:line`` first, so editors and terminals can jump to it."""
    return DataError(f"{path}:{line}: {message}")


def read_text(path: Path | str, what: str = "file") -> str:
    """The UTF-8 text of a user's file; anything unreadable is a one-line DataError that names the file.

    A missing file, a folder, a symlink loop, a permission problem or bytes that are not UTF-8 (a binary
    file under a text name) all end here, so no reader shows a bare OSError or UnicodeDecodeError.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} is missing") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a {what}") from None
    except OSError as err:  # symlink loops, permissions, devices
        raise DataError(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(f"{path}:{line}: byte 0x{data[err.start]:02x} is not UTF-8 text; expected a {what} "
                        f"(is this a binary file?)") from None


def read_json(path: Path | str, what: str = "JSON file") -> Any:
    """Parse a user's JSON file; unreadable text or invalid JSON is a DataError naming ``file:line``."""
    path = Path(path)
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise line_error(path, err.lineno, f"invalid JSON ({err.msg}, column {err.colno}); expected a {what}") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply; expected a {what}") from None


def json_place(where: str, *keys: object) -> str:
    """``where['key'][0]``: a place inside a JSON document, for error messages."""
    return where + "".join(f"[{k!r}]" for k in keys)


def parse_floats(fields: list[str], path: Path, line: int, names: Iterable[str]) -> list[float]:
    """Parse numeric fields, rejecting text, NaN and inf with the column's name."""
    try:  # fast path: every field is a finite number (the slow path below finds the culprit)
        values = [float(text) for text in fields]
        if all(map(math.isfinite, values)):
            return values
    except ValueError:
        pass
    values = []
    for name, text in zip(names, fields, strict=True):
        try:
            value = float(text)
        except ValueError:
            raise line_error(path, line, f"column {name!r} is {text!r}, expected a number") from None
        if not np.isfinite(value):
            raise line_error(path, line, f"column {name!r} is {text!r}, expected a finite number")
        values.append(value)
    return values


INT64_LIMIT = 2**63 - 1


def parse_int(text: str, path: Path, line: int, name: str) -> int:
    """An integer column (``7`` or ``7.0``); text, fractions and numbers beyond int64 name the column."""
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if not number.is_integer():
            raise line_error(path, line, f"column {name!r} is {text!r}, expected an integer") from None
        value = int(number)
    if abs(value) > INT64_LIMIT:
        raise line_error(path, line, f"column {name!r} is {text!r}, too large for an integer id or frame")
    return value


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB image as PNG; low compression because export speed matters more than disk here."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(image)).save(path, compress_level=1)


def write_pngs(paths: list[Path], images: Callable[[int], np.ndarray]) -> None:
    """Write many PNGs on a thread pool (zlib releases the GIL); ``images(i)`` gives the i-th image."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(lambda i: write_png(paths[i], images(i)), range(len(paths))))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, reading only its header."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise DataError(f"{path}: image file is missing") from None
    except (OSError, ValueError, Image.DecompressionBombError) as err:  # ValueError: a NUL byte in the path
        raise DataError(f"{path}: not a readable image ({err})") from None


def check_image_sizes(paths: list[Path], expected: tuple[int, int] | None = None) -> tuple[int, int]:
    """All images of a sequence must share one size; the error names the first that does not."""
    if not paths:
        raise DataError("sequence has no images")
    want = expected or image_size(paths[0])
    for path in paths:
        got = image_size(path)
        if got != want:
            raise DataError(f"{path}: image is {got[0]}x{got[1]}, expected {want[0]}x{want[1]} like the rest")
    return want


def hash_files(paths: Iterable[Path], stat_only: Iterable[Path] = ()) -> str:
    """sha256 over file contents (labels, calibration) and over names + sizes of bulky files (images)."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for path in sorted(Path(p) for p in stat_only):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def split_of(dataset: Dataset) -> dict[str, Split]:
    return {"train": dataset.train, "val": dataset.val}


# ----------------------------------------------------------------------------------------------
# Sidecar: what the native format cannot hold.


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of ``Dataset.meta``; DataFrames and arrays go to their own files."""
    out = {}
    for key, value in meta.items():
        try:
            json.dumps(value)
        except TypeError:
            continue
        out[key] = value
    return out


def write_sidecar(dataset: Dataset, root: Path, fmt: str, extra_columns: Iterable[str] = EXTRA_COLUMNS,
                  keep_dontcare: bool = False, keep_tracks: bool = False, keep_points: bool = True) -> None:
    """Write ``bench.json`` (names, splits, hash) and ``bench/`` (extra columns, cameras, layers, points).

    ``extra_columns`` are the track-table columns the native format does not hold exactly;
    ``keep_dontcare`` stores DontCare rows for formats that have no ignore regions, ``keep_tracks``
    the whole track table for formats without boxes (TAPVid-3D); ``keep_points=False`` leaves the point tracks
    to a format that holds them itself (TAPVid-3D: dense tracks would otherwise be written twice).
    """
    extra_columns = list(extra_columns)
    side = root / SIDECAR_DIR
    side.mkdir(parents=True, exist_ok=True)
    info = {
        "name": dataset.name,
        "format": fmt,
        "frame_rate": dataset.frame_rate,
        "data_hash": dataset.data_hash,
        "splits": {name: sorted(split.sequences) for name, split in split_of(dataset).items()},
        "meta": _jsonable(dataset.meta),
    }
    for name, split in split_of(dataset).items():
        real = split.tracks[split.tracks["track_id"] >= 0]
        real[KEY + extra_columns].to_parquet(side / f"{name}_extras.parquet", index=False)
        if keep_tracks:
            split.tracks.to_parquet(side / f"{name}_tracks.parquet", index=False)
        if keep_dontcare:
            split.tracks[split.tracks["cls"] == DONTCARE].to_parquet(side / f"{name}_dontcare.parquet", index=False)
        for seq_name, seq in split.sequences.items():
            folder = side / "cameras" / name
            folder.mkdir(parents=True, exist_ok=True)
            np.savez(folder / f"{seq_name}.npz", intrinsics=seq.intrinsics, cam_to_world=seq.cam_to_world,
                     timestamps=seq.timestamps, frame_ids=seq.frame_ids)
        for seq_name, layers in split.layers.items():
            folder = side / "layers" / name / seq_name
            folder.mkdir(parents=True, exist_ok=True)
            for layer, array in layers.items():
                np.save(folder / f"{layer}.npy", np.asarray(array))
        for seq_name, points in (split.points.items() if keep_points else ()):
            folder = side / "points" / name
            folder.mkdir(parents=True, exist_ok=True)
            np.savez(folder / f"{seq_name}.npz", xyz=points.xyz, visible=points.visible, queries=points.queries)
    for key, value in dataset.meta.items():
        # Tables (box extras, public detections per split) keep their index: parquet stores it.
        if isinstance(value, pd.DataFrame):
            value.to_parquet(side / f"meta_{key}.parquet")
        elif isinstance(value, dict) and value and all(isinstance(v, pd.DataFrame) for v in value.values()):
            for sub, frame in value.items():
                frame.to_parquet(side / f"meta_{key}__{sub}.parquet")
    (root / SIDECAR).write_text(json.dumps(info, indent=1))


def read_sidecar(root: Path) -> dict[str, Any] | None:
    """``bench.json`` checked: ``splits`` (train/val lists of names) and, if present, typed name, frame rate,
    data hash and meta. Users write one by hand for real nuScenes (its scene split), so it is user input."""
    path = root / SIDECAR
    if not path.exists() and not path.is_symlink():
        return None
    info = read_json(path, "bench.json sidecar")
    splits = info.get("splits") if isinstance(info, dict) else None
    if not isinstance(splits, dict) or not all(
            isinstance(splits.get(k), list) and all(isinstance(s, str) for s in splits[k]) for k in ("train", "val")):
        raise DataError(f'{path}: expected {{"splits": {{"train": [names], "val": [names]}}, ...}}')
    expected = {"name": str, "format": str, "data_hash": str, "meta": dict}
    for key, kind in expected.items():
        if key in info and not isinstance(info[key], kind):
            raise DataError(f"{path}: {key!r} is {info[key]!r}, expected a {kind.__name__}")
    rate = info.get("frame_rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
        raise DataError(f"{path}: 'frame_rate' is {rate!r}, expected a positive number (frames per second)")
    return info


def _restore_columns(tracks: pd.DataFrame, extras_path: Path) -> pd.DataFrame:
    """Overwrite the columns the sidecar kept, matching rows on (seq, frame, track_id).

    DontCare rows (track_id -1, several per frame) keep what the native file said.
    """
    real = (tracks["track_id"] >= 0).to_numpy()
    base = tracks[real].reset_index(drop=True)
    extras = pd.read_parquet(extras_path)
    columns = [c for c in extras.columns if c not in KEY]
    merged = base.drop(columns=columns).merge(extras, on=KEY, how="left", validate="one_to_one")
    for column in columns:
        merged[column] = merged[column].fillna(base[column])
    return make_tracks(pd.concat([merged, tracks[~real]], ignore_index=True)[list(TRACK_COLUMNS)],
                       source=str(extras_path))


def apply_sidecar(split: Split, root: Path, split_name: str) -> Split:
    """Restore the columns, whole tables, DontCare rows, layers and point tracks the sidecar kept."""
    side = root / SIDECAR_DIR
    tracks = split.tracks
    tracks_path = side / f"{split_name}_tracks.parquet"
    extras_path = side / f"{split_name}_extras.parquet"
    if tracks_path.exists():  # formats without boxes: the stored table is complete
        tracks = make_tracks(pd.read_parquet(tracks_path), source=str(tracks_path))
    elif extras_path.exists() and len(tracks):
        tracks = _restore_columns(tracks, extras_path)
    dontcare_path = side / f"{split_name}_dontcare.parquet"
    if dontcare_path.exists():
        tracks = concat_tracks([tracks, make_tracks(pd.read_parquet(dontcare_path), source=str(dontcare_path))])
    layers: dict[str, dict[str, np.ndarray]] = {}
    for folder in sorted((side / "layers" / split_name).glob("*")):
        # Memory-mapped: the harness loads per job and most jobs never touch the render layers.
        layers[folder.name] = {f.stem: np.load(f, mmap_mode="r") for f in sorted(folder.glob("*.npy"))}
    points = dict(split.points)
    for path in sorted((side / "points" / split_name).glob("*.npz")):
        with np.load(path) as z:
            points[path.stem] = PointTracks(xyz=z["xyz"], visible=z["visible"], queries=z["queries"])
    try:
        return Split(split.name, split.sequences, sort_tracks(tracks), points, layers or split.layers,
                     detections=split.detections, depth=split.depth)
    except DataError as err:  # bench.json's splits were edited away from the tables saved beside them
        raise DataError(f"{root / SIDECAR}: its splits do not match the tables in {side} ({err})") from None


def read_camera(root: Path, split_name: str, seq: str) -> dict[str, np.ndarray] | None:
    """Intrinsics, poses, timestamps and frame ids the sidecar kept for a format without calibration."""
    path = root / SIDECAR_DIR / "cameras" / split_name / f"{seq}.npz"
    if not path.exists():
        return None
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def read_table(path: Path) -> pd.DataFrame:
    """Read a sidecar parquet table with the text dtypes it was written with.

    pandas 3 reads every text column back as its ``str`` dtype; columns (and index levels) that
    were ``object`` when written (track tables use object text) are turned back, using the pandas
    metadata parquet keeps, so a round trip gives equal frames.
    """
    import pyarrow.parquet as pq

    df = pd.read_parquet(path)
    meta = pq.read_schema(path).pandas_metadata or {}
    was_object = {c["name"] for c in meta.get("columns", []) if c.get("numpy_type") == "object"}
    for column in df.columns:
        if column in was_object and df[column].dtype != object:
            df[column] = df[column].astype(object)
    if isinstance(df.index, pd.MultiIndex):
        df.index = df.index.set_levels([lvl.astype(object) if name in was_object else lvl
                                        for name, lvl in zip(df.index.names, df.index.levels, strict=True)])
    elif df.index.name in was_object:
        df.index = df.index.astype(object)
    return df


def read_meta_frames(root: Path) -> dict[str, Any]:
    """The tables of ``Dataset.meta`` from the sidecar (``meta_<key>__<sub>`` files form a dict)."""
    out: dict[str, Any] = {}
    if not (root / SIDECAR).exists():  # a real dataset, or an export whose sidecar was removed
        return out
    for path in sorted((root / SIDECAR_DIR).glob("meta_*.parquet")):
        key, _, sub = path.stem.removeprefix("meta_").partition("__")
        if sub:
            out.setdefault(key, {})[sub] = read_table(path)
        else:
            out[key] = read_table(path)
    return out
