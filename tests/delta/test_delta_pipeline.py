"""End to end: ``bench run`` of delta and deltav2 on synth-dense (smoke), scored by TAPVid-3D; the stored point
tracks round-trip through the TAPVid-3D prediction writer and ``bench eval --format tapvid3d`` gives the run's
numbers; a file in the published TAPVid-3D layout (tapnet's keys, JPEG frames) is read and scored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.data.formats import tapvid3d
from bench.runner.artifacts import load_point_tracks
from bench.store import Store


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output + (str(result.exception) if result.exit_code not in (0, 2) else "")


@pytest.mark.parametrize("method", ["delta", "deltav2"])
def test_bench_run_scores_point_tracks_and_bench_eval_agrees(method: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    code, text = _cli("run", "--method", method, "--dataset", "synth-dense", "--profile", "smoke")
    assert code == 0, text
    assert "APD3D" in text and "Occlusion acc." in text
    m = Store(tmp_path / "runs" / "bench.sqlite").metrics_frame()
    overall = m[(m["seq"] == "") & (m["protocol"] == "tapvid3d") & (m["split"] == "val")].set_index("metric")
    apd = float(overall.loc["APD3D", "value"])
    predictions = sorted(tmp_path.glob(f"runs/synth-dense/{method}/*/s0/*/prediction/predictions.npz"))
    assert len(predictions) == 1
    tracks = load_point_tracks(predictions[0])
    gt_dir = tmp_path / "data" / "synth-dense-smoke-s0" / "val"
    pred_dir = tmp_path / "pred"
    for name, points in tracks.items():
        assert points.xyz.shape[1] == len(points.queries) and np.isfinite(points.xyz).all()
        tapvid3d.write_predictions(pred_dir / f"{name}.npz", points.xyz, points.visible)
        xyz, vis = tapvid3d.read_predictions(pred_dir / f"{name}.npz", points.visible.shape)
        np.testing.assert_array_equal(xyz, points.xyz.astype(np.float32))
        np.testing.assert_array_equal(vis, points.visible)
    code, text = _cli("eval", "--format", "tapvid3d", "--gt", str(gt_dir), "--pred", str(pred_dir), "--json",
                      str(tmp_path / "eval.json"))
    assert code == 0, text
    assert json.loads((tmp_path / "eval.json").read_text())["summary"]["APD3D"] == pytest.approx(apd, abs=1e-6)


def _jpeg(image: np.ndarray) -> bytes:
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", image, extension=".jpg", quality=90)


def test_published_layout_is_read_and_scored(tmp_path: Path) -> None:
    """A file with exactly the keys tapnet's TAPVid-3D generator writes (no bench extras: no extrinsics, no
    video depth, JPEG frames as an object array of bytes)."""
    rng = np.random.default_rng(0)
    t, n, w, h = 5, 40, 64, 48
    xyz = np.column_stack([rng.uniform(-2, 2, n), rng.uniform(-1, 1, n), rng.uniform(4, 12, n)])
    xyz = (xyz[None] + np.cumsum(rng.normal(0, 0.05, (t, n, 3)), 0)).astype(np.float32)
    visible = rng.uniform(size=(t, n)) < 0.85
    frames = np.empty(t, dtype=object)
    frames[:] = [_jpeg(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for _ in range(t)]
    queries = np.column_stack([rng.uniform(0, w, n), rng.uniform(0, h, n), np.zeros(n)]).astype(np.float32)
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    np.savez(gt_dir / "drivetrack_0001.npz", images_jpeg_bytes=frames, tracks_XYZ=xyz, visibility=visible,
             queries_xyt=queries, fx_fy_cx_cy=np.array([50.0, 50.0, 32.0, 24.0], dtype=np.float32))
    seq, points = tapvid3d.read_video(gt_dir / "drivetrack_0001.npz")
    assert seq.image_size == (w, h) and seq.num_frames == t and points.xyz.shape == (t, n, 3)
    np.testing.assert_allclose(seq.intrinsics[0], [[50, 0, 32], [0, 50, 24], [0, 0, 1]])
    tapvid3d.write_predictions(pred_dir / "drivetrack_0001.npz", xyz * 3.0, visible)  # median scaling undoes x3
    code, text = _cli("eval", "--format", "tapvid3d", "--gt", str(gt_dir), "--pred", str(pred_dir), "--json",
                      str(tmp_path / "s.json"))
    assert code == 0, text
    summary = json.loads((tmp_path / "s.json").read_text())["summary"]
    assert summary["APD3D"] == pytest.approx(1.0) and summary["OA"] == pytest.approx(1.0)
    noisy = xyz + rng.normal(0, 0.5, xyz.shape).astype(np.float32)
    tapvid3d.write_predictions(pred_dir / "drivetrack_0001.npz", noisy, visible)
    code, _ = _cli("eval", "--format", "tapvid3d", "--gt", str(gt_dir), "--pred", str(pred_dir), "--json",
                   str(tmp_path / "s.json"))
    assert code == 0 and json.loads((tmp_path / "s.json").read_text())["summary"]["APD3D"] < 0.9


def test_self_supervised_depth_never_reads_the_given_depth_and_survives_a_checkpoint(tmp_path: Path) -> None:
    """depth_source=selfsup: fit and predict work with the dataset's depth taken away (the network learns from the
    videos and poses only); the tracker is given positive metric depth; a checkpoint restores the depth network, so
    predictions after loading equal the fitted model's."""
    from bench.data.datasets import load_dataset
    from bench.firewall import split_view, train_view
    from bench.interface import RunContext
    from methods.deltav2.method import DeltaV2

    data = load_dataset("synth-dense", scale="smoke", root=tmp_path / "data")
    train = train_view(data.train, data.train.tracks.iloc[:0], data.frame_rate, None, points=True)
    val = split_view(data.val, data.frame_rate)
    assert train.depth and val.depth  # the dataset ships a depth, and the method must not need it
    train.depth.clear()
    val.depth.clear()
    params = dict(steps=2, depth_source="selfsup", depth_steps=3, depth_scale=0.25)
    method = DeltaV2(**params)
    ctx = RunContext(work_dir=tmp_path)
    method.fit(train, None, ctx)
    name = sorted(val.sequences)[0]
    images = val.sequences[name].load_images()
    depth = method.input_depth(val, name, images)
    assert depth.shape == images.shape[:3] and bool((depth > 0).all()) and bool(torch.isfinite(depth).all())
    first = method.predict(val, ctx)
    restored = DeltaV2(**params)
    restored.load_state_dict(method.state_dict())
    second = restored.predict(val, ctx)
    for seq in first:
        np.testing.assert_array_equal(first[seq].xyz, second[seq].xyz)
    with pytest.raises(ValueError, match="no depth network"):
        DeltaV2(**params).load_state_dict({k: v for k, v in method.state_dict().items()
                                           if not k.startswith("depth_net.")})
    with pytest.raises(ValueError, match="depth_source"):
        DeltaV2(depth_source="lidar")
    # The default source still needs the given depth, and says so.
    with pytest.raises(ValueError, match="given video depth"):
        DeltaV2(steps=1).fit(train, None, ctx)
