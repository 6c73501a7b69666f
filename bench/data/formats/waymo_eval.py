"""Waymo detection evaluation inputs: the objects the LET-3D-AP metric reads, and the v2 parquet files that
give them (:func:`load_waymo_parquet`); :mod:`bench.metrics.let_ap` scores them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from bench.data.formats.waymo import read_parquet
from bench.data.sequence import DataError


class WaymoObjects:
    """Columnar 3D objects: ``boxes (N, 7)`` = center x y z, length, width, height, heading (vehicle frame).

    ``scores`` (predictions; default 1), ``difficulty`` (ground truth; 0/1 = LEVEL_1, 2 = LEVEL_2; default 2),
    ``overlap_nlz`` (predictions inside a no-label zone are never FPs; default False).
    """

    def __init__(self, boxes: ArrayLike, types: ArrayLike, frame_ids: ArrayLike, scores: ArrayLike | None = None,
                 difficulty: ArrayLike | None = None, overlap_nlz: ArrayLike | None = None) -> None:
        self.boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
        n = len(self.boxes)
        self.types = np.asarray(types, dtype=np.int64).reshape(n)
        self.frame_ids = np.asarray(frame_ids, dtype=np.int64).reshape(n)
        self.scores = (np.ones(n) if scores is None else np.asarray(scores, np.float64)).reshape(n)
        self.difficulty = (np.full(n, 2) if difficulty is None else np.asarray(difficulty, np.int64)).reshape(n)
        self.overlap_nlz = (np.zeros(n, bool) if overlap_nlz is None else np.asarray(overlap_nlz, bool)).reshape(n)
        if not np.isfinite(self.boxes).all() or not np.isfinite(self.scores).all():
            raise ValueError("WaymoObjects: boxes and scores must be finite")

    def __len__(self) -> int:
        return len(self.boxes)


# Waymo v2 parquet (LiDARBoxComponent) column names.
_V2 = "[LiDARBoxComponent]"
V2_COLUMNS = {"segment": "key.segment_context_name", "timestamp": "key.frame_timestamp_micros",
              "cx": f"{_V2}.box.center.x", "cy": f"{_V2}.box.center.y", "cz": f"{_V2}.box.center.z",
              "length": f"{_V2}.box.size.x", "width": f"{_V2}.box.size.y", "height": f"{_V2}.box.size.z",
              "heading": f"{_V2}.box.heading", "type": f"{_V2}.type"}
V2_DIFFICULTY = f"{_V2}.difficulty_level.detection"
V2_SCORE_NAMES = ("score", f"{_V2}.score")


def load_waymo_parquet(gt_path: str | Path, pred_path: str | Path) -> tuple[WaymoObjects, WaymoObjects]:
    """Read ground truth and predictions from Waymo v2-style ``lidar_box`` parquet files.

    Both need the v2 key and ``[LiDARBoxComponent].box.*`` / ``.type`` columns; predictions also a ``score``
    column. Frames are (segment, timestamp); predictions for frames absent from the ground truth are an error.
    Every problem is a DataError naming the file, the row and the column.
    """
    gt_df, pred_df = _read_v2(Path(gt_path), need_score=False), _read_v2(Path(pred_path), need_score=True)
    keys = pd.MultiIndex.from_frame(gt_df[[V2_COLUMNS["segment"], V2_COLUMNS["timestamp"]]]).unique()
    index = {k: i for i, k in enumerate(keys)}
    pred_keys = list(zip(pred_df[V2_COLUMNS["segment"]], pred_df[V2_COLUMNS["timestamp"]], strict=True))
    unknown = [(row, k) for row, k in enumerate(pred_keys) if k not in index]
    if unknown:
        row, k = unknown[0]
        raise DataError(f"{pred_path}: row {row + 1}: frame {k} is not in the ground truth {gt_path} "
                        f"({len(unknown)} rows with unknown frames)")

    def objects(df: pd.DataFrame, keys: list, scores: np.ndarray | None) -> WaymoObjects:
        c = V2_COLUMNS
        boxes = df[[c["cx"], c["cy"], c["cz"], c["length"], c["width"], c["height"], c["heading"]]].to_numpy(float)
        difficulty = df[V2_DIFFICULTY].to_numpy(np.int64) if V2_DIFFICULTY in df else None
        return WaymoObjects(boxes, df[c["type"]].to_numpy(np.int64), [index[k] for k in keys], scores, difficulty)

    gt_keys = list(zip(gt_df[V2_COLUMNS["segment"]], gt_df[V2_COLUMNS["timestamp"]], strict=True))
    score_col = next(n for n in V2_SCORE_NAMES if n in pred_df)
    return objects(gt_df, gt_keys, None), objects(pred_df, pred_keys, pred_df[score_col].to_numpy(float))


# Coordinates beyond this (metres) are damage, not a scene: squaring them would overflow the geometry.
MAX_COORDINATE = 1e6


def _read_v2(path: Path, need_score: bool) -> pd.DataFrame:
    """One lidar_box parquet file, checked column by column; the numeric columns come back as numbers."""
    df = read_parquet(path, what="Waymo v2 lidar_box parquet file")
    missing = [c for c in V2_COLUMNS.values() if c not in df.columns]
    if need_score and not any(n in df.columns for n in V2_SCORE_NAMES):
        missing.append("score")
    if missing:
        raise DataError(f"{path}: missing columns {missing}; expected Waymo v2 lidar_box columns "
                        f"{list(V2_COLUMNS.values())}" + (" and 'score'" if need_score else ""))
    df = df.copy()
    numeric = [c for k, c in V2_COLUMNS.items() if k != "segment"]
    if need_score:
        numeric.append(next(n for n in V2_SCORE_NAMES if n in df.columns))
    if V2_DIFFICULTY in df.columns:
        df[V2_DIFFICULTY] = df[V2_DIFFICULTY].astype(object).where(df[V2_DIFFICULTY].notna(), 2)
        numeric.append(V2_DIFFICULTY)
    for column in numeric:
        values = pd.to_numeric(df[column], errors="coerce").astype(float)
        bad = ~np.isfinite(values.to_numpy())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raw = df[column].iloc[row]
            what = "NaN or inf" if pd.api.types.is_number(raw) else f"{str(raw)[:40]!r}, not a number,"
            raise DataError(f"{path}: row {row + 1}: {what} in {column} (box/type/score columns need finite numbers)")
        integral = column in (V2_COLUMNS["timestamp"], V2_COLUMNS["type"], V2_DIFFICULTY)
        if integral and not (values == values.round()).all():
            row = int(np.flatnonzero((values != values.round()).to_numpy())[0])
            raise DataError(f"{path}: row {row + 1}: {column} is {values.iloc[row]:g}, expected an integer")
        df[column] = values.astype(np.int64) if integral and (values.abs() < 2**62).all() else values
    coords = df[numeric[1:8]].to_numpy(float)
    if (np.abs(coords) > MAX_COORDINATE).any():
        row = int(np.flatnonzero((np.abs(coords) > MAX_COORDINATE).any(1))[0])
        raise DataError(f"{path}: row {row + 1}: box {coords[row].tolist()} has a value beyond {MAX_COORDINATE:g}")
    sizes = df[[V2_COLUMNS["length"], V2_COLUMNS["width"], V2_COLUMNS["height"]]].to_numpy(float)
    if (sizes <= 0).any():
        raise DataError(f"{path}: row {int(np.flatnonzero((sizes <= 0).any(1))[0]) + 1}: box sizes must be positive")
    for column, allowed, meaning in (
            (V2_COLUMNS["type"], (0, 1, 2, 3, 4), "label.proto type 0 UNKNOWN, 1 VEHICLE, 2 PEDESTRIAN, 3 SIGN, "
                                                 "4 CYCLIST"),
            (V2_DIFFICULTY, (0, 1, 2), "difficulty level 0 (unknown), 1 or 2")):
        if column in df.columns:
            bad = ~df[column].isin(allowed).to_numpy()
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"{path}: row {row + 1}: {column} is {df[column].iloc[row]:g}, expected {meaning}")
    return df
