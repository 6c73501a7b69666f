"""nuScenes tracking evaluation: its data classes and configuration (nuscenes-devkit's ``data_classes.py``).

Imported by the loaders (:mod:`.nuscenes_io`) and the algorithm (:mod:`.nuscenes_tracking`), which import
downward only: data classes <- loaders <- algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

TRACKING_NAMES: tuple[str, ...] = ("bicycle", "bus", "car", "motorcycle", "pedestrian", "trailer", "truck")
# The devkit's TRACKING_METRICS, in its order.
METRIC_NAMES: tuple[str, ...] = ("amota", "amotp", "recall", "motar", "gt", "mota", "motp", "mt", "ml", "faf",
                                 "tp", "fp", "fn", "ids", "frag", "tid", "lgd")
SUMMED_METRICS: frozenset[str] = frozenset({"mt", "ml", "tp", "fp", "fn", "ids", "frag"})
# Per-threshold metrics (the devkit's MOT_METRIC_MAP values).
THRESHOLD_METRICS: tuple[str, ...] = ("gt", "tp", "motar", "mota", "motp", "faf", "mt", "ml", "fp", "fn", "ids",
                                      "frag", "recall", "tid", "lgd")


class NuscenesDataError(ValueError):
    """Inputs the nuScenes evaluation cannot score (unknown class, duplicate track in a sample, ...)."""


@dataclass(frozen=True)
class TrackingConfig:
    """The devkit's tracking configuration (``configs/tracking_nips_2019.json``)."""

    class_names: tuple[str, ...]
    class_range: dict[str, float]
    dist_th_tp: float
    min_recall: float
    num_thresholds: int
    metric_worst: dict[str, float]
    max_boxes_per_sample: int = 500
    sample_period: float = 0.5  # seconds per keyframe, used by TID and LGD


TRACKING_NIPS_2019 = TrackingConfig(
    class_names=TRACKING_NAMES,
    class_range={"car": 50, "truck": 50, "bus": 50, "trailer": 50, "pedestrian": 40, "motorcycle": 40,
                 "bicycle": 40},
    dist_th_tp=2.0,
    min_recall=0.1,
    num_thresholds=40,
    metric_worst={"amota": 0.0, "amotp": 2.0, "recall": 0.0, "motar": 0.0, "mota": 0.0, "motp": 2.0, "mt": 0.0,
                  "ml": -1.0, "faf": 500, "gt": -1, "tp": 0.0, "fp": -1.0, "fn": -1.0, "ids": -1.0, "frag": -1.0,
                  "tid": 20, "lgd": 20},
)


@dataclass
class NuscBoxes:
    """Columnar nuScenes tracking boxes (GT or predictions), global frame, as in a submission JSON.

    ``ego_translation`` is the box centre minus the ego position of its sample (for the range filter).
    ``num_pts`` is lidar + radar points for GT, -1 (unknown, kept) for predictions. ``samples`` optionally
    lists every sample of the evaluated scenes (``sample_token, scene, timestamp``), including samples
    without any box: interpolation fills tracks at every keyframe of a scene.
    """

    sample_token: np.ndarray
    scene: np.ndarray
    timestamp: np.ndarray  # int microseconds
    translation: np.ndarray  # (N, 3)
    tracking_id: np.ndarray
    tracking_name: np.ndarray
    tracking_score: np.ndarray
    ego_translation: np.ndarray  # (N, 3)
    num_pts: np.ndarray
    size: np.ndarray | None = None  # (N, 3) w l h; not used by the metrics
    rotation: np.ndarray | None = None  # (N, 4) w x y z; not used by the metrics
    velocity: np.ndarray | None = None  # (N, 2); not used by the metrics
    samples: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        n = len(self.sample_token)
        self.sample_token = np.asarray(self.sample_token, dtype=object)
        self.scene = np.asarray(self.scene, dtype=object)
        self.timestamp = np.asarray(self.timestamp, dtype=np.int64)
        self.translation = np.asarray(self.translation, dtype=np.float64).reshape(n, 3)
        self.tracking_id = np.asarray(self.tracking_id, dtype=object).astype(str).astype(object)
        self.tracking_name = np.asarray(self.tracking_name, dtype=object)
        self.tracking_score = np.asarray(self.tracking_score, dtype=np.float64).reshape(n)
        self.ego_translation = np.asarray(self.ego_translation, dtype=np.float64).reshape(n, 3)
        self.num_pts = np.asarray(self.num_pts, dtype=np.int64).reshape(n)
        for name in ("scene", "timestamp", "tracking_id", "tracking_name"):
            if len(getattr(self, name)) != n:
                raise NuscenesDataError(f"NuscBoxes: column {name} has {len(getattr(self, name))} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.sample_token)

    @classmethod
    def from_columns(cls, columns: dict[str, Any], samples: pd.DataFrame | None = None) -> NuscBoxes:
        """Build from a dict of columns; ``scene``/``timestamp`` may come from ``samples`` instead."""
        n = len(columns["sample_token"])
        cols = dict(columns)
        if ("scene" not in cols or "timestamp" not in cols) and samples is not None:
            info = samples.set_index("sample_token")
            tokens = pd.Index(cols["sample_token"])
            missing = ~tokens.isin(info.index)
            if missing.any():
                raise NuscenesDataError(f"sample_token {tokens[missing][0]!r} is not in the samples table")
            cols.setdefault("scene", info["scene"].reindex(tokens).to_numpy())
            cols.setdefault("timestamp", info["timestamp"].reindex(tokens).to_numpy())
        cols.setdefault("tracking_score", np.full(n, -1.0))
        cols.setdefault("num_pts", np.full(n, -1))
        keep = {f for f in cls.__dataclass_fields__ if f != "samples"}
        return cls(**{k: v for k, v in cols.items() if k in keep}, samples=samples)
