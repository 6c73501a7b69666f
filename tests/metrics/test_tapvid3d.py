"""TAPVid-3D metrics: golden parity with the reference definitions, thresholds, scaling, protocol and loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.data.sequence import PointTracks, Sequence
from bench.metrics.tapvid3d import (
    eval_intrinsics,
    evaluate_protocol,
    load_tapvid3d,
    scale_factor,
    video_metrics,
)

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "metrics" / "tapvid3d").glob("*.json"))


def test_fixtures_exist():
    assert len(FIXTURES) >= 10


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_matches_reference(path: Path):
    case = json.loads(path.read_text())
    for scaling, expected in case["expected"].items():
        got = video_metrics(np.asarray(case["gt_xyz"]), np.asarray(case["gt_vis"]), np.asarray(case["pred_xyz"]),
                            np.asarray(case["pred_vis"]), np.asarray(case["fx_fy_cx_cy"]), scaling=scaling,
                            query_frames=np.asarray(case["queries_t"]))
        for key, value in expected.items():
            if np.isnan(value):
                assert np.isnan(got[key]), (scaling, key)
            else:
                assert got[key] == pytest.approx(value, abs=1e-6), (scaling, key)


def _one_point(error_px: float, z: float = 10.0, f: float = 200.0) -> dict[str, float]:
    gt = np.array([[[0.0, 0.0, z]]])
    pred = gt + np.array([error_px * z / f, 0.0, 0.0])
    vis = np.ones((1, 1), bool)
    return video_metrics(gt, vis, pred, vis, np.array([f, f, 128, 128]), scaling="none")


def test_thresholds_are_depth_adaptive_and_strict():
    m = _one_point(3.0)
    assert [m[f"pts_within_{k}"] for k in (1, 2, 4, 8, 16)] == [0, 0, 1, 1, 1]
    assert m["average_pts_within_thresh"] == pytest.approx(0.6)
    assert m["average_jaccard"] == pytest.approx(0.6)
    # An error of exactly 4 px is not within 4 px (strict <); 2 px (a power of two) is exact in floating point.
    assert _one_point(2.0)["pts_within_2"] == 0.0
    assert _one_point(2.0, z=40.0)["pts_within_4"] == 1.0


def test_far_visible_prediction_counts_as_false_positive_and_miss():
    gt = np.zeros((2, 1, 3)) + [0, 0, 5.0]
    vis = np.ones((2, 1), bool)
    m = video_metrics(gt, vis, gt + [3.0, 0, 0], vis, np.array([100.0, 100, 0, 0]), scaling="none")
    assert m["average_jaccard"] == 0.0 and m["occlusion_accuracy"] == 1.0


def test_median_scaling_uses_points_visible_in_both():
    gt = np.array([[[0, 0, 2.0], [0, 0, 4.0], [0, 0, 100.0]]])
    gt_vis = np.array([[True, True, False]])
    pred_vis = np.array([[True, True, True]])
    s = scale_factor(gt, gt_vis, gt / 3.0, pred_vis, "median")
    assert float(s) == pytest.approx(3.0)
    assert np.isnan(scale_factor(gt, gt_vis, gt, np.zeros_like(pred_vis), "median"))


def _sequence(name: str, w: int = 512, h: int = 384) -> Sequence:
    k = np.array([[300.0, 0, w / 2], [0, 300.0, h / 2], [0, 0, 1]])
    return Sequence(name=name, images=[Path(f"{name}_{i}.png") for i in range(4)], intrinsics=k,
                    cam_to_world=np.repeat(np.eye(4)[None], 4, 0), timestamps=np.arange(4) * 0.1, image_size=(w, h))


def _tracks(rng: np.random.Generator, t: int = 4, n: int = 6) -> PointTracks:
    xyz = np.column_stack([rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), rng.uniform(3, 8, n)])
    xyz = np.repeat(xyz[None], t, 0) + rng.normal(0, 0.01, (t, n, 3))
    return PointTracks(xyz=xyz, visible=rng.uniform(size=(t, n)) < 0.8, queries=np.zeros((n, 3)))


def test_evaluate_protocol_with_sequences_and_missing_prediction():
    rng = np.random.default_rng(0)
    gt = {"v1": _tracks(rng), "v2": _tracks(rng)}
    pred = {"v1": PointTracks(gt["v1"].xyz * 0.5, gt["v1"].visible.copy(), gt["v1"].queries)}
    result = evaluate_protocol(gt, pred, sequences={n: _sequence(n) for n in gt})
    assert result.protocol == "tapvid3d"
    # v1 is perfect after median scaling, v2 has no prediction and scores 0 (tapnet's rule): the mean is 0.5.
    assert result.summary["APD3D"] == pytest.approx(0.5)
    assert result.summary["3D-AJ"] == pytest.approx(0.5)
    assert result.summary["OA"] == pytest.approx(0.5)
    assert result.extras["missing_predictions"] == ["v2"]
    per_seq = result.per_sequence.set_index(["seq", "metric"])["value"]
    assert per_seq[("v1", "APD3D")] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown sequences"):
        evaluate_protocol(gt, {"zz": pred["v1"]}, sequences={n: _sequence(n) for n in gt})


def test_protocol_is_registered():
    from bench.metrics.protocols import get_protocol

    assert get_protocol("tapvid3d") is evaluate_protocol


def test_eval_intrinsics_rescale_to_256_shorter_side():
    np.testing.assert_allclose(eval_intrinsics([512, 512, 256, 192], (512, 384)), [341.333333, 341.333333,
                                                                                    170.666667, 128.0], rtol=1e-6)


def test_npz_loader(tmp_path: Path):
    rng = np.random.default_rng(1)
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    g = _tracks(rng)
    np.savez(gt_dir / "a.npz", tracks_XYZ=g.xyz, visibility=g.visible, queries_xyt=g.queries,
             fx_fy_cx_cy=np.array([600.0, 600, 320, 240]), image_size=np.array([640, 480]))
    np.savez(gt_dir / "b.npz", tracks_XYZ=g.xyz, visibility=g.visible, queries_xyt=g.queries,
             fx_fy_cx_cy=np.array([600.0, 600, 320, 240]), image_size=np.array([640, 480]))
    np.savez(pred_dir / "a.npz", tracks_XYZ=g.xyz, visibility=g.visible)
    gt, pred, intrinsics = load_tapvid3d(gt_dir, pred_dir)
    assert sorted(gt) == ["a", "b"] and sorted(pred) == ["a"]
    np.testing.assert_allclose(intrinsics["a"], [320, 320, 320 * 320 / 600, 128])
    result = evaluate_protocol(gt, pred, intrinsics=intrinsics)
    assert result.summary["APD3D"] == pytest.approx(0.5)

    np.savez(pred_dir / "a.npz", tracks_XYZ=g.xyz[:, :3], visibility=g.visible[:, :3])
    with pytest.raises(ValueError, match=r"pred/a\.npz: tracks_XYZ has shape"):
        load_tapvid3d(gt_dir, pred_dir)
    np.savez(pred_dir / "a.npz", tracks_XYZ=g.xyz, visible=g.visible)
    with pytest.raises(ValueError, match=r"pred/a\.npz: missing arrays \['visibility'\]"):
        load_tapvid3d(gt_dir, pred_dir)
    np.savez(pred_dir / "a.npz", tracks_XYZ=g.xyz, visibility=g.visible)
    np.savez(pred_dir / "c.npz", tracks_XYZ=g.xyz, visibility=g.visible)
    with pytest.raises(ValueError, match=r"not in the ground truth: \['c'\]"):
        load_tapvid3d(gt_dir, pred_dir)
