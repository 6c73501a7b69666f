"""Box similarities for matching: 2D IoU / IoA, rotated 3D IoU, BEV centre distance.

Every function maps ``(N, k)`` and ``(M, k)`` box arrays to an ``(N, M)`` matrix. 3D boxes are KITTI
camera-frame boxes ``x y z h w l yaw`` (bottom centre, y down, yaw = rotation_y).
"""

from __future__ import annotations

import numpy as np

from bench.data.geometry import box_corners

_EPS = np.finfo(float).eps


def iou_2d(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of x1 y1 x2 y2 boxes, with TrackEval's guards for empty boxes (so that results match it bit for bit)."""
    a = np.asarray(boxes1, dtype=float).reshape(-1, 4)
    b = np.asarray(boxes2, dtype=float).reshape(-1, 4)
    inter = _intersection_2d(a, b)
    area1 = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area2 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area1[:, None] + area2[None, :] - inter
    inter[area1 <= _EPS, :] = 0
    inter[:, area2 <= _EPS] = 0
    inter[union <= _EPS] = 0
    union[union <= _EPS] = 1
    return inter / union


def ioa_2d(boxes1: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Intersection over the area of ``boxes1`` (how much of each box lies inside each region); 0 for empty boxes."""
    a = np.asarray(boxes1, dtype=float).reshape(-1, 4)
    b = np.asarray(regions, dtype=float).reshape(-1, 4)
    inter = _intersection_2d(a, b)
    area1 = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    out = np.zeros_like(inter)
    valid = area1 > _EPS
    out[valid] = inter[valid] / area1[valid, None]
    return out


def _intersection_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(hi - lo, 0, None)
    return wh[..., 0] * wh[..., 1]


def bev_footprints(boxes: np.ndarray) -> np.ndarray:
    """Bird's-eye-view corners ``(N, 4, 2)`` in the camera x-z plane, counter-clockwise or clockwise consistently."""
    return box_corners(boxes)[:, :4][..., [0, 2]]


def convex_intersection_area(poly1: np.ndarray, poly2: np.ndarray) -> np.ndarray:
    """Area of the intersection of convex quadrilaterals, pairwise: ``(P, 4, 2), (P, 4, 2) -> (P,)``.

    The intersection of two convex polygons is the convex polygon whose vertices are the corners of
    each that lie inside the other plus the crossings of their edges. We gather those candidate points
    for all pairs at once (4 + 4 + 16 per pair, masked), order them by angle around their mean and take
    the shoelace area -- no per-pair Python loop.
    """
    p1 = np.asarray(poly1, dtype=float)
    p2 = np.asarray(poly2, dtype=float)
    n = len(p1)
    if n == 0:
        return np.zeros(0)
    in1 = _inside_convex(p1, p2)  # corners of p1 inside p2: (P, 4)
    in2 = _inside_convex(p2, p1)
    cross_pts, cross_ok = _edge_crossings(p1, p2)  # (P, 16, 2), (P, 16)
    pts = np.concatenate([p1, p2, cross_pts], axis=1)  # (P, 24, 2)
    ok = np.concatenate([in1, in2, cross_ok], axis=1)
    count = ok.sum(axis=1)
    centre = (pts * ok[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
    rel = pts - centre[:, None, :]
    angle = np.where(ok, np.arctan2(rel[..., 1], rel[..., 0]), np.inf)
    order = np.argsort(angle, axis=1)
    pts = np.take_along_axis(pts, order[..., None], axis=1)
    ok = np.take_along_axis(ok, order, axis=1)
    # Masked points become copies of the first valid point: repeated points add nothing to the shoelace sum,
    # and the step from the last valid point to them closes the ring.
    pts = np.where(ok[..., None], pts, pts[:, :1, :])
    x, y = pts[..., 0], pts[..., 1]
    area = 0.5 * np.abs((x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1))
    return np.where(count >= 3, area, 0.0)


def _inside_convex(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Which of ``points (P, K, 2)`` lie inside or on convex ``poly (P, 4, 2)`` (either winding)."""
    edge = np.roll(poly, -1, axis=1) - poly  # (P, 4, 2)
    rel = points[:, :, None, :] - poly[:, None, :, :]  # (P, K, 4, 2)
    cross = edge[:, None, :, 0] * rel[..., 1] - edge[:, None, :, 1] * rel[..., 0]  # (P, K, 4)
    scale = np.abs(edge).sum(axis=-1).max(axis=-1)[:, None, None] ** 2
    tol = 1e-9 * scale
    return (cross >= -tol).all(axis=-1) | (cross <= tol).all(axis=-1)


def _edge_crossings(p1: np.ndarray, p2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crossing points of every edge of ``p1`` with every edge of ``p2``: ``(P, 16, 2)`` and a validity mask."""
    a0 = p1[:, :, None, :]
    r = (np.roll(p1, -1, axis=1) - p1)[:, :, None, :]
    b0 = p2[:, None, :, :]
    s = (np.roll(p2, -1, axis=1) - p2)[:, None, :, :]
    denom = r[..., 0] * s[..., 1] - r[..., 1] * s[..., 0]  # (P, 4, 4)
    d = b0 - a0
    parallel = np.abs(denom) < 1e-12
    safe = np.where(parallel, 1.0, denom)
    t = (d[..., 0] * s[..., 1] - d[..., 1] * s[..., 0]) / safe
    u = (d[..., 0] * r[..., 1] - d[..., 1] * r[..., 0]) / safe
    ok = ~parallel & (t >= -1e-12) & (t <= 1 + 1e-12) & (u >= -1e-12) & (u <= 1 + 1e-12)
    pts = a0 + t[..., None] * r
    return pts.reshape(len(p1), 16, 2), ok.reshape(len(p1), 16)


def iou_3d(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """3D IoU of rotated KITTI camera-frame boxes: BEV polygon intersection times vertical overlap."""
    a = np.asarray(boxes1, dtype=float).reshape(-1, 7)
    b = np.asarray(boxes2, dtype=float).reshape(-1, 7)
    rows, cols = np.meshgrid(np.arange(len(a)), np.arange(len(b)), indexing="ij")
    return iou_3d_pairs(a[rows.ravel()], b[cols.ravel()]).reshape(len(a), len(b))


def iou_3d_pairs(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """3D IoU of aligned rows ``(P, 7), (P, 7) -> (P,)``; lets callers batch the pairs of many frames at once."""
    a = np.asarray(boxes1, dtype=float).reshape(-1, 7)
    b = np.asarray(boxes2, dtype=float).reshape(-1, 7)
    out = np.zeros(len(a))
    if len(a) == 0:
        return out
    # y points down and y is the bottom face, so a box spans [y - h, y].
    height = np.clip(np.minimum(a[:, 1], b[:, 1]) - np.maximum(a[:, 1] - a[:, 3], b[:, 1] - b[:, 3]), 0, None)
    # Only pairs whose footprints' circumscribed circles touch can overlap; skip the polygon work for the rest.
    reach = 0.5 * (np.hypot(a[:, 4], a[:, 5]) + np.hypot(b[:, 4], b[:, 5]))
    near = np.flatnonzero((np.hypot(a[:, 0] - b[:, 0], a[:, 2] - b[:, 2]) < reach) & (height > 0))
    if len(near) == 0:
        return out
    a, b = a[near], b[near]
    inter = convex_intersection_area(bev_footprints(a), bev_footprints(b)) * height[near]
    union = a[:, 3] * a[:, 4] * a[:, 5] + b[:, 3] * b[:, 4] * b[:, 5] - inter
    out[near] = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return out


def bev_center_distance(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Euclidean distance of box centres in the ground plane (camera x-z)."""
    a = np.asarray(boxes1, dtype=float).reshape(-1, 7)
    b = np.asarray(boxes2, dtype=float).reshape(-1, 7)
    return np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 2] - b[None, :, 2])


def bev_center_similarity(boxes1: np.ndarray, boxes2: np.ndarray, zero_distance: float = 2.0) -> np.ndarray:
    """``max(0, 1 - d / zero_distance)`` of the BEV centre distance ``d`` (TrackEval's euclidean similarity)."""
    return np.clip(1.0 - bev_center_distance(boxes1, boxes2) / zero_distance, 0.0, None)


def bev_center_similarity_pairs(boxes1: np.ndarray, boxes2: np.ndarray, zero_distance: float = 2.0) -> np.ndarray:
    """:func:`bev_center_similarity` of aligned rows ``(P, 7), (P, 7) -> (P,)``."""
    a = np.asarray(boxes1, dtype=float).reshape(-1, 7)
    b = np.asarray(boxes2, dtype=float).reshape(-1, 7)
    return np.clip(1.0 - np.hypot(a[:, 0] - b[:, 0], a[:, 2] - b[:, 2]) / zero_distance, 0.0, None)


def iou_2d_pairs(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """:func:`iou_2d` of aligned rows ``(P, 4), (P, 4) -> (P,)``, with the same guards."""
    a = np.asarray(boxes1, dtype=float).reshape(-1, 4)
    b = np.asarray(boxes2, dtype=float).reshape(-1, 4)
    wh = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None)
    inter = wh[:, 0] * wh[:, 1]
    area1 = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area2 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area1 + area2 - inter
    inter[(area1 <= _EPS) | (area2 <= _EPS) | (union <= _EPS)] = 0
    union[union <= _EPS] = 1
    return inter / union
