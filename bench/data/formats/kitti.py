"""KITTI tracking on disk: ``image_02/<seq>/<frame:06d>.png``, ``label_02/<seq>.txt``,
``calib/<seq>.txt`` and ``oxts/<seq>.txt`` under ``training/``; tracker results as label files with
an 18th score column.

Label line (KITTI tracking devkit): ``frame track_id type truncated occluded alpha x1 y1 x2 y2
h w l x y z rotation_y [score]``. Boxes are in the rectified reference camera (cam 0) frame and
image_02 is projected with P2, so ``Sequence.intrinsics`` is ``P2[:3, :3]`` and the small cam0->cam2
offset of real KITTI (``P2[:, 3]``) is kept in ``Sequence.meta["p2_offset"]``.

Poses come from the 30-field OXTS lines the way the KITTI devkit recovers them: Mercator
projection of lat/lon scaled by cos(lat) of the first frame, altitude, and R = Rz(yaw) Ry(pitch)
Rx(roll). As pykitti does, translations are taken relative to the first frame while rotations stay
absolute, so the world frame keeps z up (east-north-up) and the numbers stay small.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.formats.common import (
    apply_sidecar,
    check_image_sizes,
    hash_files,
    line_error,
    parse_floats,
    parse_int,
    read_meta_frames,
    read_sidecar,
    read_text,
    warn_lines,
    write_pngs,
    write_sidecar,
)
from bench.data.geometry import observation_angle
from bench.data.sequence import DataError, Dataset, Sequence, Split
from bench.data.tracks import BOX3D_COLUMNS, DONTCARE, empty_tracks, make_tracks, sort_tracks

# Every object type the KITTI tracking labels use. Names equal to ours stay as they are, and the
# others (Person_sitting, Tram, Misc) keep their KITTI name: the official evaluation treats them
# as neighbouring classes to ignore, so they must not be folded into Pedestrian or Car.
KITTI_CLASSES = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc", DONTCARE)
LABEL_FIELDS = ("frame", "track_id", "type", "truncated", "occluded", "alpha", "x1", "y1", "x2", "y2",
                "h", "w", "l", "x", "y", "z", "rotation_y", "score")
FRAME_RATE = 10.0
EARTH_RADIUS = 6378137.0  # metres, as the KITTI devkit's convertOxtsToPose
# Where exported synthetic drives start (Karlsruhe, like KITTI); any point works for round trips.
ORIGIN_LAT, ORIGIN_LON, ORIGIN_ALT = 49.011212, 8.422885, 112.0
OXTS_FIELDS = ("lat", "lon", "alt", "roll", "pitch", "yaw", "vn", "ve", "vf", "vl", "vu", "ax", "ay", "az",
               "af", "al", "au", "wx", "wy", "wz", "wf", "wl", "wu", "pos_accuracy", "vel_accuracy",
               "navstat", "numsats", "posmode", "velmode", "orimode")
# The validation split of Hu et al. (2019) used by QD-3DT and others; the rest of training/ is train.
KITTI_VAL_SEQUENCES = ("0001", "0006", "0008", "0010", "0012", "0013", "0014", "0015", "0016", "0018", "0019")

# Fixed sensor extrinsics for exported synthetic drives (KITTI-like: velodyne x forward, z up;
# camera x right, y down, z forward; IMU 0.8 m behind and 0.9 m below the velodyne).
VELO_TO_CAM = np.array([[0, -1, 0, 0], [0, 0, -1, -0.08], [1, 0, 0, -0.27], [0, 0, 0, 1]], dtype=np.float64)
IMU_TO_VELO = np.array([[1, 0, 0, 0.81], [0, 1, 0, -0.32], [0, 0, 1, -0.8], [0, 0, 0, 1]], dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Labels


def kitti_type(name: str) -> str | None:
    """A label file's type -> our KITTI class name, as the official readers accept it, or None if unknown.

    TrackEval lower-cases every type before looking it up, so ``car`` is ``Car``; ``Person`` is TrackEval's
    name for ``Person_sitting`` (its copy of the KITTI ground truth uses it) and reads as that class.
    """
    return _TYPE_BY_LOWER.get(name.lower())


_TYPE_BY_LOWER = {c.lower(): c for c in KITTI_CLASSES} | {"person": "Person_sitting"}


def read_labels(path: Path, seq: str | None = None, *, unique_ids: bool = True) -> pd.DataFrame:
    """Parse a label_02 or results file into a track table (DontCare rows have NaN 3D columns).

    Read as the official tools (TrackEval's Kitti2DBox, the KITTI devkit) read it: types in any case,
    ``truncated`` and ``occluded`` cast to int (an object-style 0.3 truncation is level 0), rows with a
    negative track id skipped (a warning names the line). Raises DataError naming ``path:line`` for a wrong
    column count, text/NaN/inf numbers, an unknown type, a non-positive 3D size, an inverted 2D box or a
    duplicate track id in a frame.

    ``unique_ids=False`` (``bench eval``): one track id may appear in two classes of a frame, since the
    official evaluation scores each class on its own; only a repeat within one class is refused.
    """
    path = Path(path)
    seq = seq if seq is not None else path.stem
    text = read_text(path, "KITTI label file")
    rows: list[tuple] = []
    seen: dict[tuple, int] = {}
    negative_ids: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) not in (17, 18):
            raise line_error(path, number, f"{len(fields)} columns, expected 17 (labels) or 18 (results with "
                                           f"score): {' '.join(LABEL_FIELDS)}")
        frame = parse_int(fields[0], path, number, "frame")
        track_id = parse_int(fields[1], path, number, "track_id")
        cls = kitti_type(fields[2])
        if cls is None:
            raise line_error(path, number, f"type {fields[2]!r} is not a KITTI type, expected one of "
                                           f"{KITTI_CLASSES} (any case)")
        truncated, occluded = parse_floats(fields[3:5], path, number, ["truncated", "occluded"])
        if max(abs(truncated), abs(occluded)) > 1000:
            raise line_error(path, number, f"truncated {fields[3]} / occluded {fields[4]}, expected levels "
                                           "(-1 for DontCare, else 0..3; an object-style fraction 0..1)")
        values = parse_floats(fields[5:], path, number, LABEL_FIELDS[5:len(fields)])
        _alpha, x1, y1, x2, y2, h, w, l, x, y, z, ry = values[:12]
        score = values[12] if len(values) == 13 else 1.0
        if frame < 0:
            raise line_error(path, number, f"frame is {frame}, expected >= 0")
        if x2 < x1 or y2 < y1:
            raise line_error(path, number, f"2D box ({x1}, {y1}, {x2}, {y2}) needs x2 >= x1 and y2 >= y1")
        if cls != DONTCARE and track_id < 0:
            negative_ids.append(number)  # TrackEval and the devkit drop these rows
            continue
        # KITTI marks 'no 3D box' (DontCare) with sizes -1 and location -1000.
        no_3d = cls == DONTCARE or (h == w == l == -1 and x == y == z == -1000)
        if not no_3d and min(h, w, l) <= 0:
            raise line_error(path, number, f"3D size h w l = {h} {w} {l}, expected all > 0 (or -1 -1 -1 with "
                                           "location -1000 -1000 -1000 for no 3D box)")
        if cls != DONTCARE:
            key = (frame, track_id) if unique_ids else (frame, track_id, _same_class(cls))
            if key in seen:
                raise line_error(path, number, f"duplicate (frame {frame}, track_id {track_id}"
                                               f"{'' if unique_ids else ', ' + cls}); first on line {seen[key]}")
            seen[key] = number
        box3d = (np.nan,) * 7 if no_3d else (x, y, z, h, w, l, ry)
        # The official tools cast both to int: an object-style truncation of 0.3 is level 0, 1.0 is level 1.
        rows.append((seq, frame, -1 if cls == DONTCARE else track_id, cls, score, x1, y1, x2, y2, *box3d,
                     int(occluded), int(truncated)))
    warn_lines(path, negative_ids, "negative track_id: row skipped, as TrackEval and the KITTI devkit do")
    if not rows:
        return empty_tracks()
    columns = ["seq", "frame", "track_id", "cls", "score", "x1", "y1", "x2", "y2", *BOX3D_COLUMNS,
               "occlusion", "truncation"]
    return make_tracks(pd.DataFrame(rows, columns=columns), source=str(path), unique_ids=unique_ids)


def _same_class(cls: str) -> str:
    """Classes the evaluation treats as one (a person sitting under either of its names)."""
    return "Person_sitting" if cls.lower() in ("person", "person_sitting") else cls


def format_labels(tracks: pd.DataFrame, with_score: bool = False) -> str:
    """KITTI label lines for one sequence's rows (results files add the score column)."""
    if tracks.empty:
        return ""
    t = sort_tracks(tracks)
    box = t[list(BOX3D_COLUMNS)].to_numpy(dtype=float)
    has3d = np.isfinite(box).all(axis=1)
    alpha = np.where(has3d, observation_angle(np.nan_to_num(box, nan=1.0)), -10.0)
    # The 'no 3D box' sentinels of the KITTI devkit.
    box = np.where(has3d[:, None], box, np.array([-1000, -1000, -1000, -1, -1, -1, -10.0]))
    lines = []
    for i, row in enumerate(t.itertuples(index=False)):
        x, y, z, h, w, l, ry = box[i]
        fields = [f"{row.frame}", f"{row.track_id}", row.cls, f"{row.truncation}", f"{row.occlusion}",
                  f"{alpha[i]:.6f}", f"{row.x1:.6f}", f"{row.y1:.6f}", f"{row.x2:.6f}", f"{row.y2:.6f}",
                  f"{h:.6f}", f"{w:.6f}", f"{l:.6f}", f"{x:.6f}", f"{y:.6f}", f"{z:.6f}", f"{ry:.6f}"]
        if with_score:
            fields.append(f"{row.score:.6f}")
        lines.append(" ".join(fields))
    return "\n".join(lines) + "\n"


def write_labels(path: Path, tracks: pd.DataFrame, with_score: bool = False) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_labels(tracks, with_score))


def write_results(folder: Path, tracks: pd.DataFrame, sequences: list[str] | None = None) -> None:
    """Tracker output as the KITTI devkit expects: one ``<seq>.txt`` per sequence, 18 columns."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for seq in sequences if sequences is not None else sorted(set(tracks["seq"])):
        write_labels(folder / f"{seq}.txt", tracks[tracks["seq"] == seq], with_score=True)


def read_results(folder: Path, sequences: list[str] | None = None) -> pd.DataFrame:
    """Read ``<seq>.txt`` results files (a missing file for a listed sequence is an error)."""
    folder = Path(folder)
    names = sequences if sequences is not None else sorted(p.stem for p in folder.glob("*.txt"))
    return sort_tracks(pd.concat([read_labels(folder / f"{s}.txt", s) for s in names], ignore_index=True)) \
        if names else empty_tracks()


# ----------------------------------------------------------------------------------------------
# Calibration


def read_calib(path: Path) -> dict[str, np.ndarray]:
    """P0..P3 (3x4), R_rect (3x3), Tr_velo_cam and Tr_imu_velo (3x4) of a tracking calib file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: calibration file is missing")
    sizes = {"P0": 12, "P1": 12, "P2": 12, "P3": 12, "R_rect": 9, "Tr_velo_cam": 12, "Tr_imu_velo": 12}
    calib = {}
    for number, raw in enumerate(read_text(path, "KITTI calibration file").splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        key = fields[0].rstrip(":")
        # The object benchmark spells these R0_rect / Tr_velo_to_cam / Tr_imu_to_velo.
        key = {"R0_rect": "R_rect", "Tr_velo_to_cam": "Tr_velo_cam", "Tr_imu_to_velo": "Tr_imu_velo"}.get(key, key)
        if key not in sizes:
            continue
        if len(fields) - 1 != sizes[key]:
            raise line_error(path, number, f"{key} has {len(fields) - 1} numbers, expected {sizes[key]}")
        values = np.array(parse_floats(fields[1:], path, number, [key] * sizes[key]))
        calib[key] = values.reshape(3, 3) if key == "R_rect" else values.reshape(3, 4)
    if "P2" not in calib:
        raise DataError(f"{path}: no P2 line, expected 'P2: <12 numbers>'")
    return calib


def write_calib(path: Path, intrinsics: np.ndarray) -> None:
    """A tracking calib file for a camera with no cam0->cam2 offset (the synthetic world)."""
    p = np.zeros((3, 4))
    p[:, :3] = intrinsics
    matrices = {"P0:": p, "P1:": p, "P2:": p, "P3:": p, "R_rect": np.eye(3), "Tr_velo_cam": VELO_TO_CAM[:3],
                "Tr_imu_velo": IMU_TO_VELO[:3]}
    path.write_text("".join(f"{k} {' '.join(f'{v:.12e}' for v in m.ravel())}\n" for k, m in matrices.items()))


def _homogeneous(m: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[: m.shape[0], : m.shape[1]] = m
    return out


def imu_to_rectcam(calib: dict[str, np.ndarray]) -> np.ndarray:
    """4x4 transform IMU -> rectified camera 0: R_rect @ Tr_velo_cam @ Tr_imu_velo."""
    rect = _homogeneous(calib.get("R_rect", np.eye(3)))
    velo_cam = _homogeneous(calib.get("Tr_velo_cam", VELO_TO_CAM[:3]))
    imu_velo = _homogeneous(calib.get("Tr_imu_velo", IMU_TO_VELO[:3]))
    return rect @ velo_cam @ imu_velo


# ----------------------------------------------------------------------------------------------
# OXTS poses


def _rotation(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    rx = np.stack([np.ones_like(cr), 0 * cr, 0 * cr, 0 * cr, cr, -sr, 0 * cr, sr, cr], -1).reshape(-1, 3, 3)
    ry = np.stack([cp, 0 * cp, sp, 0 * cp, np.ones_like(cp), 0 * cp, -sp, 0 * cp, cp], -1).reshape(-1, 3, 3)
    rz = np.stack([cy, -sy, 0 * cy, sy, cy, 0 * cy, 0 * cy, 0 * cy, np.ones_like(cy)], -1).reshape(-1, 3, 3)
    return rz @ ry @ rx


def read_oxts(path: Path) -> np.ndarray:
    """The 30 OXTS fields per frame, ``(T, 30)``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: OXTS file is missing")
    rows = []
    for number, raw in enumerate(read_text(path, "KITTI OXTS file").splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != len(OXTS_FIELDS):
            raise line_error(path, number, f"{len(fields)} fields, expected {len(OXTS_FIELDS)} OXTS fields "
                                           f"({' '.join(OXTS_FIELDS[:6])} ...)")
        rows.append(parse_floats(fields, path, number, OXTS_FIELDS))
    return np.array(rows, dtype=np.float64).reshape(-1, len(OXTS_FIELDS))


def oxts_to_imu_poses(oxts: np.ndarray) -> np.ndarray:
    """IMU-to-world ``(T, 4, 4)`` as the KITTI devkit (Mercator, scale from the first latitude)."""
    lat, lon, alt, roll, pitch, yaw = oxts[:, :6].T
    scale = np.cos(lat[0] * np.pi / 180.0)
    tx = scale * lon * np.pi * EARTH_RADIUS / 180.0
    ty = scale * EARTH_RADIUS * np.log(np.tan((90.0 + lat) * np.pi / 360.0))
    poses = np.repeat(np.eye(4)[None], len(oxts), axis=0)
    poses[:, :3, :3] = _rotation(roll, pitch, yaw)
    t = np.stack([tx, ty, alt], axis=-1)
    poses[:, :3, 3] = t - t[0]
    return poses


def imu_poses_to_oxts(imu_to_world: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`oxts_to_imu_poses`: lat/lon/alt and roll/pitch/yaw, the first frame at ORIGIN.

    Velocities are finite differences (the rest of the 30 fields are plausible constants).
    """
    r = imu_to_world[:, :3, :3]
    t = imu_to_world[:, :3, 3] - imu_to_world[0, :3, 3]
    roll = np.arctan2(r[:, 2, 1], r[:, 2, 2])
    pitch = -np.arcsin(np.clip(r[:, 2, 0], -1, 1))
    yaw = np.arctan2(r[:, 1, 0], r[:, 0, 0])
    scale = np.cos(ORIGIN_LAT * np.pi / 180.0)
    mx = scale * ORIGIN_LON * np.pi * EARTH_RADIUS / 180.0 + t[:, 0]
    my = scale * EARTH_RADIUS * np.log(np.tan((90.0 + ORIGIN_LAT) * np.pi / 360.0)) + t[:, 1]
    lon = mx * 180.0 / (np.pi * EARTH_RADIUS * scale)
    lat = 360.0 / np.pi * np.arctan(np.exp(my / (scale * EARTH_RADIUS))) - 90.0
    alt = ORIGIN_ALT + t[:, 2]
    n = len(t)
    dt = np.gradient(timestamps) if timestamps is not None and n > 1 else np.full(n, 1.0 / FRAME_RATE)
    vel = np.gradient(t, axis=0) / dt[:, None] if n > 1 else np.zeros((n, 3))
    forward = np.einsum("nij,nj->ni", np.transpose(r, (0, 2, 1)), vel)  # velocity in the IMU frame
    out = np.zeros((n, len(OXTS_FIELDS)))
    out[:, :6] = np.stack([lat, lon, alt, roll, pitch, yaw], axis=-1)
    out[:, 6], out[:, 7] = vel[:, 1], vel[:, 0]  # vn, ve
    out[:, 8], out[:, 9], out[:, 10] = forward[:, 0], forward[:, 1], forward[:, 2]  # vf, vl, vu
    out[:, 13] = out[:, 16] = 9.81  # az, au: gravity
    out[:, 23:] = [0.05, 0.02, 4, 10, 5, 5, 6]  # accuracies, navstat, numsats, modes
    return out


def write_oxts(path: Path, oxts: np.ndarray) -> None:
    # 17 significant digits so that lat/lon (and hence poses) survive the text round trip exactly.
    lines = (" ".join(f"{v:.17g}" if i < 26 else f"{int(v)}" for i, v in enumerate(row)) for row in oxts)
    path.write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------
# Whole sequences and datasets


def write_sequence(root: Path, seq: Sequence, tracks: pd.DataFrame) -> None:
    """Write one sequence (images, labels, calib, oxts) under a KITTI ``training/`` root."""
    root = Path(root)
    for sub in ("image_02", "label_02", "calib", "oxts"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    if not np.allclose(seq.intrinsics, seq.intrinsics[0]):
        raise DataError(f"sequence {seq.name}: KITTI stores one calibration per sequence, but intrinsics vary")
    expected = np.arange(seq.num_frames)
    if not np.array_equal(seq.frame_ids, expected):
        raise DataError(f"sequence {seq.name}: KITTI frames are 0..T-1, got frame ids {seq.frame_ids[:5]}...")
    image_dir = root / "image_02" / seq.name
    image_dir.mkdir(exist_ok=True)
    write_pngs([image_dir / f"{i:06d}.png" for i in range(seq.num_frames)], seq.image)
    write_labels(root / "label_02" / f"{seq.name}.txt", tracks)
    write_calib(root / "calib" / f"{seq.name}.txt", seq.intrinsics[0])
    imu_to_world = seq.cam_to_world @ imu_to_rectcam({})
    write_oxts(root / "oxts" / f"{seq.name}.txt", imu_poses_to_oxts(imu_to_world, seq.timestamps))


def read_sequence(root: Path, name: str, check_sizes: bool = True) -> tuple[Sequence, pd.DataFrame]:
    """Read one sequence of a KITTI ``training/`` root: the Sequence (image paths) and its labels."""
    root = Path(root)
    image_dir = root / "image_02" / name
    if not image_dir.is_dir():
        raise DataError(f"{image_dir}: image folder of sequence {name!r} is missing")
    images = sorted(image_dir.glob("*.png"))
    frames = np.array([int(p.stem) for p in images if p.stem.isdecimal() and p.stem.isascii()], dtype=np.int64)
    if len(frames) == 0:
        raise DataError(f"{image_dir}: no <frame:06d>.png images")
    if not np.array_equal(frames, np.arange(len(frames))):
        gap = int(np.flatnonzero(frames != np.arange(len(frames)))[0])
        raise DataError(f"{image_dir}/{gap:06d}.png: image is missing (frames must run 0..{frames[-1]})")
    size = check_image_sizes(images) if check_sizes else check_image_sizes(images[:1])
    calib = read_calib(root / "calib" / f"{name}.txt")
    label_path = root / "label_02" / f"{name}.txt"
    tracks = read_labels(label_path, name) if label_path.exists() else empty_tracks()
    if len(tracks) and tracks["frame"].max() >= len(frames):
        bad = int(tracks["frame"].max())
        raise DataError(f"{label_path}: labels for frame {bad}, but {image_dir} has images for 0..{len(frames) - 1}")
    oxts_path = root / "oxts" / f"{name}.txt"
    if oxts_path.exists():
        oxts = read_oxts(oxts_path)
        if len(oxts) < len(frames):
            raise DataError(f"{oxts_path}: {len(oxts)} lines, expected one per image ({len(frames)})")
        imu_to_world = oxts_to_imu_poses(oxts[: len(frames)])
        cam_to_world = imu_to_world @ np.linalg.inv(imu_to_rectcam(calib))
    else:
        cam_to_world = np.repeat(np.eye(4)[None], len(frames), axis=0)
    p2 = calib["P2"]
    k = p2[:, :3]
    sequence = Sequence(
        name=name, images=images, intrinsics=k, cam_to_world=cam_to_world,
        timestamps=frames / FRAME_RATE, image_size=size, frame_ids=frames,
        meta={"p2_offset": np.linalg.solve(k, p2[:, 3]).tolist(), "calib": str(root / "calib" / f"{name}.txt")},
    )
    return sequence, tracks


def write_dataset(dataset: Dataset, root: Path) -> None:
    """Export a dataset as a KITTI tracking root (all sequences under ``training/``) plus the sidecar."""
    root = Path(root)
    for split in (dataset.train, dataset.val):
        for name, seq in split.sequences.items():
            write_sequence(root / "training", seq, split.tracks_of(name))
    write_sidecar(dataset, root, "kitti")


def read_dataset(root: Path, name: str = "kitti", check_sizes: bool = True) -> Dataset:
    """Read a KITTI tracking root. Without a ``bench.json`` sidecar the split is Hu et al.'s."""
    root = Path(root)
    training = root / "training"
    if not (training / "image_02").is_dir():
        raise DataError(f"{root}: not a KITTI tracking root, expected {training}/image_02, label_02, calib, oxts")
    sidecar = read_sidecar(root)
    available = sorted(p.name for p in (training / "image_02").iterdir() if p.is_dir())
    if sidecar:
        splits = sidecar["splits"]
        missing = sorted(set(splits["train"] + splits["val"]) - set(available))
        if missing:
            raise DataError(f"{root / 'bench.json'}: lists sequences {missing[:5]} not in {training / 'image_02'}")
    else:
        val = [s for s in available if s in KITTI_VAL_SEQUENCES]
        splits = {"train": [s for s in available if s not in val], "val": val}
    result = {}
    label_files = []
    for split_name in ("train", "val"):
        sequences, tables = {}, []
        for seq_name in splits[split_name]:
            seq, tracks = read_sequence(training, seq_name, check_sizes)
            sequences[seq_name] = seq
            tables.append(tracks)
            label_files += [p for p in (training / "label_02" / f"{seq_name}.txt",
                                        training / "calib" / f"{seq_name}.txt") if p.exists()]
        tracks = sort_tracks(pd.concat(tables, ignore_index=True)) if tables else empty_tracks()
        split = Split(split_name, sequences, tracks)
        result[split_name] = apply_sidecar(split, root, split_name) if sidecar else split
    data_hash = (sidecar or {}).get("data_hash") or hash_files(label_files)
    meta = dict(sidecar.get("meta", {})) if sidecar else {}
    meta.update(read_meta_frames(root))
    return Dataset(name=(sidecar or {}).get("name", name), train=result["train"], val=result["val"],
                   frame_rate=(sidecar or {}).get("frame_rate", FRAME_RATE), data_hash=data_hash,
                   root=root, meta=meta)
