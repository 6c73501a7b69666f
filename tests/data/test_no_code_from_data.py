"""No input file can run code: crafted pickles inside (or posing as) ``.npz`` files are refused.

Each payload, if unpickled, creates a marker file. The tests check that bench raises a one-line error
(or exits 2) and that the marker never appears.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.data.formats import tapvid3d
from bench.data.formats.npz import read_bytes_array
from bench.data.sequence import DataError


class _Payload:
    """Unpickling this runs ``touch marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def _object_array(marker: Path) -> np.ndarray:
    arr = np.empty(2, dtype=object)
    arr[:] = [b"\xff\xd8 not really a jpeg", _Payload(marker)]
    return arr


def _valid_gt(path: Path, images: np.ndarray | None = None) -> None:
    t, n = 2, 3
    if images is None:
        images = np.empty(t, dtype=object)
        images[:] = [tapvid3d._jpeg(np.zeros((8, 8, 3), np.uint8)) for _ in range(t)]
    np.savez(path, images_jpeg_bytes=images, tracks_XYZ=np.ones((t, n, 3), np.float32),
             visibility=np.ones((t, n), bool), queries_xyt=np.zeros((n, 3), np.float32),
             fx_fy_cx_cy=np.array([10, 10, 4, 4], np.float32))


def _crafted_files(tmp: Path, marker: Path) -> dict[str, Path]:
    """Every shape of attack we know: object arrays in each key, a raw pickle, a bare .npy of objects."""
    files = {}
    files["images"] = tmp / "images.npz"
    _valid_gt(files["images"], images=_object_array(marker))
    files["tracks"] = tmp / "tracks.npz"
    np.savez(files["tracks"], tracks_XYZ=_object_array(marker), visibility=np.ones((2, 3), bool))
    files["raw_pickle"] = tmp / "raw_pickle.npz"
    files["raw_pickle"].write_bytes(pickle.dumps(_Payload(marker)))
    files["bare_npy"] = tmp / "bare_npy.npz"
    with open(files["bare_npy"], "wb") as fh:
        np.save(fh, _object_array(marker), allow_pickle=True)
    return files


def test_crafted_pickles_are_refused_by_every_reader(tmp_path: Path) -> None:
    from bench.metrics.tapvid3d import load_tapvid3d

    marker = tmp_path / "EXECUTED"
    files = _crafted_files(tmp_path, marker)
    attempts = 0
    readers = {  # which reader touches which attack
        "images": [tapvid3d.read_video, lambda p: read_bytes_array(p, "images_jpeg_bytes")],
        "tracks": [tapvid3d.read_video, tapvid3d.read_predictions],
        "raw_pickle": [tapvid3d.read_video, tapvid3d.read_predictions, lambda p: read_bytes_array(p, "x")],
        "bare_npy": [tapvid3d.read_video, tapvid3d.read_predictions, lambda p: read_bytes_array(p, "x")],
    }
    for name, path in files.items():
        for read in readers[name]:
            attempts += 1
            with pytest.raises(DataError) as err:
                read(path)
            assert str(path) in str(err.value)
    for name in files:  # the metric loader, file as ground truth and as prediction
        gt_dir, pred_dir = tmp_path / f"gt_{name}", tmp_path / f"pred_{name}"
        gt_dir.mkdir(), pred_dir.mkdir()
        _valid_gt(gt_dir / "v.npz")
        (pred_dir / "v.npz").write_bytes(files[name].read_bytes())
        attempts += 1
        if name == "images":  # a prediction's images are never read: its numeric arrays are valid
            load_tapvid3d(gt_dir, pred_dir)
        else:
            with pytest.raises(ValueError):
                load_tapvid3d(gt_dir, pred_dir)
        (gt_dir / "v.npz").write_bytes(files[name].read_bytes())
        attempts += 1
        with pytest.raises(ValueError):
            load_tapvid3d(gt_dir, pred_dir)
    assert attempts == 10 + 8
    assert not marker.exists(), "a crafted pickle was executed"


def test_crafted_prediction_via_bench_eval_exits_2(tmp_path: Path) -> None:
    from bench.cli import main

    marker = tmp_path / "EXECUTED"
    files = _crafted_files(tmp_path, marker)
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    _valid_gt(gt_dir / "v.npz")
    for name, path in files.items():
        if name == "images":  # images are not read from predictions
            continue
        pred_dir = tmp_path / f"pred_{path.stem}"
        pred_dir.mkdir()
        (pred_dir / "v.npz").write_bytes(path.read_bytes())
        args = ["eval", "--format", "tapvid3d", "--gt", str(gt_dir), "--pred", str(pred_dir)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
    assert not marker.exists(), "a crafted pickle was executed through bench eval"


def test_real_jpeg_bytes_still_read(tmp_path: Path) -> None:
    """The restricted unpickler admits what TAPVid-3D really stores: an object array of JPEG bytes."""
    path = tmp_path / "ok.npz"
    _valid_gt(path)
    seq, points = tapvid3d.read_video(path)
    assert seq.images.shape == (2, 8, 8, 3)
    assert points.xyz.shape == (2, 3, 3)
    assert len(read_bytes_array(path, "images_jpeg_bytes")) == 2


def test_loading_with_numpy_pickles_would_have_run_the_payload(tmp_path: Path) -> None:
    """The payload is real: numpy's allow_pickle=True runs it (so the tests above can fail)."""
    marker = tmp_path / "EXECUTED"
    files = _crafted_files(tmp_path, marker)
    with np.load(files["tracks"], allow_pickle=True) as z:
        z["tracks_XYZ"]
    assert marker.exists()
