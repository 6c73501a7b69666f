"""nuScenes tracking evaluation inputs: the boxes the metric reads, and every file that gives them.

All roads lead to a pair of :class:`NuscBoxes` (columnar boxes in the global frame, as in a submission JSON),
which :mod:`bench.metrics.nuscenes_tracking` scores:

* :func:`load_gt_dataroot` reads ground truth as the devkit's ``load_gt`` + ``add_center_dist`` do: every
  ``sample_annotation`` of the chosen scenes whose category maps to a tracking class (``instance_token`` as
  tracking id, ``num_lidar_pts + num_radar_pts`` as points, ego position from the sample's ``LIDAR_TOP``
  key frame, or its first key-frame sample_data when there is no lidar).
* :func:`load_gt_json`: a GT file in the submission schema plus ``num_pts`` per box and a top-level
  ``"samples": {token: {"scene": str, "timestamp": int (us), "ego_translation": [x, y, z]}}``.
* :func:`load_submission`: a tracking submission validated by bench's reader; like the devkit we require
  an entry for every GT sample.
* :func:`tracks_to_boxes`: bench track tables (camera frame) -> global boxes, via the sequences' poses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.data.formats.nuscenes import TRACKING_NAMES
from bench.data.sequence import DataError

__all__ = ["TRACKING_NAMES", "NuscBoxes", "NuscenesDataError", "load_gt_dataroot", "load_gt_json", "load_submission",
           "load_nuscenes_eval", "tracks_to_boxes"]


class NuscenesDataError(ValueError):
    """Inputs the nuScenes evaluation cannot score (unknown class, duplicate track in a sample, ...)."""


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


# nuscenes-devkit's category_to_tracking_name.
CATEGORY_TO_TRACKING: dict[str, str] = {
    "vehicle.bicycle": "bicycle", "vehicle.bus.bendy": "bus", "vehicle.bus.rigid": "bus", "vehicle.car": "car",
    "vehicle.motorcycle": "motorcycle", "human.pedestrian.adult": "pedestrian", "human.pedestrian.child": "pedestrian",
    "human.pedestrian.construction_worker": "pedestrian", "human.pedestrian.police_officer": "pedestrian",
    "vehicle.trailer": "trailer", "vehicle.truck": "truck",
}
# bench classes -> nuScenes tracking names (others, e.g. DontCare, are not evaluated).
BENCH_TO_TRACKING: dict[str, str] = {"Car": "car", "Van": "car", "Truck": "truck", "Pedestrian": "pedestrian",
                                     "Cyclist": "bicycle"}


def _table_dir(root: Path, version: str | None) -> Path:
    if (root / "sample.json").exists():
        return root
    if version is not None:
        return root / version
    found = sorted(p.parent for p in root.glob("*/sample.json"))
    if len(found) != 1:
        raise NuscenesDataError(f"{root}: expected one <version>/sample.json folder, found {len(found)}")
    return found[0]


def _load(folder: Path, name: str) -> list[dict]:
    """A nuScenes table, every record checked for the fields bench reads (the error names file and record)."""
    from bench.data.formats.nuscenes import _load_table

    return _load_table(folder, name)


def load_gt_dataroot(root: str | Path, version: str | None = None, scenes: set[str] | None = None) -> NuscBoxes:
    """Ground truth of the scenes named in ``scenes`` (default: all scenes) of a nuScenes dataroot."""
    folder = _table_dir(Path(root), version)
    scene_rows = [s for s in _load(folder, "scene") if scenes is None or s["name"] in scenes]
    scene_name = {s["token"]: s["name"] for s in scene_rows}
    sample_rows = [s for s in _load(folder, "sample") if s["scene_token"] in scene_name]
    pose = {p["token"]: p["translation"] for p in _load(folder, "ego_pose")}
    sensor = {s["token"]: s.get("channel", "") for s in _load(folder, "sensor")}
    channel_of = {c["token"]: sensor.get(c["sensor_token"], "") for c in _load(folder, "calibrated_sensor")}
    ego: dict[str, list[float]] = {}
    for i, sd in enumerate(_load(folder, "sample_data")):
        if not sd.get("is_key_frame"):
            continue
        if sd["ego_pose_token"] not in pose:
            raise DataError(f"{folder / 'sample_data.json'}: record {i}: ego_pose_token {sd['ego_pose_token']!r} "
                            "is not in ego_pose.json")
        is_lidar = channel_of.get(sd["calibrated_sensor_token"]) == "LIDAR_TOP"
        if is_lidar or sd["sample_token"] not in ego:
            ego[sd["sample_token"]] = pose[sd["ego_pose_token"]]
    samples = pd.DataFrame({"sample_token": [s["token"] for s in sample_rows],
                            "scene": [scene_name[s["scene_token"]] for s in sample_rows],
                            "timestamp": [int(s["timestamp"]) for s in sample_rows]})
    missing = [t for t in samples["sample_token"] if t not in ego]
    if missing:
        raise NuscenesDataError(f"{folder / 'sample_data.json'}: sample {missing[0]!r} has no key-frame sample_data "
                                f"(needed for its ego pose)")
    samples["ego_translation"] = [ego[t] for t in samples["sample_token"]]
    category = {c["token"]: c["name"] for c in _load(folder, "category")}
    instances = _load(folder, "instance")
    unknown = [i for i in instances if i["category_token"] not in category]
    if unknown:
        raise DataError(f"{folder / 'instance.json'}: instance {unknown[0]['token']!r} has category_token "
                        f"{unknown[0]['category_token']!r}, which is not in category.json")
    inst_name = {i["token"]: CATEGORY_TO_TRACKING.get(category[i["category_token"]]) for i in instances}
    wanted = set(samples["sample_token"])
    anns = [a for a in _load(folder, "sample_annotation")
            if a["sample_token"] in wanted and inst_name.get(a["instance_token"]) is not None]
    translation = np.array([a["translation"] for a in anns], dtype=np.float64).reshape(-1, 3)
    ego_pos = np.array([ego[a["sample_token"]] for a in anns], dtype=np.float64).reshape(-1, 3)
    columns = {
        "sample_token": [a["sample_token"] for a in anns], "translation": translation,
        "size": np.array([a["size"] for a in anns], dtype=np.float64).reshape(-1, 3),
        "rotation": np.array([a["rotation"] for a in anns], dtype=np.float64).reshape(-1, 4),
        "tracking_id": [a["instance_token"] for a in anns],
        "tracking_name": [inst_name[a["instance_token"]] for a in anns],
        "tracking_score": np.full(len(anns), -1.0),
        "num_pts": [int(a.get("num_lidar_pts", 0)) + int(a.get("num_radar_pts", 0)) for a in anns],
        "ego_translation": translation - ego_pos,
    }
    return NuscBoxes.from_columns(columns, samples=samples)


GT_SAMPLE_FIELDS = {"scene": "str", "timestamp": "int", "ego_translation": "vec3"}
GT_BOX_FIELDS = {"sample_token": "str", "translation": "vec3", "tracking_id": "id", "tracking_name": "str",
                 "num_pts": "int", "tracking_score?": "number", "size?": "size", "rotation?": "quat"}


def load_gt_json(path: str | Path) -> NuscBoxes:
    """Ground truth from a JSON in the submission schema with ``num_pts`` per box and a ``samples`` table."""
    from bench.data.formats.common import read_json
    from bench.data.formats.nuscenes import check_record

    path = Path(path)
    data = read_json(path, "nuScenes GT JSON")
    if not isinstance(data, dict) or not isinstance(data.get("samples"), dict) \
            or not isinstance(data.get("results"), dict):
        raise NuscenesDataError(f"{path}: a GT JSON needs 'results' and 'samples' "
                                "({token: {scene, timestamp, ego_translation}})")
    for tok, s in data["samples"].items():
        check_record(s, GT_SAMPLE_FIELDS, f"{path}: samples[{tok!r}]")
    samples = pd.DataFrame([{"sample_token": tok, "scene": s["scene"], "timestamp": int(s["timestamp"]),
                             "ego_translation": s["ego_translation"]} for tok, s in data["samples"].items()],
                           columns=["sample_token", "scene", "timestamp", "ego_translation"])
    ego = dict(zip(samples["sample_token"], samples["ego_translation"], strict=True))
    rows = []
    for tok, boxes in data["results"].items():
        if tok not in ego:
            raise NuscenesDataError(f"{path}: results[{tok!r}]: sample token not in 'samples'")
        if not isinstance(boxes, list):
            raise NuscenesDataError(f"{path}: results[{tok!r}]: expected a list of boxes")
        for i, b in enumerate(boxes):
            where = f"{path}: results[{tok!r}][{i}]"
            check_record(b, GT_BOX_FIELDS, where)
            if b["sample_token"] != tok:
                raise NuscenesDataError(f"{where}: sample_token {b['sample_token']!r} differs from its key")
            if b["tracking_name"] not in TRACKING_NAMES:
                raise NuscenesDataError(f"{where}: tracking_name {b['tracking_name']!r}, expected one of "
                                        f"{TRACKING_NAMES}")
            rows.append(b)
    translation = np.array([b["translation"] for b in rows], dtype=np.float64).reshape(-1, 3)
    columns = {"sample_token": [b["sample_token"] for b in rows], "translation": translation,
               "tracking_id": [str(b["tracking_id"]) for b in rows],
               "tracking_name": [b["tracking_name"] for b in rows],
               "tracking_score": [float(b.get("tracking_score", -1.0)) for b in rows],
               "num_pts": [int(b["num_pts"]) for b in rows],
               "ego_translation": translation - np.array([ego[b["sample_token"]] for b in rows]).reshape(-1, 3)}
    return NuscBoxes.from_columns(columns, samples=samples)


def load_submission(path: str | Path, gt: NuscBoxes) -> NuscBoxes:
    """A tracking submission for the samples of ``gt`` (every sample needs an entry, as in the devkit)."""
    from bench.data.formats.nuscenes import read_tracking_submission

    if gt.samples is None or "ego_translation" not in gt.samples:
        raise NuscenesDataError("load_submission: the GT needs a samples table with ego positions")
    samples = gt.samples
    tokens = set(samples["sample_token"])
    boxes, submitted = read_tracking_submission(path, tokens, with_tokens=True)
    missing = sorted(tokens - submitted)
    if missing:
        raise NuscenesDataError(f"{path}: results lack {len(missing)} of the {len(tokens)} GT samples "
                                f"(e.g. {missing[0]!r}); every sample needs an entry, [] when empty")
    dup = boxes.duplicated(["sample_token", "tracking_id"])
    if dup.any():
        row = boxes[dup].iloc[0]
        raise NuscenesDataError(f"{path}: results[{row.sample_token!r}]: tracking_id {row.tracking_id!r} twice")
    ego = dict(zip(samples["sample_token"], samples["ego_translation"], strict=True))
    translation = boxes[["tx", "ty", "tz"]].to_numpy(np.float64)
    ego_pos = np.array([ego[t] for t in boxes["sample_token"]], dtype=np.float64).reshape(-1, 3)
    columns = {"sample_token": boxes["sample_token"].to_numpy(), "translation": translation,
               "size": boxes[["sw", "sl", "sh"]].to_numpy(np.float64),
               "rotation": boxes[["qw", "qx", "qy", "qz"]].to_numpy(np.float64),
               "velocity": boxes[["vx", "vy"]].to_numpy(np.float64),
               "tracking_id": boxes["tracking_id"].to_numpy(), "tracking_name": boxes["tracking_name"].to_numpy(),
               "tracking_score": boxes["tracking_score"].to_numpy(np.float64),
               "num_pts": np.full(len(boxes), -1), "ego_translation": translation - ego_pos}
    return NuscBoxes.from_columns(columns, samples=samples[["sample_token", "scene", "timestamp"]])


def load_nuscenes_eval(gt_path: str | Path, pred_path: str | Path, scenes: set[str] | None = None
                       ) -> tuple[NuscBoxes, NuscBoxes]:
    """``bench eval --format nuscenes`` inputs: GT dataroot (or GT JSON) and a submission JSON."""
    gt_path = Path(gt_path)
    gt = load_gt_dataroot(gt_path, scenes=scenes) if gt_path.is_dir() else load_gt_json(gt_path)
    return gt, load_submission(pred_path, gt)


def tracks_to_boxes(tracks: pd.DataFrame, sequences: Mapping[str, Any], *, is_gt: bool) -> NuscBoxes:
    """bench track tables -> global :class:`NuscBoxes` (sample token per frame, ego = camera position).

    Classes map Car/Van -> car, Truck -> truck, Pedestrian -> pedestrian, Cyclist -> bicycle; other rows
    (DontCare, 2D-only) are not evaluated. Track tables carry no point counts, so no GT box is dropped by
    the zero-points filter. The range filter measures from the camera, not the lidar.
    """
    from bench.data.formats.nuscenes import token, tracks_to_global

    if sequences is None:
        raise NuscenesDataError("the nuscenes protocol needs the sequences (camera poses and timestamps)")
    tracks = tracks[tracks["cls"].isin(list(BENCH_TO_TRACKING))]
    g = tracks_to_global(tracks, sequences)
    sample_rows = []
    cam_pos: dict[str, np.ndarray] = {}
    for name, seq in sequences.items():
        tokens = seq.meta.get("sample_tokens") or [token("sample", name, f) for f in seq.frame_ids]
        for i, tok in enumerate(tokens):
            sample_rows.append((tok, name, int(round(float(seq.timestamps[i]) * 1e6))))
            cam_pos[tok] = np.asarray(seq.cam_to_world[i], dtype=np.float64)[:3, 3]
    samples = pd.DataFrame(sample_rows, columns=["sample_token", "scene", "timestamp"])
    translation = g[["tx", "ty", "tz"]].to_numpy(np.float64)
    ego = np.array([cam_pos[t] for t in g["sample_token"]], dtype=np.float64).reshape(-1, 3)
    columns = {"sample_token": g["sample_token"].to_numpy(), "translation": translation,
               "tracking_id": g["track_id"].astype(str).to_numpy(),
               "tracking_name": g["cls"].map(BENCH_TO_TRACKING).to_numpy(),
               "tracking_score": g["score"].to_numpy(np.float64) if not is_gt else np.full(len(g), -1.0),
               "num_pts": np.full(len(g), 1 if is_gt else -1), "ego_translation": translation - ego}
    return NuscBoxes.from_columns(columns, samples=samples)
