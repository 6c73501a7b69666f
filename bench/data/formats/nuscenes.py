"""nuScenes on disk: v1.0-style JSON tables + CAM_FRONT key-frame images, and tracking submissions.

The export is what ``nuscenes.NuScenes(version=..., dataroot=...)`` from nuscenes-devkit loads:
``<root>/<version>/{scene,sample,sample_data,ego_pose,calibrated_sensor,sensor,sample_annotation,
instance,category,attribute,visibility,log,map}.json``, ``<root>/samples/CAM_FRONT/*.jpg`` and a
tiny ``maps/*.png`` semantic prior (the devkit checks the map file exists).

Boxes live in the global frame: ``translation`` is the box centre, ``size`` is (w, l, h) and
``rotation`` a (w, x, y, z) quaternion about global z; the camera pose is ego_pose @
calibrated_sensor. Every sample (key frame) of a scene is one frame of a ``Sequence`` (frame id =
its index in the scene); ``Sequence.meta["sample_tokens"]`` keeps the sample tokens, which the
tracking submission needs.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.data.formats.common import (
    EXTRA_COLUMNS,
    apply_sidecar,
    check_image_sizes,
    hash_files,
    read_json,
    read_meta_frames,
    read_sidecar,
    write_sidecar,
)
from bench.data.geometry import (
    boxes_from_world,
    boxes_to_world,
    heading_to_quaternion,
    project_boxes_2d,
    quaternion_to_heading,
)
from bench.data.sequence import DataError, Dataset, Sequence, Split
from bench.data.tracks import BOX2D_COLUMNS, DONTCARE, empty_tracks, make_tracks, sort_tracks

TABLES = ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose", "log",
          "scene", "sample", "sample_data", "sample_annotation", "map")
CHANNEL = "CAM_FRONT"
# The 7 classes of the nuScenes tracking challenge.
TRACKING_NAMES = ("bicycle", "bus", "car", "motorcycle", "pedestrian", "trailer", "truck")
MAX_BOXES_PER_SAMPLE = 500
# Our class -> nuScenes category (writing) and tracking name (submissions).
CATEGORY_OF = {"Car": "vehicle.car", "Van": "vehicle.car", "Truck": "vehicle.truck",
               "Pedestrian": "human.pedestrian.adult", "Cyclist": "vehicle.bicycle"}
TRACKING_NAME_OF = {"Car": "car", "Van": "car", "Truck": "truck", "Pedestrian": "pedestrian", "Cyclist": "bicycle",
                    **{name: name for name in TRACKING_NAMES}}
VISIBILITY_LEVELS = {"1": "v0-40", "2": "v40-60", "3": "v60-80", "4": "v80-100"}
# nuScenes v1.0-mini scene split, as nuscenes.utils.splits lists it.
MINI_SPLITS = {"train": ["scene-0061", "scene-0553", "scene-0655", "scene-0757", "scene-0796", "scene-1077",
                         "scene-1094", "scene-1100"], "val": ["scene-0103", "scene-0916"]}
# Fixed CAM_FRONT extrinsics for exported synthetic drives: camera axes (x right, y down, z forward)
# in the ego frame (x forward, y left, z up), 1.5 m ahead of the rear axle, 1.65 m up.
CAM_TO_EGO = np.array([[0, 0, 1, 1.5], [-1, 0, 0, 0], [0, -1, 0, 1.65], [0, 0, 0, 1]], dtype=np.float64)


def category_to_class(name: str) -> str:
    """nuScenes category -> our class; other categories keep their tracking name or full name."""
    if name in ("vehicle.car",):
        return "Car"
    if name == "vehicle.truck":
        return "Truck"
    if name.startswith("human.pedestrian"):
        return "Pedestrian"
    if name == "vehicle.bicycle":
        return "Cyclist"
    for prefix, tracking in (("vehicle.bus", "bus"), ("vehicle.motorcycle", "motorcycle"),
                             ("vehicle.trailer", "trailer")):
        if name.startswith(prefix):
            return tracking
    return name


def token(*parts: Any) -> str:
    """A deterministic 32-hex token, as nuScenes tokens look."""
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()


def _matrix(rotation_wxyz: list[float], translation: list[float]) -> np.ndarray:
    w, x, y, z = rotation_wxyz
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    m = np.eye(4)
    m[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                 [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                 [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
    m[:3, 3] = translation
    return m


def _quaternion(matrix: np.ndarray) -> list[float]:
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(matrix[:3, :3]).as_quat()
    return [float(w), float(x), float(y), float(z)]


# ----------------------------------------------------------------------------------------------
# Track table <-> global boxes


def tracks_to_global(tracks: pd.DataFrame, sequences: Mapping[str, Sequence]) -> pd.DataFrame:
    """Rows with a 3D box -> global boxes: sample_token, translation (centre), size (w l h), rotation (wxyz).

    Velocity (vx, vy in m/s) is the finite difference of each track's global centres over time.
    """
    rows = []
    for seq_name, part in tracks[np.isfinite(tracks["x"].to_numpy(dtype=float))].groupby("seq", sort=True):
        seq = sequences[seq_name]
        index = np.array([seq.index_of(f) for f in part["frame"]])
        boxes = part[["x", "y", "z", "h", "w", "l", "yaw"]].to_numpy(dtype=float)
        centres = np.empty((len(part), 3))
        headings = np.empty(len(part))
        for i in np.unique(index):
            mask = index == i
            centres[mask], headings[mask] = boxes_to_world(boxes[mask], seq.cam_to_world[i])
        tokens = seq.meta.get("sample_tokens") or [token("sample", seq_name, f) for f in seq.frame_ids]
        out = pd.DataFrame({"seq": seq_name, "frame": part["frame"].to_numpy(), "track_id": part["track_id"].to_numpy(),
                            "cls": part["cls"].to_numpy(), "score": part["score"].to_numpy(),
                            "sample_token": [tokens[i] for i in index], "time": seq.timestamps[index],
                            "tx": centres[:, 0], "ty": centres[:, 1], "tz": centres[:, 2],
                            "sw": boxes[:, 4], "sl": boxes[:, 5], "sh": boxes[:, 3], "heading": headings})
        rows.append(out)
    if not rows:
        return pd.DataFrame(columns=["seq", "frame", "track_id", "cls", "score", "sample_token", "time", "tx", "ty",
                                     "tz", "sw", "sl", "sh", "heading", "vx", "vy"])
    out = pd.concat(rows, ignore_index=True).sort_values(["seq", "track_id", "frame"], kind="stable")
    vx, vy = np.zeros(len(out)), np.zeros(len(out))
    for _, idx in out.groupby(["seq", "track_id"], sort=False).indices.items():
        if len(idx) > 1:
            t = out["time"].to_numpy()[idx]
            vx[idx] = np.gradient(out["tx"].to_numpy()[idx], t)
            vy[idx] = np.gradient(out["ty"].to_numpy()[idx], t)
    out["vx"], out["vy"] = vx, vy
    return out.sort_values(["seq", "frame", "track_id"], kind="stable").reset_index(drop=True)


def _global_to_camera(translation: np.ndarray, size_wlh: np.ndarray, rotation: np.ndarray, seq: Sequence,
                      index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global boxes -> (KITTI camera boxes (N, 7), projected 2D boxes (N, 4)) in their frames."""
    boxes = np.empty((len(index), 7))
    box2d = np.empty((len(index), 4))
    headings = quaternion_to_heading(rotation)
    hwl = np.stack([size_wlh[:, 2], size_wlh[:, 0], size_wlh[:, 1]], axis=-1)
    for i in np.unique(index):
        m = index == i
        boxes[m] = boxes_from_world(translation[m], headings[m], hwl[m], seq.cam_to_world[i])
        box2d[m] = project_boxes_2d(boxes[m], seq.intrinsics[i], seq.image_size)
    return boxes, box2d


# ----------------------------------------------------------------------------------------------
# Writing tables


def _table_records(dataset: Dataset, root: Path, version: str) -> dict[str, list[dict]]:
    import imageio.v3 as iio


    tables: dict[str, list[dict]] = {name: [] for name in TABLES}
    categories = sorted(set(CATEGORY_OF.values()))
    tables["category"] = [{"token": token("category", c), "name": c, "description": c, "index": i}
                          for i, c in enumerate(categories)]
    tables["attribute"] = [{"token": token("attribute", a), "name": a, "description": a}
                           for a in ("vehicle.moving", "vehicle.parked", "vehicle.stopped", "pedestrian.moving",
                                     "pedestrian.standing", "cycle.with_rider")]
    tables["visibility"] = [{"token": k, "level": v, "description": f"visibility of whole object is {v}"}
                            for k, v in VISIBILITY_LEVELS.items()]
    sensor_token = token("sensor", CHANNEL)
    tables["sensor"] = [{"token": sensor_token, "channel": CHANNEL, "modality": "camera"}]
    log_token = token("log", dataset.name)
    tables["log"] = [{"token": log_token, "logfile": dataset.name, "vehicle": "bench", "date_captured": "2026-01-01",
                      "location": "synthetic"}]
    map_token = token("map", dataset.name)
    (root / "maps").mkdir(parents=True, exist_ok=True)
    iio.imwrite(root / "maps" / f"{map_token}.png", np.full((8, 8), 255, dtype=np.uint8))
    tables["map"] = [{"token": map_token, "log_tokens": [log_token], "category": "semantic_prior",
                      "filename": f"maps/{map_token}.png"}]
    extras = dataset.meta.get("box_extras")
    lidar_pts = {}
    if isinstance(extras, pd.DataFrame) and "num_lidar_pts" in extras.columns:
        extras = extras.reset_index() if "seq" not in extras.columns else extras
        lidar_pts = dict(zip(zip(extras["seq"], extras["frame"], extras["track_id"], strict=True),
                             extras["num_lidar_pts"], strict=True))
    image_dir = root / "samples" / CHANNEL
    image_dir.mkdir(parents=True, exist_ok=True)
    base_us = 1_533_000_000_000_000  # a plausible 2018 timestamp in microseconds, as nuScenes has
    for split in (dataset.train, dataset.val):
        for seq_name, seq in split.sequences.items():
            scene_token = token("scene", seq_name)
            samples = [token("sample", seq_name, f) for f in seq.frame_ids]
            stamps = [base_us + int(round(t * 1e6)) for t in seq.timestamps]
            w, h = seq.image_size
            sd = [token("sample_data", seq_name, f) for f in seq.frame_ids]
            for i, frame in enumerate(seq.frame_ids):
                prev_, next_ = (samples[i - 1] if i else ""), (samples[i + 1] if i + 1 < len(samples) else "")
                tables["sample"].append({"token": samples[i], "timestamp": stamps[i], "prev": prev_, "next": next_,
                                         "scene_token": scene_token})
                calib_token = token("calibrated_sensor", seq_name, frame)
                k = seq.intrinsics[i]
                tables["calibrated_sensor"].append({
                    "token": calib_token, "sensor_token": sensor_token, "translation": CAM_TO_EGO[:3, 3].tolist(),
                    "rotation": _quaternion(CAM_TO_EGO), "camera_intrinsic": k.tolist()})
                ego = seq.cam_to_world[i] @ np.linalg.inv(CAM_TO_EGO)
                pose_token = token("ego_pose", seq_name, frame)
                tables["ego_pose"].append({"token": pose_token, "timestamp": stamps[i],
                                           "rotation": _quaternion(ego), "translation": ego[:3, 3].tolist()})
                filename = f"samples/{CHANNEL}/{seq_name}__{CHANNEL}__{stamps[i]}.jpg"
                iio.imwrite(root / filename, seq.image(i), quality=95)
                tables["sample_data"].append({
                    "token": sd[i], "sample_token": samples[i], "ego_pose_token": pose_token,
                    "calibrated_sensor_token": calib_token, "timestamp": stamps[i], "fileformat": "jpg",
                    "is_key_frame": True, "height": h, "width": w, "filename": filename,
                    "prev": sd[i - 1] if i else "", "next": sd[i + 1] if i + 1 < len(sd) else ""})
            tables["scene"].append({"token": scene_token, "log_token": log_token, "nbr_samples": len(samples),
                                    "first_sample_token": samples[0], "last_sample_token": samples[-1],
                                    "name": seq_name, "description": f"bench export of {dataset.name}"})
            boxes = tracks_to_global(split.tracks_of(seq_name), {seq_name: seq})
            vis = split.tracks_of(seq_name).set_index(["frame", "track_id"])["visibility"]
            for track_id, part in boxes.groupby("track_id", sort=True):
                instance_token = token("instance", seq_name, track_id)
                anns = [token("sample_annotation", seq_name, f, track_id) for f in part["frame"]]
                cls = part["cls"].iloc[0]
                tables["instance"].append({
                    "token": instance_token, "category_token": token("category", CATEGORY_OF.get(cls, "vehicle.car")),
                    "nbr_annotations": len(anns), "first_annotation_token": anns[0],
                    "last_annotation_token": anns[-1]})
                for j, row in enumerate(part.itertuples(index=False)):
                    visibility = int(vis.get((row.frame, track_id), 0))
                    tables["sample_annotation"].append({
                        "token": anns[j], "sample_token": samples[seq.index_of(row.frame)],
                        "instance_token": instance_token, "visibility_token": str(visibility or 4),
                        "attribute_tokens": [], "translation": [row.tx, row.ty, row.tz],
                        "size": [row.sw, row.sl, row.sh],
                        "rotation": heading_to_quaternion(np.array([row.heading]))[0].tolist(),
                        "prev": anns[j - 1] if j else "", "next": anns[j + 1] if j + 1 < len(anns) else "",
                        # The devkit's evaluation drops boxes with no lidar points; without lidar, say 1.
                        "num_lidar_pts": int(lidar_pts.get((seq_name, row.frame, track_id), 1)),
                        "num_radar_pts": 0})
    return tables


def write_dataset(dataset: Dataset, root: Path, version: str = "v1.0-trainval") -> None:
    """Export as nuScenes tables under ``<root>/<version>/`` plus CAM_FRONT images and the sidecar."""
    root = Path(root)
    tables = _table_records(dataset, root, version)
    (root / version).mkdir(parents=True, exist_ok=True)
    for name, records in tables.items():
        (root / version / f"{name}.json").write_text(json.dumps(records, indent=0))
    instance_ids = {token("instance", seq, t): int(t) for split in (dataset.train, dataset.val)
                    for seq, t in zip(split.tracks["seq"], split.tracks["track_id"], strict=True) if t >= 0}
    write_sidecar(dataset, root, "nuscenes", extra_columns=("cls", *EXTRA_COLUMNS, *BOX2D_COLUMNS),
                  keep_dontcare=True)
    (root / "bench" / "instance_track_ids.json").write_text(json.dumps(instance_ids))


# ----------------------------------------------------------------------------------------------
# Reading tables


def _read_json(path: Path, missing: str) -> Any:
    """Parse a JSON file; a missing file or bad JSON is a DataError naming the file (and line)."""
    if not path.exists() and not path.is_symlink():
        raise DataError(f"{path}: {missing}")
    return read_json(path, "nuScenes JSON file")


# What a field must hold, as a word for the error message and a test.
def _is_number(v: Any) -> bool:
    """A finite JSON number (an integer too long for a float is not one)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _is_vector(n: int) -> Any:
    return lambda v: isinstance(v, list) and len(v) == n and all(map(_is_number, v))


def _is_quaternion(v: Any) -> bool:
    # A zero (or overflowing) quaternion is no rotation: the devkit's Quaternion would divide by its norm.
    if not _is_vector(4)(v) or max(abs(float(x)) for x in v) > 1e150:
        return False
    return math.sqrt(sum(float(x) ** 2 for x in v)) > 1e-6


def _is_size(v: Any) -> bool:
    return _is_vector(3)(v) and min(v) > 0


def _is_intrinsic(v: Any) -> bool:  # a camera's 3x3 matrix, or [] for lidar and radar
    return v == [] or (isinstance(v, list) and len(v) == 3 and all(map(_is_vector(3), v)))


FIELD_KINDS: dict[str, tuple[str, Any]] = {
    "str": ("a string", lambda v: isinstance(v, str)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**63),
    "number": ("a finite number", _is_number),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "vec3": ("3 finite numbers", _is_vector(3)),
    "size": ("3 positive numbers (w, l, h)", _is_size),
    "quat": ("a rotation quaternion (w, x, y, z), 4 finite numbers, not all 0", _is_quaternion),
    "intrinsic": ("a 3x3 camera matrix (or [])", _is_intrinsic),
    "id": ("a string or integer id", lambda v: isinstance(v, str | int) and not isinstance(v, bool)),
    "visibility": ("a visibility token '1'..'4' (or '')", lambda v: v in ("", "1", "2", "3", "4", 1, 2, 3, 4)),
}
# The fields bench reads from each table; a trailing '?' marks a field it does without.
TABLE_FIELDS: dict[str, dict[str, str]] = {
    "scene": {"token": "str", "name": "str", "first_sample_token": "str"},
    "sample": {"token": "str", "scene_token": "str", "timestamp": "int", "next?": "str"},
    "sample_data": {"token": "str", "sample_token": "str", "ego_pose_token": "str", "calibrated_sensor_token": "str",
                    "is_key_frame?": "bool", "filename": "str", "width?": "int", "height?": "int"},
    "ego_pose": {"token": "str", "translation": "vec3", "rotation": "quat"},
    "calibrated_sensor": {"token": "str", "sensor_token": "str", "translation": "vec3", "rotation": "quat",
                          "camera_intrinsic?": "intrinsic"},
    "sensor": {"token": "str", "channel": "str"},
    "category": {"token": "str", "name": "str"},
    "instance": {"token": "str", "category_token": "str"},
    "sample_annotation": {"token": "str", "sample_token": "str", "instance_token": "str", "translation": "vec3",
                          "size": "size", "rotation": "quat", "num_lidar_pts?": "int", "num_radar_pts?": "int",
                          "visibility_token?": "visibility"},
}


def check_record(record: Any, fields: dict[str, str], where: str) -> None:
    """One JSON object against ``fields`` (name -> kind of FIELD_KINDS; ``name?`` may be absent)."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: {type(record).__name__} {_short(record)}, expected an object")
    for name, kind in fields.items():
        key = name.rstrip("?")
        if key not in record:
            if name.endswith("?"):
                continue
            raise DataError(f"{where}: no {key!r}; expected {FIELD_KINDS[kind][0]}")
        words, test = FIELD_KINDS[kind]
        if not test(record[key]):
            raise DataError(f"{where}: {key!r} is {_short(record[key])}, expected {words}")


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) or not isinstance(value, int | float | list | dict | bool | None) \
        else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _load_table(folder: Path, name: str) -> list[dict]:
    path = folder / f"{name}.json"
    records = _read_json(path, f"table is missing (a nuScenes version folder has {', '.join(TABLES)})")
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of records")
    fields = TABLE_FIELDS.get(name, {"token": "str"})
    for i, record in enumerate(records):
        check_record(record, fields, f"{path}: record {i}")
    return records


def _index(records: list[dict], path: Path) -> dict[str, dict]:
    return {record["token"]: record for record in records}


def _get(index: dict[str, dict], key: str, path: Path, what: str) -> dict:
    try:
        return index[key]
    except KeyError:
        raise DataError(f"{path}: {what} refers to unknown token {key!r}") from None


def read_dataset(root: Path, version: str | None = None, name: str = "nuscenes", check_sizes: bool = True) -> Dataset:
    """Read nuScenes tables (CAM_FRONT key frames and their annotations) into a Dataset.

    Without a ``bench.json`` sidecar, v1.0-mini uses the devkit's mini split; other versions need
    ``bench.json`` with ``{"splits": {"train": [...], "val": [...]}}`` (scene names).
    """
    root = Path(root)
    if version is None:
        found = sorted(p.name for p in root.glob("v1.0-*") if (p / "scene.json").exists())
        if not found:
            raise DataError(f"{root}: no nuScenes version folder (v1.0-*/scene.json)")
        version = found[0]
    folder = root / version
    t = {name_: _load_table(folder, name_) for name_ in TABLES}
    idx = {name_: _index(t[name_], folder / f"{name_}.json") for name_ in TABLES}
    sidecar = read_sidecar(root)
    instance_ids: dict[str, int] = {}
    if sidecar and (root / "bench" / "instance_track_ids.json").exists():
        instance_ids = read_json(root / "bench" / "instance_track_ids.json", "bench instance id table")
    camera_sd: dict[str, dict] = {}
    for record in t["sample_data"]:
        calib = _get(idx["calibrated_sensor"], record["calibrated_sensor_token"], folder / "sample_data.json",
                     f"sample_data {record['token']}")
        sensor = _get(idx["sensor"], calib["sensor_token"], folder / "calibrated_sensor.json", "calibrated_sensor")
        if record.get("is_key_frame") and sensor["channel"] == CHANNEL:
            camera_sd[record["sample_token"]] = record
    anns_of: dict[str, list[dict]] = {}
    for ann in t["sample_annotation"]:
        _get(idx["sample"], ann["sample_token"], folder / "sample_annotation.json", f"annotation {ann['token']}")
        anns_of.setdefault(ann["sample_token"], []).append(ann)
    scenes = {s["name"]: s for s in t["scene"]}
    if sidecar:
        splits = sidecar["splits"]
    elif version == "v1.0-mini":
        splits = {k: [s for s in v if s in scenes] for k, v in MINI_SPLITS.items()}
    else:
        raise DataError(f"{root}: {version} needs the scene split in {root / 'bench.json'} as "
                        '{"splits": {"train": [scene names], "val": [...]}}; make it from '
                        "nuscenes.utils.splits.create_splits_scenes()")
    result, extras_rows = {}, []
    for split_name in ("train", "val"):
        sequences, tables = {}, []
        for scene_name in splits[split_name]:
            if scene_name not in scenes:
                raise DataError(f"{folder / 'scene.json'}: no scene named {scene_name!r} (listed in the split)")
            seq, tracks, extras = _read_scene(root, folder, scenes[scene_name], idx, camera_sd, anns_of,
                                              instance_ids, check_sizes, in_view_only=not sidecar)
            sequences[scene_name] = seq
            tables.append(tracks)
            extras_rows.append(extras)
        tracks = sort_tracks(pd.concat(tables, ignore_index=True)) if tables else empty_tracks()
        split = Split(split_name, sequences, tracks)
        result[split_name] = apply_sidecar(split, root, split_name) if sidecar else split
    meta: dict[str, Any] = dict(sidecar.get("meta", {})) if sidecar else {}
    meta["box_extras"] = pd.concat(extras_rows, ignore_index=True) if extras_rows else pd.DataFrame()
    meta["version"] = version
    meta.update(read_meta_frames(root))
    data_hash = (sidecar or {}).get("data_hash") or hash_files(
        [folder / f"{n}.json" for n in ("scene", "sample", "sample_annotation", "ego_pose", "calibrated_sensor")])
    return Dataset(name=(sidecar or {}).get("name", name), train=result["train"], val=result["val"],
                   frame_rate=(sidecar or {}).get("frame_rate", 2.0), data_hash=data_hash, root=root, meta=meta)


def _read_scene(root: Path, folder: Path, scene: dict, idx: dict, camera_sd: dict, anns_of: dict,
                instance_ids: dict[str, int], check_sizes: bool, in_view_only: bool
                ) -> tuple[Sequence, pd.DataFrame, pd.DataFrame]:
    name = scene["name"]
    samples: list[Any] = []
    token_, seen = scene["first_sample_token"], set()
    while token_:
        if token_ in seen:  # a 'next' chain that loops would never end
            raise DataError(f"{folder / 'sample.json'}: the samples of scene {name} loop back to {token_!r}")
        seen.add(token_)
        sample = _get(idx["sample"], token_, folder / "scene.json" if not samples else folder / "sample.json",
                      f"scene {name}")
        samples.append(sample)
        token_ = sample.get("next", "")
    intrinsics, poses, stamps, images = [], [], [], []
    for sample in samples:
        sd = camera_sd.get(sample["token"])
        if sd is None:
            raise DataError(f"{folder / 'sample_data.json'}: sample {sample['token']} of scene {name} has no "
                            f"{CHANNEL} key frame")
        calib = idx["calibrated_sensor"][sd["calibrated_sensor_token"]]
        ego = _get(idx["ego_pose"], sd["ego_pose_token"], folder / "sample_data.json", f"sample_data {sd['token']}")
        if len(calib.get("camera_intrinsic", [])) != 3:
            raise DataError(f"{folder / 'calibrated_sensor.json'}: {calib['token']!r} of {CHANNEL} has no 3x3 "
                            "camera_intrinsic")
        intrinsics.append(np.array(calib["camera_intrinsic"], dtype=float))
        poses.append(_matrix(ego["rotation"], ego["translation"]) @ _matrix(calib["rotation"], calib["translation"]))
        stamps.append(sample["timestamp"] / 1e6)
        images.append(root / sd["filename"])
    size = check_image_sizes(images if check_sizes else images[:1])
    first = camera_sd[samples[0]["token"]]
    if (size[0], size[1]) != (first.get("width"), first.get("height")):
        raise DataError(f"{images[0]}: image is {size[0]}x{size[1]}, sample_data says "
                        f"{first.get('width')}x{first.get('height')}")
    stamps_arr = np.array(stamps)
    seq = Sequence(name=name, images=images, intrinsics=np.stack(intrinsics), cam_to_world=np.stack(poses),
                   timestamps=stamps_arr - stamps_arr[0], image_size=size,
                   meta={"sample_tokens": [s["token"] for s in samples], "scene_token": scene["token"]})
    rows = []
    local_ids: dict[str, int] = {}
    for frame, sample in enumerate(samples):
        for ann in anns_of.get(sample["token"], []):
            instance = _get(idx["instance"], ann["instance_token"], folder / "sample_annotation.json",
                            f"annotation {ann['token']}")
            category = _get(idx["category"], instance["category_token"], folder / "instance.json",
                            f"instance {instance['token']}")
            size_wlh = np.array(ann["size"], dtype=float)
            if size_wlh.shape != (3,) or not np.isfinite(size_wlh).all() or (size_wlh <= 0).any():
                raise DataError(f"{folder / 'sample_annotation.json'}: annotation {ann['token']} has size "
                                f"{ann['size']}, expected 3 positive numbers (w, l, h)")
            track_id = instance_ids.get(ann["instance_token"])
            if track_id is None:
                track_id = local_ids.setdefault(ann["instance_token"], len(local_ids))
            rows.append((frame, track_id, category_to_class(category["name"]), ann["translation"], size_wlh,
                         ann["rotation"], int(ann.get("visibility_token") or 0), ann.get("num_lidar_pts", 0),
                         ann.get("num_radar_pts", 0), ann["token"]))
    if not rows:
        return seq, empty_tracks(), pd.DataFrame()
    frames = np.array([r[0] for r in rows])
    boxes, box2d = _global_to_camera(np.array([r[3] for r in rows], dtype=float), np.array([r[4] for r in rows]),
                                     np.array([r[5] for r in rows], dtype=float), seq, frames)
    df = pd.DataFrame({"seq": name, "frame": frames, "track_id": [r[1] for r in rows], "cls": [r[2] for r in rows],
                       "x1": box2d[:, 0], "y1": box2d[:, 1], "x2": box2d[:, 2], "y2": box2d[:, 3],
                       "x": boxes[:, 0], "y": boxes[:, 1], "z": boxes[:, 2], "h": boxes[:, 3], "w": boxes[:, 4],
                       "l": boxes[:, 5], "yaw": boxes[:, 6], "visibility": [r[6] for r in rows]})
    extras = pd.DataFrame({"seq": name, "frame": frames, "track_id": df["track_id"],
                           "num_lidar_pts": [r[7] for r in rows], "num_radar_pts": [r[8] for r in rows],
                           "annotation_token": [r[9] for r in rows]})
    if in_view_only:
        # nuScenes annotates 360 degrees; a CAM_FRONT sequence keeps what lies in front of and in the image.
        keep = (df["z"] > 0.5) & np.isfinite(box2d).all(axis=1) & (df["x2"] > df["x1"]) & (df["y2"] > df["y1"])
        df, extras = df[keep], extras[keep.to_numpy()]
    return seq, make_tracks(df, source=str(folder / "sample_annotation.json")), extras.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Tracking submissions


def tracks_to_submission(tracks: pd.DataFrame, sequences: Mapping[str, Sequence],
                         meta: dict[str, bool] | None = None) -> dict:
    """A nuScenes tracking submission (every sample of ``sequences`` listed, <= 500 boxes each).

    Rows whose class has no tracking name are left out (the evaluation would reject them).
    """
    boxes = tracks_to_global(tracks[tracks["cls"] != DONTCARE], sequences)
    boxes = boxes[boxes["cls"].map(TRACKING_NAME_OF).notna()]
    results: dict[str, list[dict]] = {}
    for seq in sequences.values():
        for tok in seq.meta.get("sample_tokens") or [token("sample", seq.name, f) for f in seq.frame_ids]:
            results[tok] = []
    for sample_token, part in boxes.groupby("sample_token", sort=False):
        if sample_token not in results:
            raise DataError(f"tracks name sample {sample_token} that is not in the given sequences")
        part = part.sort_values("score", ascending=False, kind="stable").head(MAX_BOXES_PER_SAMPLE)
        quats = heading_to_quaternion(part["heading"].to_numpy())
        results[sample_token] = [
            {"sample_token": sample_token, "translation": [r.tx, r.ty, r.tz], "size": [r.sw, r.sl, r.sh],
             "rotation": q.tolist(), "velocity": [r.vx, r.vy], "tracking_id": str(r.track_id),
             "tracking_name": TRACKING_NAME_OF[r.cls], "tracking_score": float(r.score)}
            for r, q in zip(part.itertuples(index=False), quats, strict=True)]
    return {"meta": meta or {"use_camera": True, "use_lidar": False, "use_radar": False, "use_map": False,
                             "use_external": False},
            "results": results}


def write_tracking_submission(path: Path | str, tracks: pd.DataFrame, sequences: Mapping[str, Sequence],
                              meta: dict[str, bool] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tracks_to_submission(tracks, sequences, meta)))
    return path


SUBMISSION_BOX_KEYS = ("sample_token", "translation", "size", "rotation", "velocity", "tracking_id",
                       "tracking_name", "tracking_score")


def read_tracking_submission(path: Path | str, sample_tokens: set[str] | None = None, *,
                             with_tokens: bool = False) -> Any:
    """Validate a tracking submission and return its boxes in the global frame, one row per box.

    Columns: sample_token, tx ty tz, sw sl sh, qw qx qy qz, vx vy, tracking_id, tracking_name,
    tracking_score. Errors name the file and the JSON place (``results[<token>][i]``): a missing key, a
    tracking_id that is not a string or integer (null, a list), a rotation that is no quaternion (all 0),
    non-finite numbers. ``with_tokens``: also return the set of sample tokens the results list.
    """
    path = Path(path)
    data = _read_json(path, "submission file is missing")
    if not isinstance(data, dict) or "results" not in data or "meta" not in data:
        raise DataError(f"{path}: expected an object with 'meta' and 'results'")
    if not isinstance(data["results"], dict):
        raise DataError(f"{path}: 'results' must map sample tokens to lists of boxes")
    rows = []
    for sample_token, boxes in data["results"].items():
        where = f"{path}: results[{sample_token!r}]"
        if sample_tokens is not None and sample_token not in sample_tokens:
            raise DataError(f"{where}: unknown sample token")
        if not isinstance(boxes, list):
            raise DataError(f"{where}: expected a list of boxes")
        if len(boxes) > MAX_BOXES_PER_SAMPLE:
            raise DataError(f"{where}: {len(boxes)} boxes, at most {MAX_BOXES_PER_SAMPLE} allowed per sample")
        for i, box in enumerate(boxes):
            if not isinstance(box, dict):
                raise DataError(f"{where}[{i}]: {_short(box)}, expected a box object")
            missing = [k for k in SUBMISSION_BOX_KEYS if k not in box]
            if missing:
                raise DataError(f"{where}[{i}]: missing keys {missing}")
            if box["sample_token"] != sample_token:
                raise DataError(f"{where}[{i}]: sample_token {box['sample_token']!r} differs from its key")
            if box["tracking_name"] not in TRACKING_NAMES:
                raise DataError(f"{where}[{i}]: tracking_name {box['tracking_name']!r}, expected one of "
                                f"{TRACKING_NAMES}")
            tracking_id = box["tracking_id"]
            if isinstance(tracking_id, bool) or not isinstance(tracking_id, str | int):
                raise DataError(f"{where}[{i}]: tracking_id {_short(tracking_id)}, expected a string (or integer) id")
            score = box["tracking_score"]
            if not _is_number(score):
                raise DataError(f"{where}[{i}]: tracking_score {_short(score)}, expected a finite float")
            numbers: list[Any] = []
            for key, n in (("translation", 3), ("size", 3), ("rotation", 4), ("velocity", 2)):
                value = box[key]
                # The devkit allows a NaN velocity (it then skips the velocity error); nothing else may be NaN.
                ok = isinstance(value, list) and len(value) == n and all(
                    _is_number(v) or (key == "velocity" and isinstance(v, float) and math.isnan(v)) for v in value)
                if not ok:
                    raise DataError(f"{where}[{i}]: {key} {_short(value)}, expected {n} finite numbers")
                numbers.extend(float(v) for v in value)
            if min(numbers[3:6]) <= 0:
                raise DataError(f"{where}[{i}]: size {box['size']}, expected w l h > 0")
            if not _is_quaternion(box["rotation"]):
                raise DataError(f"{where}[{i}]: rotation {box['rotation']}, expected a quaternion (w, x, y, z) "
                                "that is not all 0")
            rows.append([sample_token, *numbers, str(tracking_id), box["tracking_name"], float(score)])
    table = pd.DataFrame(rows, columns=["sample_token", "tx", "ty", "tz", "sw", "sl", "sh", "qw", "qx", "qy", "qz",
                                        "vx", "vy", "tracking_id", "tracking_name", "tracking_score"])
    return (table, set(data["results"])) if with_tokens else table


def submission_to_tracks(boxes: pd.DataFrame, sequences: Mapping[str, Sequence]) -> pd.DataFrame:
    """Global submission boxes -> a track table in each frame's camera (classes as tracking names).

    ``tracking_id`` strings become integers: themselves when numeric, otherwise an index.
    """
    where: dict[str, tuple[str, int]] = {}
    for seq in sequences.values():
        for i, tok in enumerate(seq.meta.get("sample_tokens") or [token("sample", seq.name, f)
                                                                   for f in seq.frame_ids]):
            where[tok] = (seq.name, i)
    unknown = sorted(set(boxes["sample_token"]) - set(where))
    if unknown:
        raise DataError(f"submission names sample tokens not in the given sequences: {unknown[:3]}")
    ids = boxes["tracking_id"]
    numeric = ids.str.fullmatch(r"-?\d+").all() if len(ids) else True
    track_ids = ids.astype(np.int64) if numeric else pd.Series(pd.factorize(ids)[0], index=ids.index)
    tables = []
    for seq_name, part in boxes.assign(track_id=track_ids).groupby(boxes["sample_token"].map(lambda t: where[t][0])):
        seq = sequences[seq_name]
        index = part["sample_token"].map(lambda t: where[t][1]).to_numpy()
        cam, box2d = _global_to_camera(part[["tx", "ty", "tz"]].to_numpy(), part[["sw", "sl", "sh"]].to_numpy(),
                                       part[["qw", "qx", "qy", "qz"]].to_numpy(), seq, index)
        tables.append(pd.DataFrame({
            "seq": seq_name, "frame": seq.frame_ids[index], "track_id": part["track_id"].to_numpy(),
            "cls": part["tracking_name"].to_numpy(), "score": part["tracking_score"].to_numpy(),
            "x1": box2d[:, 0], "y1": box2d[:, 1], "x2": box2d[:, 2], "y2": box2d[:, 3],
            "x": cam[:, 0], "y": cam[:, 1], "z": cam[:, 2], "h": cam[:, 3], "w": cam[:, 4], "l": cam[:, 5],
            "yaw": cam[:, 6]}))
    if not tables:
        return empty_tracks()
    df = pd.concat(tables, ignore_index=True)
    # Boxes behind the camera have no 2D projection; they keep an empty box at the image corner.
    df[list(BOX2D_COLUMNS)] = df[list(BOX2D_COLUMNS)].fillna(0.0)
    return sort_tracks(make_tracks(df, source="nuScenes submission"))
