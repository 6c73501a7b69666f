"""TAPVid-3D evaluation inputs: a ground-truth folder and a prediction folder of ``.npz`` files, read and checked.

:func:`read_tapvid3d_eval` returns the point tracks and each video's camera (fx fy cx cy, image size);
:func:`bench.metrics.tapvid3d.load_tapvid3d` rescales the camera to the metric's evaluation resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.data.formats.npz import open_npz, read_array, read_bytes_array
from bench.data.sequence import DataError, PointTracks


def read_tapvid3d_eval(gt_dir: str | Path, pred_dir: str | Path
                       ) -> tuple[dict, dict, dict[str, tuple[np.ndarray, tuple[int, int]]]]:
    """Read a TAPVid-3D ground-truth folder and a prediction folder of ``.npz`` files (same file names).

    GT keys (as tapnet's evaluate_model reads them): ``tracks_XYZ (T, N, 3)``, ``visibility (T, N)``,
    ``queries_xyt (N, 3)``, ``fx_fy_cx_cy (4,)`` and ``images_jpeg_bytes`` (for the image size) or
    ``image_size`` (w, h). Prediction keys: ``tracks_XYZ`` and ``visibility``. Returns (gt, pred, each video's
    (fx fy cx cy, (width, height)) as stored); a missing prediction file is left out of ``pred`` (``bench eval`` refuses
    that, as it refuses a missing KITTI or MOT file; the protocol would score the video 0, tapnet's rule).
    Every problem is a DataError naming the file and the array.
    """
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    files = sorted(gt_dir.glob("*.npz"))
    if not files:
        raise DataError(f"{gt_dir}: no .npz ground-truth files")
    gt, pred, cameras = {}, {}, {}
    for path in files:
        name = path.stem
        with open_npz(path, "TAPVid-3D ground-truth file") as z:  # pickles refused: no code from data
            _require(z, path, ("tracks_XYZ", "visibility", "queries_xyt", "fx_fy_cx_cy"))
            xyz = _numbers(z, "tracks_XYZ", path)
            vis = _numbers(z, "visibility", path, finite=True).astype(bool)
            _check_shapes(path, xyz, vis)
            if not np.isfinite(xyz[vis]).all():
                raise DataError(f"{path}: tracks_XYZ has NaN or inf at visible points")
            queries = _numbers(z, "queries_xyt", path, finite=True)
            if queries.shape != (xyz.shape[1], 3):
                raise DataError(f"{path}: queries_xyt has shape {queries.shape}, expected ({xyz.shape[1]}, 3)")
            frames = queries[:, 2]
            if len(frames) and ((frames < 0) | (frames > xyz.shape[0] - 1)).any():
                raise DataError(f"{path}: queries_xyt has query frames outside 0..{xyz.shape[0] - 1}")
            gt[name] = PointTracks(xyz=xyz, visible=vis, queries=queries)
            intr = _numbers(z, "fx_fy_cx_cy", path, finite=True)
            if intr.shape != (4,) or (intr[:2] <= 0).any():
                raise DataError(f"{path}: fx_fy_cx_cy is {intr.tolist() if intr.size < 9 else intr.shape}, "
                                "expected 4 numbers with positive focal lengths")
            cameras[name] = (intr, _image_size(z, path))
        pred_path = pred_dir / path.name
        if not pred_path.exists() and not pred_path.is_symlink():
            continue
        with open_npz(pred_path, "TAPVid-3D prediction file") as z:
            _require(z, pred_path, ("tracks_XYZ", "visibility"))
            pxyz = _numbers(z, "tracks_XYZ", pred_path)
            pvis = _numbers(z, "visibility", pred_path, finite=True).astype(bool)
            _check_shapes(pred_path, pxyz, pvis)
            if pxyz.shape != xyz.shape:
                raise DataError(f"{pred_path}: tracks_XYZ has shape {pxyz.shape}, the ground truth {xyz.shape}")
            if not np.isfinite(pxyz).all():
                raise DataError(f"{pred_path}: tracks_XYZ contains NaN or inf")
            pred[name] = PointTracks(xyz=pxyz, visible=pvis, queries=gt[name].queries)
    extra = sorted(p.stem for p in pred_dir.glob("*.npz") if p.stem not in gt)
    if extra:
        raise DataError(f"{pred_dir}: predictions for videos not in the ground truth: {extra[:5]}")
    return gt, pred, cameras


# Coordinates (metres) and sizes beyond this are damage; squaring them would overflow the metrics.
MAX_VALUE = 1e6


def _numbers(z: Any, key: str, path: Path, finite: bool = False) -> np.ndarray:
    """A numeric (or bool) array of the archive, as float64; text or objects are refused with the key's name."""
    array = read_array(z, key, path)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: array {key!r} has dtype {array.dtype}, expected numbers")
    array = array.astype(np.float64)
    if finite and not np.isfinite(array).all():
        raise DataError(f"{path}: array {key!r} has NaN or inf")
    if (np.abs(array[np.isfinite(array)]) > MAX_VALUE).any():
        raise DataError(f"{path}: array {key!r} has values beyond {MAX_VALUE:g}")
    return array


def _require(z: Any, path: Path, keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in z.files]
    if missing:
        raise DataError(f"{path}: missing arrays {missing}; has {sorted(z.files)}")


def _check_shapes(path: Path, xyz: np.ndarray, vis: np.ndarray) -> None:
    if xyz.ndim != 3 or xyz.shape[2] != 3 or vis.shape != xyz.shape[:2] or 0 in xyz.shape:
        raise DataError(f"{path}: expected tracks_XYZ (T, N, 3) and visibility (T, N) with T, N > 0, "
                        f"got {xyz.shape} and {vis.shape}")


def _image_size(z: Any, path: Path) -> tuple[int, int]:
    if "image_size" in z.files:
        size = _numbers(z, "image_size", path, finite=True)
        if size.shape != (2,) or (size < 1).any() or (size != np.round(size)).any():
            raise DataError(f"{path}: image_size is {size.tolist() if size.size < 9 else size.shape}, "
                            "expected (width, height) in whole pixels")
        return int(size[0]), int(size[1])
    if "images_jpeg_bytes" in z.files:
        import io

        import imageio.v3 as iio

        frames = read_bytes_array(path, "images_jpeg_bytes")  # a restricted unpickler: bytes only
        if not frames:
            raise DataError(f"{path}: images_jpeg_bytes is empty, expected one JPEG per frame")
        try:
            frame = np.asarray(iio.imread(io.BytesIO(frames[0]), extension=".jpg"))
        except Exception as err:  # imageio's plugins raise many kinds for damaged bytes
            raise DataError(f"{path}: images_jpeg_bytes[0] is not a readable JPEG ({type(err).__name__})") from None
        if frame.ndim < 2 or min(frame.shape[:2]) < 1:
            raise DataError(f"{path}: images_jpeg_bytes[0] decodes to shape {frame.shape}, expected an image")
        return int(frame.shape[1]), int(frame.shape[0])
    raise DataError(f"{path}: needs images_jpeg_bytes or image_size (w, h) to rescale the intrinsics")
