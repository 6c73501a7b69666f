"""MOTChallenge on disk: ``<split>/<SEQ>/img1/000001.jpg``, ``gt/gt.txt``, ``det/det.txt``, ``seqinfo.ini``.

``gt.txt`` lines are ``frame, id, bb_left, bb_top, bb_width, bb_height, consider, class,
visibility`` with 1-based frames and ids; ``det.txt`` lines are ``frame, -1, left, top, w, h,
score[, x, y, z]``; tracker results are ``frame, id, left, top, w, h, score, -1, -1, -1``.

In the track table frames and ids are 0-based (``frame = mot_frame - 1``, ``track_id = id - 1``)
like every other dataset; ``cls`` is the MOT class name, with pedestrian and car mapped to our
``Pedestrian`` and ``Car``; the MOT17 distractor classes (person_on_vehicle, static_person,
distractor, reflection) keep their names so the metric can drop what they match, as TrackEval
does; ``score`` holds the ``consider`` flag (0 = ignored by the evaluation); ``visibility`` is the
visible fraction binned like nuScenes (1: <40 %, 2: 40-60 %, 3: 60-80 %, 4: >80 %). A row with class
13 (crowd) is an ignore region and becomes a ``DontCare`` row.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.formats.common import (
    EXTRA_COLUMNS,
    apply_sidecar,
    check_image_sizes,
    hash_files,
    line_error,
    parse_floats,
    parse_int,
    read_camera,
    read_meta_frames,
    read_sidecar,
    read_text,
    write_sidecar,
)
from bench.data.sequence import DataError, Dataset, Sequence, Split
from bench.data.tracks import BOX3D_COLUMNS, DONTCARE, empty_tracks, make_tracks, sort_tracks

# MOTChallenge class ids as TrackEval's MotChallenge2DBox names them.
MOT_CLASSES = {1: "pedestrian", 2: "person_on_vehicle", 3: "car", 4: "bicycle", 5: "motorbike",
               6: "non_mot_vehicle", 7: "static_person", 8: "distractor", 9: "occluder",
               10: "occluder_on_ground", 11: "occluder_full", 12: "reflection", 13: "crowd"}
MOT_DISTRACTOR_CLASSES = ("person_on_vehicle", "static_person", "distractor", "reflection")
OUR_NAMES = {"pedestrian": "Pedestrian", "car": "Car", "crowd": DONTCARE}
# Writing: our classes MOT has no id for go to the nearest MOT class (the sidecar keeps the exact name).
MOT_IDS = {OUR_NAMES.get(name, name): cid for cid, name in MOT_CLASSES.items()} | {"Van": 3, "Truck": 3,
                                                                                    "Cyclist": 4}
GT_FIELDS = ("frame", "id", "bb_left", "bb_top", "bb_width", "bb_height", "consider", "class", "visibility")
DET_FIELDS = ("frame", "id", "bb_left", "bb_top", "bb_width", "bb_height", "score", "x", "y", "z")
# Our sequence-level split of MOT17 train (the test set has no public ground truth).
MOT17_VAL_NUMBERS = ("10", "11", "13")
VISIBILITY_BIN_EDGES = (0.4, 0.6, 0.8)
VISIBILITY_BIN_VALUES = {0: 1.0, 1: 0.2, 2: 0.5, 3: 0.7, 4: 0.9}  # what a bin writes back as a fraction


def visibility_bin(fraction: np.ndarray) -> np.ndarray:
    return 1 + np.searchsorted(VISIBILITY_BIN_EDGES, np.asarray(fraction, dtype=float), side="right")


def _read_rows(path: Path, fields: tuple[str, ...], min_columns: int) -> list[tuple[int, list[float]]]:
    text = read_text(path, "MOTChallenge text file")
    rows = []
    for number, raw in enumerate(text.splitlines(), start=1):
        parts = [p.strip() for p in raw.split(",")] if "," in raw else raw.split()
        if not parts or parts == [""]:
            continue
        if not min_columns <= len(parts) <= len(fields):
            raise line_error(path, number, f"{len(parts)} columns, expected {min_columns} to {len(fields)}: "
                                           f"{', '.join(fields)}")
        values = parse_floats(parts, path, number, fields[: len(parts)])
        if len(values) >= 6 and not (np.isfinite(values[2] + values[4]) and np.isfinite(values[3] + values[5])):
            raise line_error(path, number, "bb_left + bb_width or bb_top + bb_height overflows; expected pixels")
        rows.append((number, values))
    return rows


def read_gt(path: Path, seq: str) -> pd.DataFrame:
    """Parse a ``gt.txt`` (or a tracker's results file) into a track table.

    A 10-column line is the results / MOT15 layout (``..., score, x, y, z``): its last three
    columns are world coordinates (-1 when unknown), not class and visibility, so the row is a
    pedestrian with unknown visibility.
    """
    path = Path(path)
    out: list[tuple] = []
    seen: dict[tuple[int, int], int] = {}
    for number, values in _read_rows(path, (*GT_FIELDS, "z"), 6):
        if len(values) == 10:
            values = [*values[:7], 1.0, -1.0]
        frame, mot_id = parse_int(f"{values[0]:g}", path, number, "frame"), parse_int(f"{values[1]:g}", path,
                                                                                       number, "id")
        left, top, width, height = values[2:6]
        if frame < 1:
            raise line_error(path, number, f"frame {frame}, expected >= 1 (MOTChallenge frames are 1-based)")
        if width < 0 or height < 0:
            raise line_error(path, number, f"box size {width} x {height}, expected width and height >= 0")
        consider = values[6] if len(values) > 6 else 1.0
        class_id = int(values[7]) if len(values) > 7 and values[7] > 0 else 1
        if class_id not in MOT_CLASSES:
            raise line_error(path, number, f"class {class_id}, expected one of {sorted(MOT_CLASSES)}")
        cls = OUR_NAMES.get(MOT_CLASSES[class_id], MOT_CLASSES[class_id])
        fraction = values[8] if len(values) > 8 and values[8] >= 0 else 1.0
        if cls != DONTCARE:
            if (frame, mot_id) in seen:
                raise line_error(path, number, f"duplicate (frame {frame}, id {mot_id}); first on line "
                                               f"{seen[frame, mot_id]}")
            seen[frame, mot_id] = number
        out.append((seq, frame - 1, -1 if cls == DONTCARE else mot_id - 1, cls, consider,
                    left, top, left + width, top + height, fraction))
    if not out:
        return empty_tracks()
    df = pd.DataFrame(out, columns=["seq", "frame", "track_id", "cls", "score", "x1", "y1", "x2", "y2", "fraction"])
    df["visibility"] = visibility_bin(df.pop("fraction"))
    # KITTI-style occlusion level from the same fraction, so budgets and filters work on MOT too.
    df["occlusion"] = np.where(df["visibility"] >= 4, 0, np.where(df["visibility"] >= 2, 1, 2))
    # Ignore regions carry no visibility or score, as KITTI's DontCare rows.
    dontcare = df["cls"] == DONTCARE
    df["truncation"] = 0
    df.loc[dontcare, ["occlusion", "truncation", "visibility", "score"]] = [-1, -1, 0, 1.0]
    return make_tracks(df, source=str(path))


def read_tracker_file(path: Path, seq: str, with_ids: bool = True, num_frames: int | None = None) -> pd.DataFrame:
    """Parse tracker results (``frame, id, left, top, w, h, score[, x, y, z]``) or, with
    ``with_ids=False``, a public ``det.txt`` (ids become -1). ``score`` is the confidence.
    With ``num_frames`` (the sequence's seqLength) a frame beyond it is refused on its line."""
    path = Path(path)
    out: list[tuple] = []
    seen: dict[tuple[int, int], int] = {}
    for number, values in _read_rows(path, DET_FIELDS, 7):
        frame = parse_int(f"{values[0]:g}", path, number, "frame")
        if frame < 1:
            raise line_error(path, number, f"frame {frame}, expected >= 1 (MOTChallenge frames are 1-based)")
        if num_frames is not None and frame > num_frames:
            raise line_error(path, number, f"frame {frame}, but seqLength is {num_frames}")
        if values[4] < 0 or values[5] < 0:
            raise line_error(path, number, f"box size {values[4]} x {values[5]}, expected width and height >= 0")
        track_id = parse_int(f"{values[1]:g}", path, number, "id") - 1 if with_ids else len(out)
        if with_ids:
            if (frame, track_id) in seen:
                raise line_error(path, number, f"duplicate (frame {frame}, id {track_id + 1}); first on line "
                                               f"{seen[frame, track_id]}")
            seen[frame, track_id] = number
        out.append((seq, frame - 1, track_id, "Pedestrian", values[6], values[2], values[3],
                    values[2] + values[4], values[3] + values[5]))
    if not out:
        return empty_tracks()
    df = make_tracks(pd.DataFrame(out, columns=["seq", "frame", "track_id", "cls", "score", "x1", "y1", "x2", "y2"]),
                     source=str(path))
    # Detections have no identities: validated with placeholder ids above, then all marked -1.
    return df if with_ids else df.assign(track_id=-1)


def read_det(path: Path, seq: str, num_frames: int | None = None) -> pd.DataFrame:
    """Parse a public ``det.txt`` (track_id -1, score = detector confidence). NaN or infinite numbers,
    negative sizes and frames outside 1..``num_frames`` are refused with ``file:line``."""
    return read_tracker_file(path, seq, with_ids=False, num_frames=num_frames)


def format_gt(tracks: pd.DataFrame) -> str:
    """``gt.txt`` lines (DontCare rows as class-13 crowd regions with consider 0)."""
    lines = []
    for row in sort_tracks(tracks).itertuples(index=False):
        dontcare = row.cls == DONTCARE
        class_id = MOT_IDS.get(row.cls, 1)
        consider = 0 if dontcare else row.score
        fraction = VISIBILITY_BIN_VALUES.get(int(row.visibility), 1.0)
        lines.append(f"{row.frame + 1},{row.track_id + 1},{row.x1:.6f},{row.y1:.6f},{row.x2 - row.x1:.6f},"
                     f"{row.y2 - row.y1:.6f},{consider:g},{class_id},{fraction:g}")
    return "\n".join(lines) + ("\n" if lines else "")


def format_results(tracks: pd.DataFrame) -> str:
    """Tracker results / detections: ``frame, id, left, top, w, h, score, -1, -1, -1``."""
    lines = [f"{r.frame + 1},{r.track_id + 1 if r.track_id >= 0 else -1},{r.x1:.6f},{r.y1:.6f},{r.x2 - r.x1:.6f},"
             f"{r.y2 - r.y1:.6f},{r.score:.6f},-1,-1,-1"
             for r in sort_tracks(tracks).itertuples(index=False)]
    return "\n".join(lines) + ("\n" if lines else "")


def write_results(folder: Path, tracks: pd.DataFrame) -> None:
    """One ``<SEQ>.txt`` per sequence, as TrackEval's MOTChallenge tracker folder expects."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for seq in sorted(set(tracks["seq"])):
        (folder / f"{seq}.txt").write_text(format_results(tracks[tracks["seq"] == seq]))


def read_results(folder: Path, sequences: list[str] | None = None) -> pd.DataFrame:
    folder = Path(folder)
    names = sequences if sequences is not None else sorted(p.stem for p in folder.glob("*.txt"))
    tables = [read_tracker_file(folder / f"{s}.txt", s) for s in names]
    return sort_tracks(pd.concat(tables, ignore_index=True)) if tables else empty_tracks()


# More frames than this in a seqinfo.ini is a typo, not a video (MOT17's longest has 1,050).
MAX_SEQ_LENGTH = 1_000_000


def read_seqinfo(path: Path) -> dict[str, str]:
    """The ``[Sequence]`` keys of a seqinfo.ini, with seqLength, imWidth, imHeight (positive integers) and
    frameRate (a positive number) checked, so callers may convert them without a second thought."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_text(path, "seqinfo.ini"), source=str(path))
    except configparser.Error as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{path}: not a valid ini file ({first})") from None
    if "Sequence" not in parser:
        raise DataError(f"{path}: no [Sequence] section")
    info = dict(parser["Sequence"])
    for key in ("name", "imdir", "framerate", "seqlength", "imwidth", "imheight", "imext"):
        if key not in info:
            raise DataError(f"{path}: [Sequence] has no {key} (keys are case-insensitive)")
    for key in ("name", "imdir"):  # path parts: one line, no separators (an ini continuation line adds one)
        if not info[key] or any(c in info[key] for c in "\n\r\0/\\"):
            raise DataError(f"{path}: {key} is {info[key]!r}, expected a plain folder name")
    if not re.fullmatch(r"\.[A-Za-z0-9]{1,8}", info["imext"]):
        raise DataError(f"{path}: imExt is {info['imext']!r}, expected an extension such as '.jpg'")
    for key, limit in (("seqlength", MAX_SEQ_LENGTH), ("imwidth", 100_000), ("imheight", 100_000)):
        if not info[key].strip().isdecimal() or not 0 < int(info[key]) <= limit:
            raise DataError(f"{path}: {key} is {info[key]!r}, expected a whole number from 1 to {limit}")
    try:
        rate = float(info["framerate"])
    except ValueError:
        rate = float("nan")
    if not (np.isfinite(rate) and rate > 0):
        raise DataError(f"{path}: frameRate is {info['framerate']!r}, expected a positive number")
    return info


def write_sequence(root: Path, seq: Sequence, tracks: pd.DataFrame, frame_rate: float,
                   detections: pd.DataFrame | None = None, image_ext: str = ".jpg") -> None:
    """Write one sequence folder (images, gt, det, seqinfo.ini)."""
    import imageio.v3 as iio

    folder = Path(root) / seq.name
    if not np.array_equal(seq.frame_ids, np.arange(seq.num_frames)):
        raise DataError(f"sequence {seq.name}: frame ids must run 0..T-1 to become MOT frames 1..T")
    (folder / "img1").mkdir(parents=True, exist_ok=True)
    (folder / "gt").mkdir(exist_ok=True)
    for i in range(seq.num_frames):
        path = folder / "img1" / f"{i + 1:06d}{image_ext}"
        if image_ext == ".jpg":
            iio.imwrite(path, seq.image(i), quality=95)
        else:
            iio.imwrite(path, seq.image(i))
    (folder / "gt" / "gt.txt").write_text(format_gt(tracks))
    if detections is not None:
        (folder / "det").mkdir(exist_ok=True)
        (folder / "det" / "det.txt").write_text(format_results(detections.assign(track_id=-1)))
    w, h = seq.image_size
    (folder / "seqinfo.ini").write_text(
        f"[Sequence]\nname={seq.name}\nimDir=img1\nframeRate={frame_rate:g}\nseqLength={seq.num_frames}\n"
        f"imWidth={w}\nimHeight={h}\nimExt={image_ext}\n")


def read_sequence(folder: Path, check_sizes: bool = True) -> tuple[Sequence, pd.DataFrame, pd.DataFrame | None]:
    """One MOT sequence folder -> (Sequence with nominal intrinsics, GT table, public detections or None)."""
    folder = Path(folder)
    info = read_seqinfo(folder / "seqinfo.ini")
    name, n = info["name"], int(info["seqlength"])
    if name != folder.name:  # tables and splits key sequences by folder name; a different name would split them
        raise DataError(f"{folder / 'seqinfo.ini'}: name is {name!r}, expected the folder's name {folder.name!r}")
    size = (int(info["imwidth"]), int(info["imheight"]))
    images = [folder / info["imdir"] / f"{i:06d}{info['imext']}" for i in range(1, n + 1)]
    for path in images:
        if not path.exists():
            raise DataError(f"{path}: image is missing (seqinfo.ini says seqLength={n})")
    check_image_sizes(images if check_sizes else images[:1], size)
    gt_path = folder / "gt" / "gt.txt"
    tracks = read_gt(gt_path, name) if gt_path.exists() else empty_tracks()
    det_path = folder / "det" / "det.txt"
    detections = read_det(det_path, name, num_frames=n) if det_path.exists() else None
    for table, path in ((tracks, gt_path), (detections, det_path)):
        if table is not None and len(table) and table["frame"].max() >= n:
            raise DataError(f"{path}: rows for frame {table['frame'].max() + 1}, but seqLength is {n}")
    # MOTChallenge has no calibration: a nominal pinhole (focal = image width) and a static camera.
    w, h = size
    k = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], dtype=np.float64)
    seq = Sequence(name=name, images=images, intrinsics=k, cam_to_world=np.repeat(np.eye(4)[None], n, axis=0),
                   timestamps=np.arange(n) / float(info["framerate"]), image_size=size,
                   meta={"calibrated": False, "frame_rate": float(info["framerate"])})
    return seq, tracks, detections


def write_dataset(dataset: Dataset, root: Path) -> None:
    """Export under ``<root>/train/<SEQ>/`` (both splits; ``bench.json`` records which is which)."""
    root = Path(root)
    detections = dataset.meta.get("public_detections")
    for split in (dataset.train, dataset.val):
        for name, seq in split.sequences.items():
            dets = None
            if isinstance(detections, dict):  # the synthetic world keeps one table per split
                table = detections.get(split.name)
                dets = table[table["seq"] == name] if table is not None else None
            elif isinstance(detections, pd.DataFrame) and "seq" in detections.columns:
                dets = detections[detections["seq"] == name]
            write_sequence(root / "train", seq, split.tracks_of(name), dataset.frame_rate, dets)
    # MOT has no 3D boxes, fewer classes and coarse visibility; the sidecar keeps them exactly.
    write_sidecar(dataset, root, "mot", extra_columns=("cls", *EXTRA_COLUMNS, *BOX3D_COLUMNS))


def read_dataset(root: Path, name: str = "mot17", check_sizes: bool = True) -> Dataset:
    root = Path(root)
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DataError(f"{root}: not a MOTChallenge root, expected {train_dir}/<SEQ>/seqinfo.ini")
    sidecar = read_sidecar(root)
    available = sorted(p.name for p in train_dir.iterdir() if (p / "seqinfo.ini").exists())
    if sidecar:
        splits = sidecar["splits"]
    else:
        # MOT17 ships every sequence three times (DPM/FRCNN/SDP detections, same GT); keep one copy.
        chosen = [s for s in available if not s.startswith("MOT17") or s.endswith("FRCNN")]
        val = [s for s in chosen if s.split("-")[1:2] and s.split("-")[1] in MOT17_VAL_NUMBERS]
        splits = {"train": [s for s in chosen if s not in val], "val": val}
    result: dict[str, Split] = {}
    dets_of: dict[str, list[pd.DataFrame]] = {}
    hashed: list[Path] = []
    for split_name in ("train", "val"):
        sequences, tables = {}, []
        for seq_name in splits[split_name]:
            if seq_name not in available:
                raise DataError(f"{train_dir / seq_name}: sequence folder (with seqinfo.ini) is missing")
            seq, tracks, dets = read_sequence(train_dir / seq_name, check_sizes)
            camera = read_camera(root, split_name, seq_name) if sidecar else None
            if camera is not None:
                seq.intrinsics, seq.cam_to_world = camera["intrinsics"], camera["cam_to_world"]
                seq.timestamps = camera["timestamps"]
                seq.meta["calibrated"] = True
            sequences[seq_name] = seq
            tables.append(tracks)
            if dets is not None:
                dets_of.setdefault(split_name, []).append(dets)
            hashed += [p for p in (train_dir / seq_name / "gt" / "gt.txt", train_dir / seq_name / "seqinfo.ini")
                       if p.exists()]
        tracks = sort_tracks(pd.concat(tables, ignore_index=True)) if tables else empty_tracks()
        split = Split(split_name, sequences, tracks)
        split = apply_sidecar(split, root, split_name) if sidecar else split
        if split_name in dets_of:  # the public detections are the task's input: the firewall passes them on
            split.detections = sort_tracks(pd.concat(dets_of[split_name], ignore_index=True))
        result[split_name] = split
    meta = dict(sidecar.get("meta", {})) if sidecar else {}
    if dets_of:  # one table per split, as the synthetic world has them
        meta["public_detections"] = {k: split.detections for k, split in result.items() if split.detections is not None}
    meta.update(read_meta_frames(root))
    frame_rate = (sidecar or {}).get("frame_rate") or next(
        (s.meta["frame_rate"] for s in result["train"].sequences.values()), 30.0)
    return Dataset(name=(sidecar or {}).get("name", name), train=result["train"], val=result["val"],
                   frame_rate=frame_rate, data_hash=(sidecar or {}).get("data_hash") or hash_files(hashed),
                   root=root, meta=meta)
