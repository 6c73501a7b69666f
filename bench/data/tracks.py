"""The track table: the one columnar schema for every box in bench.

Ground truth, sparse labels, pseudolabels, detections and predictions are all rows of this
table. 3D boxes live in the camera frame of their own frame, KITTI convention (x right, y down,
z forward; ``x y z`` is the bottom centre of the box, ``h w l`` its size, ``yaw`` KITTI's
rotation_y). 2D-only data (MOTChallenge) leaves the seven 3D columns NaN; KITTI ``DontCare``
regions are rows with ``cls == "DontCare"``, ``track_id == -1`` and NaN 3D columns.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

BOX2D_COLUMNS: tuple[str, ...] = ("x1", "y1", "x2", "y2")
BOX3D_COLUMNS: tuple[str, ...] = ("x", "y", "z", "h", "w", "l", "yaw")

# Column name -> dtype. The order is the canonical column order.
TRACK_SCHEMA: dict[str, str] = {
    "seq": "object",
    "frame": "int64",
    "track_id": "int64",
    "cls": "object",
    "score": "float64",
    "x1": "float64",
    "y1": "float64",
    "x2": "float64",
    "y2": "float64",
    "x": "float64",
    "y": "float64",
    "z": "float64",
    "h": "float64",
    "w": "float64",
    "l": "float64",
    "yaw": "float64",
    "occlusion": "int64",  # KITTI occluded: 0 fully visible .. 3 unknown
    "truncation": "int64",  # KITTI tracking truncated: 0 none, 1 partly, 2 heavily
    "visibility": "int64",  # nuScenes visibility bin: 1 (0-40 %) .. 4 (80-100 %); 0 unknown
    "conf": "float64",  # label confidence: 1 for human labels, lower for pseudolabels
}
TRACK_COLUMNS: tuple[str, ...] = tuple(TRACK_SCHEMA)

# Defaults for columns a source does not provide.
COLUMN_DEFAULTS: dict[str, object] = {
    "score": 1.0,
    "occlusion": 0,
    "truncation": 0,
    "visibility": 0,
    "conf": 1.0,
    **{c: np.nan for c in BOX3D_COLUMNS},
}

DONTCARE = "DontCare"
# Classes of the synthetic world and of KITTI tracking; readers map other datasets' names to these.
CLASSES: tuple[str, ...] = ("Car", "Van", "Truck", "Pedestrian", "Cyclist")


class TrackTableError(ValueError):
    """A track table broke the schema. The message says where (``source`` and row) and why."""


def empty_tracks() -> pd.DataFrame:
    """A track table with no rows and the right dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in TRACK_SCHEMA.items()})


def make_tracks(rows: pd.DataFrame | dict | Iterable[dict], source: str = "<table>", *,
                unique_ids: bool = True) -> pd.DataFrame:
    """Build a validated track table, filling defaults for missing optional columns.

    ``unique_ids=False`` admits one track id in two classes of a frame (KITTI evaluation files, which the
    official tools score per class); every table the harness stores keeps ids unique.
    """
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if df.empty and len(df.columns) == 0:
        return empty_tracks()
    for column, default in COLUMN_DEFAULTS.items():
        if column not in df.columns:
            df[column] = default
    missing = [c for c in TRACK_COLUMNS if c not in df.columns]
    if missing:
        raise TrackTableError(f"{source}: missing columns {missing}; expected {list(TRACK_COLUMNS)}")
    df = df[list(TRACK_COLUMNS)].reset_index(drop=True)
    for column, dtype in TRACK_SCHEMA.items():
        if dtype == "object":
            df[column] = df[column].astype(str).astype(object)
        else:
            try:
                df[column] = df[column].astype(dtype)
            except (TypeError, ValueError) as err:
                raise TrackTableError(f"{source}: column {column!r} is not {dtype}: {err}") from None
    validate_tracks(df, source, unique_ids=unique_ids)
    return df


def validate_tracks(df: pd.DataFrame, source: str = "<table>", *, unique_ids: bool = True) -> None:
    """Raise TrackTableError naming the first offending row of ``source``.

    Checks: columns present, finite 2D boxes with x2 >= x1 and y2 >= y1, 3D columns either all
    finite with positive sizes or all NaN, finite score/conf, and no duplicate (seq, frame,
    track_id) among non-DontCare rows.
    """
    missing = [c for c in TRACK_COLUMNS if c not in df.columns]
    if missing:
        raise TrackTableError(f"{source}: missing columns {missing}")
    if df.empty:
        return

    def fail(mask: np.ndarray, why: str) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            row = df.iloc[i]
            raise TrackTableError(
                f"{source}: row {i} (seq={row['seq']}, frame={row['frame']}, "
                f"track_id={row['track_id']}): {why}"
            )

    box2d = df[list(BOX2D_COLUMNS)].to_numpy(dtype=float)
    fail(~np.isfinite(box2d).all(axis=1), "2D box x1 y1 x2 y2 must be finite")
    fail((box2d[:, 2] < box2d[:, 0]) | (box2d[:, 3] < box2d[:, 1]), "2D box needs x2 >= x1 and y2 >= y1")
    box3d = df[list(BOX3D_COLUMNS)].to_numpy(dtype=float)
    finite3d = np.isfinite(box3d)
    fail(finite3d.any(axis=1) & ~finite3d.all(axis=1), "3D box columns must be all finite or all NaN")
    fail(finite3d.all(axis=1) & (box3d[:, 3:6] <= 0).any(axis=1), "3D size h w l must be positive")
    fail(~np.isfinite(df["score"].to_numpy(dtype=float)), "score must be finite")
    conf = df["conf"].to_numpy(dtype=float)
    fail(~np.isfinite(conf) | (conf < 0) | (conf > 1), "conf must lie in [0, 1]")
    fail(df["frame"].to_numpy() < 0, "frame must be >= 0")
    if unique_ids:
        real = (df["cls"] != DONTCARE).to_numpy()
        dup = df.duplicated(subset=["seq", "frame", "track_id"], keep="first").to_numpy() & real
        fail(dup, "duplicate (seq, frame, track_id)")


def has_3d(df: pd.DataFrame) -> np.ndarray:
    """Boolean mask of rows that carry a 3D box."""
    return np.isfinite(df[list(BOX3D_COLUMNS)].to_numpy(dtype=float)).all(axis=1)


def concat_tracks(tables: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate track tables, keeping the schema even when all are empty."""
    tables = [t for t in tables if len(t)]
    if not tables:
        return empty_tracks()
    return pd.concat(tables, ignore_index=True)[list(TRACK_COLUMNS)]


def sort_tracks(df: pd.DataFrame) -> pd.DataFrame:
    """Canonical row order: by sequence, frame, track id."""
    return df.sort_values(["seq", "frame", "track_id"], kind="stable").reset_index(drop=True)
