"""TAPVid-3D on disk: one ``<video>.npz`` per video, keys as tapnet's tapvid3d code reads them.

Ground truth: ``images_jpeg_bytes`` (T JPEG-encoded frames), ``tracks_XYZ`` (T, N, 3) metres in each
frame's camera (x right, y down, z forward), ``visibility`` (T, N) bool, ``queries_xyt`` (N, 3) as
(x px, y px, frame) and ``fx_fy_cx_cy`` (4,). We add ``extrinsics_w2c`` (T, 4, 4), as some
TAPVid-3D sources carry, so camera poses survive, and, optionally, ``video_depth`` (T, H, W) metres: the
given video depth a 3D point tracker takes as input (not ground truth). Predictions: ``tracks_XYZ`` and
``visibility``.
(tapnet's README says ``tracks_xyz``/``visible``/``intrinsics``; its code uses the names above.)
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bench.data.formats.common import apply_sidecar, hash_files, read_meta_frames, read_sidecar, write_sidecar
from bench.data.formats.npz import open_npz, read_array, read_bytes_array
from bench.data.sequence import DataError, Dataset, PointTracks, Sequence, Split
from bench.data.tracks import empty_tracks

GT_KEYS = ("images_jpeg_bytes", "tracks_XYZ", "visibility", "queries_xyt", "fx_fy_cx_cy")
PRED_KEYS = ("tracks_XYZ", "visibility")


def _jpeg(image: np.ndarray) -> bytes:
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", image, extension=".jpg", quality=95)


def _decode(data: bytes) -> np.ndarray:
    import imageio.v3 as iio

    return np.asarray(iio.imread(io.BytesIO(data), extension=".jpg"))[:, :, :3]


def write_video(path: Path, seq: Sequence, points: PointTracks, depth: np.ndarray | None = None) -> None:
    """One TAPVid-3D ground-truth file for a sequence and its point tracks (and its given video depth)."""
    k = seq.intrinsics[0]
    if not np.allclose(seq.intrinsics, k):
        raise DataError(f"sequence {seq.name}: TAPVid-3D stores one intrinsics vector, but intrinsics vary")
    images = np.empty(seq.num_frames, dtype=object)
    images[:] = [_jpeg(seq.image(i)) for i in range(seq.num_frames)]
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "images_jpeg_bytes": images, "tracks_XYZ": np.asarray(points.xyz, dtype=np.float32),
        "visibility": np.asarray(points.visible, dtype=bool), "queries_xyt": np.asarray(points.queries, np.float32),
        "fx_fy_cx_cy": np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]], dtype=np.float32),
        "extrinsics_w2c": np.linalg.inv(seq.cam_to_world)}
    if depth is not None:
        arrays["video_depth"] = np.asarray(depth, dtype=np.float16)
    np.savez(path, **arrays)  # type: ignore[arg-type]


def read_video(path: Path, frame_rate: float = 10.0) -> tuple[Sequence, PointTracks]:
    """Read and check one ground-truth file: shapes agree, coordinates finite, images decode to one size."""
    seq, points, _ = read_video_with_depth(path, frame_rate)
    return seq, points


def read_video_with_depth(path: Path, frame_rate: float = 10.0) -> tuple[Sequence, PointTracks, np.ndarray | None]:
    """:func:`read_video` plus the file's ``video_depth`` (T, H, W) float32 metres, None when it has none."""
    path = Path(path)
    with open_npz(path, "TAPVid-3D file") as data:
        missing = [k for k in GT_KEYS if k not in data.files]
        if missing:
            raise DataError(f"{path}: missing keys {missing}; a TAPVid-3D file has {list(GT_KEYS)}")
        xyz, visible = _numbers(data, "tracks_XYZ", path), _numbers(data, "visibility", path)
        queries, intr = _numbers(data, "queries_xyt", path), _numbers(data, "fx_fy_cx_cy", path)
        w2c = _numbers(data, "extrinsics_w2c", path) if "extrinsics_w2c" in data.files else None
        depth = read_array(data, "video_depth", path) if "video_depth" in data.files else None
    jpegs = read_bytes_array(path, "images_jpeg_bytes")  # no pickle: an array of bytes or an error
    t = len(jpegs)
    if t == 0 or xyz.ndim != 3 or xyz.shape[0] != t or xyz.shape[2] != 3:
        raise DataError(f"{path}: tracks_XYZ has shape {xyz.shape}, expected ({t}, N, 3) for {t} images (T > 0)")
    n = xyz.shape[1]
    if visible.shape != (t, n) or not np.isin(visible, (0, 1)).all():
        raise DataError(f"{path}: visibility has shape {visible.shape}, expected {(t, n)} booleans")
    if queries.shape != (n, 3) or not np.isfinite(queries).all():
        raise DataError(f"{path}: queries_xyt has shape {queries.shape}, expected {(n, 3)} finite numbers")
    if intr.shape != (4,) or not np.isfinite(intr).all() or (intr[:2] <= 0).any():
        raise DataError(f"{path}: fx_fy_cx_cy is {intr.ravel()[:8].tolist()}, expected 4 finite numbers "
                        "(positive focal lengths)")
    bad = ~np.isfinite(xyz[visible.astype(bool)]).all(axis=-1)
    if bad.any():
        raise DataError(f"{path}: tracks_XYZ has non-finite values at visible points")
    if w2c is not None:
        if w2c.shape != (t, 4, 4) or not np.isfinite(w2c).all() or (np.abs(np.linalg.det(w2c)) < 1e-12).any():
            raise DataError(f"{path}: extrinsics_w2c has shape {w2c.shape}, expected {(t, 4, 4)} finite, "
                            "invertible transforms")
    frames = [_decode_checked(b, path, i) for i, b in enumerate(jpegs)]
    if len({im.shape for im in frames}) > 1:
        raise DataError(f"{path}: images have different sizes")
    images = np.stack(frames)
    fx, fy, cx, cy = (float(v) for v in intr)
    k = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    poses = np.linalg.inv(w2c) if w2c is not None else np.repeat(np.eye(4)[None], t, axis=0)
    seq = Sequence(name=path.stem, images=images, intrinsics=k, cam_to_world=poses,
                   timestamps=np.arange(t) / frame_rate, image_size=(images.shape[2], images.shape[1]))
    if depth is not None:
        if depth.dtype.kind != "f" or depth.shape != images.shape[:3] or not (np.isfinite(depth) & (depth > 0)).all():
            raise DataError(f"{path}: video_depth has shape {depth.shape} ({depth.dtype}), expected "
                            f"{images.shape[:3]} finite positive metres")
        depth = depth.astype(np.float32)
    return seq, PointTracks(xyz=xyz, visible=visible.astype(bool), queries=queries), depth


def _numbers(data: object, key: str, path: Path) -> np.ndarray:
    """A numeric (or bool) array of the archive as float64; text or other dtypes name the array."""
    array = read_array(data, key, path)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: array {key!r} has dtype {array.dtype}, expected numbers")
    array = array.astype(np.float64)
    if (np.abs(array[np.isfinite(array)]) > 1e6).any():  # metres or pixels: larger is damage, and overflows
        raise DataError(f"{path}: array {key!r} has values beyond 1e6")
    return array


def _decode_checked(data: bytes, path: Path, frame: int) -> np.ndarray:
    try:
        image = _decode(data)
    except Exception as err:  # imageio's plugins raise many kinds for damaged bytes
        raise DataError(f"{path}: images_jpeg_bytes[{frame}] is not a readable JPEG ({type(err).__name__})") from None
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"{path}: images_jpeg_bytes[{frame}] decodes to shape {image.shape}, expected colour")
    return image


def write_predictions(path: Path | str, xyz: np.ndarray, visible: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, tracks_XYZ=np.asarray(xyz, dtype=np.float32), visibility=np.asarray(visible, dtype=bool))
    return path


def read_predictions(path: Path | str, shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A prediction file's (tracks_XYZ (T, N, 3), visibility (T, N)); ``shape`` = expected (T, N)."""
    path = Path(path)
    with open_npz(path, "prediction file") as data:
        missing = [k for k in PRED_KEYS if k not in data.files]
        if missing:
            raise DataError(f"{path}: missing keys {missing}; a prediction file has {list(PRED_KEYS)}")
        xyz, visible = read_array(data, "tracks_XYZ", path), read_array(data, "visibility", path)
    want = shape or xyz.shape[:2]
    if xyz.shape != (*want, 3) or visible.shape != tuple(want):
        raise DataError(f"{path}: tracks_XYZ {xyz.shape} / visibility {visible.shape}, expected "
                        f"{(*want, 3)} / {tuple(want)}")
    return xyz, visible.astype(bool)


def write_dataset(dataset: Dataset, root: Path) -> None:
    """Export every sequence with point tracks as ``<root>/<split>/<seq>.npz``; boxes go to the sidecar."""
    root = Path(root)
    for split in (dataset.train, dataset.val):
        for name, seq in split.sequences.items():
            if name in split.points:
                write_video(root / split.name / f"{name}.npz", seq, split.points[name], split.depth.get(name))
    write_sidecar(dataset, root, "tapvid3d", keep_tracks=True, keep_points=False)


def read_dataset(root: Path, name: str = "tapvid3d") -> Dataset:
    """Read TAPVid-3D files. Without a sidecar every ``*.npz`` under ``root`` is a val video (it is an
    evaluation benchmark, so train is empty)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: TAPVid-3D folder is missing")
    sidecar = read_sidecar(root)
    result, files = {}, []
    for split_name in ("train", "val"):
        if sidecar:
            paths = [root / split_name / f"{s}.npz" for s in sidecar["splits"][split_name]]
            paths = [p for p in paths if p.exists()]
        else:
            paths = sorted(root.rglob("*.npz")) if split_name == "val" else []
        sequences, points, depths = {}, {}, {}
        for path in paths:
            seq, pts, depth = read_video_with_depth(path, (sidecar or {}).get("frame_rate", 10.0))
            sequences[seq.name], points[seq.name] = seq, pts
            if depth is not None:
                depths[seq.name] = depth
            files.append(path)
        if sidecar:  # sequences without point tracks still belong to the split (boxes only)
            for s in sidecar["splits"][split_name]:
                if s not in sequences:
                    raise DataError(f"{root / split_name / (s + '.npz')}: video is missing (listed in bench.json)")
        split = Split(split_name, sequences, empty_tracks(), points, depth=depths)
        result[split_name] = apply_sidecar(split, root, split_name) if sidecar else split
    meta = dict(sidecar.get("meta", {})) if sidecar else {}
    meta.update(read_meta_frames(root))
    return Dataset(name=(sidecar or {}).get("name", name), train=result["train"], val=result["val"],
                   frame_rate=(sidecar or {}).get("frame_rate", 10.0),
                   data_hash=(sidecar or {}).get("data_hash") or hash_files([], stat_only=files),
                   root=root, meta=meta)


