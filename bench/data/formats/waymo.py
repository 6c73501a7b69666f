"""Waymo Open Dataset v2 (parquet components), FRONT camera only, written and read with pyarrow.

Layout as the v2 release: ``<root>/<training|validation>/<component>/<segment>.parquet`` for the
components camera_image, camera_box, camera_calibration, lidar_box and vehicle_pose, with the v2
column names (``key.segment_context_name``, ``key.frame_timestamp_micros``,
``[CameraImageComponent].image``, ``[LiDARBoxComponent].box.center.x``, ...).

Frames: the vehicle frame is x forward, y left, z up; ``lidar_box`` boxes are in it (centre,
size x = length, y = width, z = height, heading about z). The camera extrinsic maps Waymo's camera
frame (x forward, y left, z up; u = c_u - f_u y/x) to the vehicle; our optical camera (x right,
y down, z forward) is that frame turned by ``OPTICAL_TO_WAYMO_CAM``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.data.formats.common import (
    EXTRA_COLUMNS,
    apply_sidecar,
    hash_files,
    read_meta_frames,
    read_sidecar,
    write_sidecar,
)
from bench.data.geometry import boxes_from_world, boxes_to_world, project_boxes_2d, transform_points
from bench.data.sequence import DataError, Dataset, Sequence, Split
from bench.data.tracks import BOX2D_COLUMNS, empty_tracks, make_tracks, sort_tracks

COMPONENTS = ("camera_image", "camera_box", "camera_calibration", "lidar_box", "vehicle_pose")
FRONT = 1  # CameraName.FRONT
SPLIT_DIRS = {"train": "training", "val": "validation"}
SEGMENT, TIMESTAMP, CAMERA, LASER_ID, CAMERA_ID = ("key.segment_context_name", "key.frame_timestamp_micros",
                                                   "key.camera_name", "key.laser_object_id", "key.camera_object_id")
IMG = "[CameraImageComponent]"
CBOX = "[CameraBoxComponent]"
CAL = "[CameraCalibrationComponent]"
LBOX = "[LiDARBoxComponent]"
POSE = "[VehiclePoseComponent]"
# Waymo object types (label.proto) <-> our classes.
TYPE_OF = {"Car": 1, "Van": 1, "Truck": 1, "Pedestrian": 2, "Cyclist": 4}
CLASS_OF = {0: "Unknown", 1: "Car", 2: "Pedestrian", 3: "Sign", 4: "Cyclist"}
OPTICAL_TO_WAYMO_CAM = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
# Exported synthetic drives: FRONT camera 1.5 m ahead of the vehicle origin, 1.65 m above the ground.
CAM_TO_VEHICLE = np.array([[1, 0, 0, 1.5], [0, 1, 0, 0], [0, 0, 1, 1.65], [0, 0, 0, 1]], dtype=np.float64)


def read_parquet(path: Path, columns: list[str] | None = None, what: str = "parquet file") -> pd.DataFrame:
    """A user's parquet file as a DataFrame; a missing, damaged or foreign file is a one-line DataError."""
    path = Path(path)
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "is missing"
        raise DataError(f"{path}: {state}, expected a {what}")
    try:
        schema = pq.read_schema(path)
        missing = [c for c in columns or [] if c not in schema.names]
        if missing:
            raise DataError(f"{path}: missing columns {missing}")
        return pq.read_table(path, columns=columns).to_pandas()
    except (pa.ArrowException, OSError, ValueError, KeyError, TypeError, IndexError) as err:
        if isinstance(err, DataError):
            raise
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise DataError(f"{path}: not a readable {what} ({first})") from None


def _numeric(df: pd.DataFrame, columns: list[str], path: Path, integral: bool = False) -> np.ndarray:
    """``columns`` of ``df`` as a float array; text, NaN or inf name the file, row and column."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing}")
    out = np.empty((len(df), len(columns)))
    for j, column in enumerate(columns):
        values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if integral:  # timestamps, camera names and types: whole numbers that fit an int64
            bad |= (values != np.round(values)) | (np.abs(values) >= 2**62)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: row {row + 1}: {column} is {str(df[column].iloc[row])[:40]!r}, expected a "
                            f"finite {'integer' if integral else 'number'}")
        out[:, j] = values
    return out


def _matrices(df: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """A column of flattened 4x4 transforms as ``(n, 4, 4)``; anything else names the file, row and column."""
    if column not in df.columns:
        raise DataError(f"{path}: missing column {column!r}")
    out = np.empty((len(df), 4, 4))
    for row, value in enumerate(df[column]):
        try:
            matrix = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            matrix = np.empty(0)
        if matrix.size != 16 or not np.isfinite(matrix).all() or abs(np.linalg.det(matrix.reshape(4, 4))) < 1e-12:
            raise DataError(f"{path}: row {row + 1}: {column} is not 16 finite numbers of an invertible 4x4 transform")
        out[row] = matrix.reshape(4, 4)
    return out


def _read(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: component file is missing (expected <root>/<split>/<component>/<segment>.parquet)")
    return read_parquet(path, columns, "Waymo v2 component file")


def _write(path: Path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)


def write_segment(folder: Path, seq: Sequence, tracks: pd.DataFrame, base_us: int = 1_550_000_000_000_000) -> None:
    """Write one sequence as a v2 segment (FRONT camera) into the five component folders."""
    import imageio.v3 as iio

    name = seq.name
    stamps = np.array([base_us + int(round(t * 1e6)) for t in seq.timestamps], dtype=np.int64)
    cam_to_vehicle = CAM_TO_VEHICLE @ OPTICAL_TO_WAYMO_CAM  # optical camera -> vehicle
    world_from_vehicle = seq.cam_to_world @ np.linalg.inv(cam_to_vehicle)
    _write(folder / "vehicle_pose" / f"{name}.parquet", pd.DataFrame({
        SEGMENT: name, TIMESTAMP: stamps,
        f"{POSE}.world_from_vehicle.transform": [m.ravel().tolist() for m in world_from_vehicle]}))
    _write(folder / "camera_image" / f"{name}.parquet", pd.DataFrame({
        SEGMENT: name, TIMESTAMP: stamps, CAMERA: FRONT,
        f"{IMG}.image": [iio.imwrite("<bytes>", seq.image(i), extension=".jpg", quality=95)
                         for i in range(seq.num_frames)],
        f"{IMG}.pose.transform": [m.ravel().tolist() for m in world_from_vehicle],
        f"{IMG}.pose_timestamp": stamps / 1e6}))
    k = seq.intrinsics[0]
    if not np.allclose(seq.intrinsics, k):
        raise DataError(f"sequence {name}: Waymo stores one calibration per segment, but intrinsics vary")
    w, h = seq.image_size
    _write(folder / "camera_calibration" / f"{name}.parquet", pd.DataFrame({
        SEGMENT: [name], CAMERA: [FRONT], f"{CAL}.intrinsic.f_u": [k[0, 0]], f"{CAL}.intrinsic.f_v": [k[1, 1]],
        f"{CAL}.intrinsic.c_u": [k[0, 2]], f"{CAL}.intrinsic.c_v": [k[1, 2]],
        **{f"{CAL}.intrinsic.{d}": [0.0] for d in ("k1", "k2", "p1", "p2", "k3")},
        f"{CAL}.extrinsic.transform": [CAM_TO_VEHICLE.ravel().tolist()], f"{CAL}.width": [w], f"{CAL}.height": [h],
        f"{CAL}.rolling_shutter_direction": [0]}))
    boxes3d = tracks[np.isfinite(tracks["x"].to_numpy(dtype=float))]
    index = np.array([seq.index_of(f) for f in boxes3d["frame"]], dtype=np.int64)
    centres = np.empty((len(boxes3d), 3))
    headings = np.empty(len(boxes3d))
    cam = boxes3d[["x", "y", "z", "h", "w", "l", "yaw"]].to_numpy(dtype=float)
    for i in np.unique(index):
        m = index == i
        # Box centre and heading in the vehicle frame: go through the world and back.
        c_world, h_world = boxes_to_world(cam[m], seq.cam_to_world[i])
        vehicle_from_world = np.linalg.inv(world_from_vehicle[i])
        centres[m] = transform_points(c_world, vehicle_from_world)
        fwd = np.stack([np.cos(h_world), np.sin(h_world), np.zeros_like(h_world)], -1) @ vehicle_from_world[:3, :3].T
        headings[m] = np.arctan2(fwd[:, 1], fwd[:, 0])
    ids = boxes3d["track_id"].astype(str).to_numpy()
    _write(folder / "lidar_box" / f"{name}.parquet", pd.DataFrame({
        SEGMENT: name, TIMESTAMP: stamps[index] if len(index) else np.zeros(0, np.int64), LASER_ID: ids,
        f"{LBOX}.box.center.x": centres[:, 0], f"{LBOX}.box.center.y": centres[:, 1],
        f"{LBOX}.box.center.z": centres[:, 2], f"{LBOX}.box.size.x": cam[:, 5], f"{LBOX}.box.size.y": cam[:, 4],
        f"{LBOX}.box.size.z": cam[:, 3], f"{LBOX}.box.heading": headings,
        f"{LBOX}.type": boxes3d["cls"].map(TYPE_OF).fillna(0).astype(np.int8).to_numpy(),
        f"{LBOX}.num_lidar_points_in_box": np.ones(len(ids), dtype=np.int64)}))
    real = tracks[tracks["track_id"] >= 0]
    cidx = np.array([seq.index_of(f) for f in real["frame"]], dtype=np.int64)
    _write(folder / "camera_box" / f"{name}.parquet", pd.DataFrame({
        SEGMENT: name, TIMESTAMP: stamps[cidx] if len(cidx) else np.zeros(0, np.int64), CAMERA: FRONT,
        CAMERA_ID: real["track_id"].astype(str).to_numpy(),
        f"{CBOX}.box.center.x": ((real["x1"] + real["x2"]) / 2).to_numpy(),
        f"{CBOX}.box.center.y": ((real["y1"] + real["y2"]) / 2).to_numpy(),
        f"{CBOX}.box.size.x": (real["x2"] - real["x1"]).to_numpy(),
        f"{CBOX}.box.size.y": (real["y2"] - real["y1"]).to_numpy(),
        f"{CBOX}.type": real["cls"].map(TYPE_OF).fillna(0).astype(np.int8).to_numpy()}))


def read_segment(folder: Path, name: str, in_view_only: bool = True) -> tuple[Sequence, pd.DataFrame]:
    """Read one segment's FRONT camera: Sequence (decoded images) and the 3D boxes seen by it."""


    images_df = _read(folder / "camera_image" / f"{name}.parquet", [SEGMENT, TIMESTAMP, CAMERA, f"{IMG}.image"])
    image_path = folder / "camera_image" / f"{name}.parquet"
    images_df = images_df[_numeric(images_df, [CAMERA], image_path)[:, 0] == FRONT]
    stamps = _numeric(images_df, [TIMESTAMP], image_path, integral=True)[:, 0].astype(np.int64)
    images_df = images_df.iloc[np.argsort(stamps, kind="stable")]
    stamps = np.sort(stamps)
    if images_df.empty:
        raise DataError(f"{image_path}: no FRONT camera images")
    if len(np.unique(stamps)) < len(stamps):
        raise DataError(f"{image_path}: two FRONT images share the timestamp {stamps[1:][np.diff(stamps) == 0][0]}")
    pose_path = folder / "vehicle_pose" / f"{name}.parquet"
    poses_df = _read(pose_path, [TIMESTAMP, f"{POSE}.world_from_vehicle.transform"])
    pose_stamps = _numeric(poses_df, [TIMESTAMP], pose_path, integral=True)[:, 0].astype(np.int64)
    pose_row = {s: i for i, s in enumerate(pose_stamps)}
    missing = sorted(set(stamps.tolist()) - set(pose_row))
    if missing:
        raise DataError(f"{pose_path}: no vehicle pose for frame timestamp {missing[0]}")
    poses = _matrices(poses_df.iloc[[pose_row[s] for s in stamps.tolist()]], f"{POSE}.world_from_vehicle.transform",
                      pose_path)
    world_from_vehicle = poses
    cal_path = folder / "camera_calibration" / f"{name}.parquet"
    cal = _read(cal_path)
    cal = cal[_numeric(cal, [CAMERA], cal_path)[:, 0] == FRONT]
    if cal.empty:
        raise DataError(f"{cal_path}: no FRONT camera calibration")
    f_u, f_v, c_u, c_v = _numeric(cal, [f"{CAL}.intrinsic.{a}" for a in ("f_u", "f_v", "c_u", "c_v")], cal_path)[0]
    if f_u <= 0 or f_v <= 0:
        raise DataError(f"{cal_path}: row 1: focal lengths f_u {f_u}, f_v {f_v}, expected positive")
    k = np.array([[f_u, 0, c_u], [0, f_v, c_v], [0, 0, 1]], dtype=float)
    cam_to_vehicle = _matrices(cal.iloc[:1], f"{CAL}.extrinsic.transform", cal_path)[0] @ OPTICAL_TO_WAYMO_CAM
    width, height = _numeric(cal, [f"{CAL}.width", f"{CAL}.height"], cal_path, integral=True)[0]
    if not (0 < width <= 100_000 and 0 < height <= 100_000):
        raise DataError(f"{cal_path}: row 1: image size {width:g} x {height:g}, expected positive pixels")
    size = (int(width), int(height))
    images = np.stack([_decode_jpeg(b, image_path, row) for row, b in enumerate(images_df[f"{IMG}.image"])])
    if images.shape[1:3] != (size[1], size[0]):
        raise DataError(f"{folder / 'camera_image' / (name + '.parquet')}: images are {images.shape[2]}x"
                        f"{images.shape[1]}, calibration says {size[0]}x{size[1]}")
    cam_to_world = world_from_vehicle @ cam_to_vehicle
    seq = Sequence(name=name, images=images, intrinsics=k, cam_to_world=cam_to_world,
                   timestamps=(stamps - stamps[0]) / 1e6, image_size=size, meta={"timestamps_us": stamps.tolist()})
    box_path = folder / "lidar_box" / f"{name}.parquet"
    cols = [TIMESTAMP, LASER_ID, *(f"{LBOX}.box.{a}" for a in ("center.x", "center.y", "center.z", "size.x", "size.y",
                                                                 "size.z", "heading")), f"{LBOX}.type"]
    boxes = _read(box_path, cols)
    box_stamps = _numeric(boxes, [TIMESTAMP], box_path, integral=True)[:, 0]
    boxes = boxes[np.isin(box_stamps, stamps)].assign(**{TIMESTAMP: box_stamps[np.isin(box_stamps, stamps)]
                                                          .astype(np.int64)})
    if boxes.empty:
        return seq, empty_tracks()
    values = _numeric(boxes, cols[2:10], box_path)
    types = values[:, 7]
    values = values[:, :7]
    bad = ~np.isfinite(values).all(axis=1) | (values[:, 3:6] <= 0).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{box_path}: row {i} (laser_object_id {boxes[LASER_ID].iloc[i]}): box {values[i].tolist()}, "
                        "expected finite numbers and positive sizes")
    frame_of = {s: i for i, s in enumerate(stamps)}
    index = boxes[TIMESTAMP].map(frame_of).to_numpy()
    cam = np.empty((len(boxes), 7))
    for i in np.unique(index):
        m = index == i
        c_world = transform_points(values[m, :3], world_from_vehicle[i])
        fwd = np.stack([np.cos(values[m, 6]), np.sin(values[m, 6]), np.zeros(m.sum())], -1) @ \
            world_from_vehicle[i][:3, :3].T
        hwl = values[m][:, [5, 4, 3]]
        cam[m] = boxes_from_world(c_world, np.arctan2(fwd[:, 1], fwd[:, 0]), hwl, cam_to_world[i])
    ids = boxes[LASER_ID].map(str)
    numeric = ids.str.fullmatch(r"\d{1,18}").all()
    track_ids = ids.astype(np.int64).to_numpy() if numeric else pd.factorize(ids)[0]
    box2d = np.empty((len(boxes), 4))
    for i in np.unique(index):
        box2d[index == i] = project_boxes_2d(cam[index == i], k, size)
    # Where camera_box has a FRONT box under the same object id (our exports), it is the 2D label;
    # real v2 data links camera and laser ids through another component, so it keeps the projection.
    camera_path = folder / "camera_box" / f"{name}.parquet"
    if camera_path.exists():
        cb_columns = [f"{CBOX}.box.{a}" for a in ("center.x", "center.y", "size.x", "size.y")]
        cb = _read(camera_path, [TIMESTAMP, CAMERA, CAMERA_ID, *cb_columns])
        cb_numbers = _numeric(cb, [TIMESTAMP, CAMERA, *cb_columns], camera_path)
        front = cb_numbers[:, 1] == FRONT
        cb, cb_numbers = cb[front], cb_numbers[front]
        lookup = {(int(t), str(o)): j for j, (t, o) in enumerate(zip(cb_numbers[:, 0], cb[CAMERA_ID], strict=True))}
        rows = [lookup.get((int(t), o), -1) for t, o in zip(boxes[TIMESTAMP], ids, strict=True)]
        hit = np.array(rows) >= 0
        if hit.any():
            c = cb_numbers[np.array(rows)[hit]][:, 2:]
            box2d[hit] = np.stack([c[:, 0] - c[:, 2] / 2, c[:, 1] - c[:, 3] / 2, c[:, 0] + c[:, 2] / 2,
                                   c[:, 1] + c[:, 3] / 2], axis=-1)
    df = pd.DataFrame({"seq": name, "frame": seq.frame_ids[index], "track_id": track_ids,
                       "cls": pd.Series(types).map(CLASS_OF).fillna("Unknown").to_numpy(),
                       "x1": box2d[:, 0], "y1": box2d[:, 1], "x2": box2d[:, 2], "y2": box2d[:, 3],
                       "x": cam[:, 0], "y": cam[:, 1], "z": cam[:, 2], "h": cam[:, 3], "w": cam[:, 4],
                       "l": cam[:, 5], "yaw": cam[:, 6]})
    if in_view_only:
        # lidar_box covers 360 degrees; the FRONT camera sequence keeps boxes in front and in the image.
        keep = (df["z"] > 0.5) & np.isfinite(box2d).all(axis=1) & (df["x2"] > df["x1"]) & (df["y2"] > df["y1"])
        df = df[keep]
    return seq, make_tracks(df, source=str(box_path))


def _decode_jpeg(data: object, path: Path, row: int) -> np.ndarray:
    """One camera image of the component file; bytes that are not a JPEG name the file and row."""
    import io

    import imageio.v3 as iio

    if not isinstance(data, bytes):
        raise DataError(f"{path}: row {row + 1}: {IMG}.image is {type(data).__name__}, expected JPEG bytes")
    try:
        image = np.asarray(iio.imread(io.BytesIO(data), extension=".jpg"))
    except Exception as err:  # imageio's plugins raise many kinds for damaged bytes
        raise DataError(f"{path}: row {row + 1}: {IMG}.image is not a readable JPEG ({type(err).__name__})") from None
    if image.ndim != 3 or image.shape[2] < 3:
        raise DataError(f"{path}: row {row + 1}: {IMG}.image decodes to shape {image.shape}, expected colour")
    return image[:, :, :3]


def write_dataset(dataset: Dataset, root: Path) -> None:
    root = Path(root)
    for split in (dataset.train, dataset.val):
        for name, seq in split.sequences.items():
            write_segment(root / SPLIT_DIRS[split.name], seq, split.tracks_of(name))
    write_sidecar(dataset, root, "waymo", extra_columns=("cls", *EXTRA_COLUMNS, *BOX2D_COLUMNS), keep_dontcare=True)


def read_dataset(root: Path, name: str = "waymo") -> Dataset:
    """Read ``training/`` as train and ``validation/`` as val (segment = sequence)."""
    root = Path(root)
    if not any((root / d / "camera_image").is_dir() for d in SPLIT_DIRS.values()):
        raise DataError(f"{root}: not a Waymo v2 root, expected {root}/training/camera_image/<segment>.parquet "
                        f"(and camera_box, camera_calibration, lidar_box, vehicle_pose)")
    sidecar = read_sidecar(root)
    result, files = {}, []
    for split_name, folder_name in SPLIT_DIRS.items():
        folder = root / folder_name
        names = sidecar["splits"][split_name] if sidecar else sorted(
            p.stem for p in (folder / "camera_image").glob("*.parquet"))
        sequences, tables = {}, []
        for seq_name in names:
            seq, tracks = read_segment(folder, seq_name, in_view_only=not sidecar)
            sequences[seq_name] = seq
            tables.append(tracks)
            files += [folder / c / f"{seq_name}.parquet" for c in ("lidar_box", "vehicle_pose", "camera_calibration")]
        tracks = sort_tracks(pd.concat(tables, ignore_index=True)) if tables else empty_tracks()
        split = Split(split_name, sequences, tracks)
        result[split_name] = apply_sidecar(split, root, split_name) if sidecar else split
    meta = dict(sidecar.get("meta", {})) if sidecar else {}
    meta.update(read_meta_frames(root))
    return Dataset(name=(sidecar or {}).get("name", name), train=result["train"], val=result["val"],
                   frame_rate=(sidecar or {}).get("frame_rate", 10.0),
                   data_hash=(sidecar or {}).get("data_hash") or hash_files(files), root=root, meta=meta)
