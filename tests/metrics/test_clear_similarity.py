"""Box similarities: 2D IoU equals TrackEval's, rotated 3D IoU against hand-computed and rasterised values."""

from __future__ import annotations

import numpy as np
import pytest
from trackeval.datasets._base_dataset import _BaseDataset

from bench.metrics.similarity import bev_center_similarity, convex_intersection_area, ioa_2d, iou_2d, iou_3d


def test_iou_2d_and_ioa_equal_trackeval() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 100, (30, 2))
    a = np.hstack([a, a + rng.uniform(0, 60, (30, 2))])
    b = rng.uniform(0, 100, (20, 2))
    b = np.hstack([b, b + rng.uniform(0, 60, (20, 2))])
    a[0, 2] = a[0, 0]  # an empty box
    np.testing.assert_array_equal(iou_2d(a, b), _BaseDataset._calculate_box_ious(a, b, box_format="x0y0x1y1"))
    np.testing.assert_array_equal(ioa_2d(a, b),
                                  _BaseDataset._calculate_box_ious(a, b, box_format="x0y0x1y1", do_ioa=True))


BOX = np.array([[0.0, 1.0, 10.0, 1.5, 2.0, 4.0, 0.0]])  # x y z h w l yaw


def _moved(**kw: float) -> np.ndarray:
    out = BOX.copy()
    for i, key in enumerate("x y z h w l yaw".split()):
        if key in kw:
            out[0, i] = kw[key]
    return out


@pytest.mark.parametrize("other,expected", [
    (BOX, 1.0),  # identical
    (_moved(yaw=np.pi / 2), 4.0 / 12.0),  # 4x2 vs 2x4 footprint: overlap 2x2
    (_moved(yaw=np.pi), 1.0),  # same box, opposite heading
    (_moved(x=1.0), 6.0 / 10.0),  # axis-aligned shift along the length
    (_moved(x=0.5, z=10.5), (3.5 * 1.5) / (16 - 3.5 * 1.5)),
    (_moved(y=1.75), 0.75 / 2.25),  # spans [-0.5, 1] and [0.25, 1.75]: y is the bottom, pointing down
    (_moved(x=10.0), 0.0),  # disjoint
    (_moved(y=5.0), 0.0),  # stacked, no vertical overlap
])
def test_iou_3d_hand_cases(other: np.ndarray, expected: float) -> None:
    assert iou_3d(BOX, other)[0, 0] == pytest.approx(expected, abs=1e-9)
    assert iou_3d(other, BOX)[0, 0] == pytest.approx(expected, abs=1e-9)


def _raster_area(p: np.ndarray, q: np.ndarray, n: int = 500) -> float:
    """Intersection area of two convex quads by counting grid cells (an independent, slow reference)."""
    lo, hi = np.minimum(p.min(0), q.min(0)), np.maximum(p.max(0), q.max(0))
    xs = np.linspace(lo[0], hi[0], n)
    ys = np.linspace(lo[1], hi[1], n)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.stack([gx.ravel(), gy.ravel()], 1)

    def inside(poly: np.ndarray) -> np.ndarray:
        e = np.roll(poly, -1, 0) - poly
        c = e[None, :, 0] * (pts[:, None, 1] - poly[None, :, 1]) - e[None, :, 1] * (pts[:, None, 0] - poly[None, :, 0])
        return (c >= 0).all(1) | (c <= 0).all(1)

    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    return float((inside(p) & inside(q)).sum() * cell)


def test_rotated_footprint_intersection_matches_rasterisation() -> None:
    rng = np.random.default_rng(1)
    from bench.metrics.similarity import bev_footprints

    boxes1 = np.column_stack([rng.uniform(-1, 1, 6), np.zeros(6), rng.uniform(-1, 1, 6), np.ones(6),
                              rng.uniform(1, 3, 6), rng.uniform(2, 5, 6), rng.uniform(-np.pi, np.pi, 6)])
    boxes2 = np.column_stack([rng.uniform(-1, 1, 6), np.zeros(6), rng.uniform(-1, 1, 6), np.ones(6),
                              rng.uniform(1, 3, 6), rng.uniform(2, 5, 6), rng.uniform(-np.pi, np.pi, 6)])
    f1, f2 = bev_footprints(boxes1), bev_footprints(boxes2)
    ours = convex_intersection_area(f1, f2)
    for i in range(6):
        ref = _raster_area(f1[i], f2[i])
        assert ours[i] == pytest.approx(ref, rel=0.03, abs=0.03)
    # With unit heights at the same level, 3D IoU is area / (A1 + A2 - area).
    areas1, areas2 = boxes1[:, 4] * boxes1[:, 5], boxes2[:, 4] * boxes2[:, 5]
    np.testing.assert_allclose(np.diag(iou_3d(boxes1, boxes2)), ours / (areas1 + areas2 - ours), atol=1e-12)


def test_iou_3d_empty_inputs_and_shape() -> None:
    assert iou_3d(np.zeros((0, 7)), BOX).shape == (0, 1)
    assert iou_3d(np.repeat(BOX, 3, 0), np.repeat(BOX, 2, 0)).shape == (3, 2)


def test_bev_center_similarity() -> None:
    sim = bev_center_similarity(BOX, np.vstack([BOX, _moved(x=1.0), _moved(x=3.0, y=-5), _moved(z=12.0)]))
    np.testing.assert_allclose(sim, [[1.0, 0.5, 0.0, 0.0]])  # height (y) is ignored, 2 m apart -> 0


def test_paired_forms_and_batching_equal_the_matrices() -> None:
    from bench.metrics.similarity import bev_center_similarity_pairs, iou_2d_pairs, iou_3d_pairs
    from bench.metrics.tracking import batched_similarity, frame_slices

    rng = np.random.default_rng(3)
    boxes = np.column_stack([rng.uniform(-3, 3, (40, 3)), rng.uniform(1, 3, (40, 3)), rng.uniform(-3, 3, 40)])
    other = boxes + rng.normal(0, 0.5, boxes.shape) * [1, 1, 1, 0, 0, 0, 1]
    np.testing.assert_allclose(iou_3d_pairs(boxes, other), np.diag(iou_3d(boxes, other)), atol=1e-12)
    np.testing.assert_allclose(bev_center_similarity_pairs(boxes, other), np.diag(bev_center_similarity(boxes, other)))
    b2 = np.column_stack([boxes[:, :2] * 50 + 200, boxes[:, :2] * 50 + 200 + boxes[:, 3:5] * 30])
    o2 = b2 + rng.normal(0, 10, b2.shape)
    o2[:, 2:] = np.maximum(o2[:, 2:], o2[:, :2])
    np.testing.assert_array_equal(iou_2d_pairs(b2, o2), np.diag(iou_2d(b2, o2)))
    g_frames, p_frames = rng.integers(0, 6, 40), rng.integers(0, 6, 40)
    g_sl, p_sl = frame_slices(g_frames, 7), frame_slices(p_frames, 7)
    mats = batched_similarity(boxes, other, g_sl, p_sl, iou_3d_pairs)
    for m, gi, pi in zip(mats, g_sl, p_sl, strict=True):
        np.testing.assert_allclose(m, iou_3d(boxes[gi], other[pi]), atol=1e-12)
    assert mats[6].shape == (0, 0)
