"""Yaw from keypoints (paper 3.3): front, centre and back points of a 3D box lifted from 2D + depth.

Monocular yaw is ill-posed when regressed directly from a handful of labels; here the network
predicts the image projections of three points on the box's heading axis (front, centre, back, at
mid height) and their depths, and a binary *facing* variable. The yaw follows geometrically from
the lifted 3D points, so a well-defined 2D regression plus depth replaces the ambiguous angle.

Conventions are those of :mod:`bench.data.geometry`: KITTI camera frame (x right, y down,
z forward), boxes (x, y, z, h, w, l, yaw) with (x, y, z) the bottom centre and yaw = rotation_y;
a box's heading (its +length axis) in the camera frame is (cos yaw, 0, -sin yaw). Depth is the
camera-frame z coordinate. ``facing`` is 1 when the object's heading points towards the camera
(against the viewing ray to its centre), 0 when it points away.
"""

from __future__ import annotations

import numpy as np

from bench.data.geometry import wrap_angle

YAW_MODES: tuple[str, ...] = ("regression", "bins", "keypoints")

# |cos| of the angle between the lifted heading axis and the viewing ray below which the facing
# variable is not used: a near-crossing object's front and back are far apart in the image, so the
# keypoints themselves say which is which better than a facing bit sitting on its decision boundary.
# Provenance: ours (the paper's Eq. 4 has no such rule), set from this geometry (about 75 degrees off the
# ray), never compared on ground truth.
FACING_MARGIN = 0.25


def heading_axis(yaw: np.ndarray) -> np.ndarray:
    """Unit heading vectors ``(N, 3)`` in the camera frame of KITTI rotation_y angles."""
    yaw = np.asarray(yaw, dtype=np.float64).reshape(-1)
    return np.stack([np.cos(yaw), np.zeros_like(yaw), -np.sin(yaw)], axis=-1)


def _check_k(K: np.ndarray, n: int) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape == (3, 3):
        return np.broadcast_to(K, (n, 3, 3))
    if K.shape != (n, 3, 3):
        raise ValueError(f"intrinsics must be (3, 3) or ({n}, 3, 3), got {K.shape}")
    return K


def _project(points: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uvw = np.einsum("nij,nj->ni", K, points)
    return uvw[:, :2] / uvw[:, 2:3], points[:, 2].copy()


def lift(uv: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels ``(N, 2)`` at camera-frame depths ``(N,)`` -> 3D points ``(N, 3)``; K is (3, 3) or (N, 3, 3)."""
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    depth = np.asarray(depth, dtype=np.float64).reshape(-1)
    if len(depth) != len(uv):
        raise ValueError(f"got {len(uv)} pixels but {len(depth)} depths")
    K = _check_k(K, len(uv))
    rays = np.einsum("nij,nj->ni", np.linalg.inv(K), np.concatenate([uv, np.ones((len(uv), 1))], axis=1))
    return rays / rays[:, 2:3] * depth[:, None]


def keypoints_from_boxes(boxes3d: np.ndarray, K: np.ndarray) -> dict[str, np.ndarray]:
    """Front/centre/back keypoints of KITTI boxes ``(N, 7)``: 2D pixels, depths and facing.

    Returns ``front_uv, centre_uv, back_uv`` ``(N, 2)``, ``front_depth, centre_depth, back_depth``
    ``(N,)``, ``front_xyz, centre_xyz, back_xyz`` ``(N, 3)`` and ``facing`` ``(N,)`` in {0, 1}.
    The points lie on the box's heading axis at mid height, l/2 in front of and behind the centre.
    """
    boxes = np.asarray(boxes3d, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 7:
        raise ValueError(f"boxes3d must be (N, 7) = (x, y, z, h, w, l, yaw), got shape {boxes.shape}")
    K = _check_k(K, len(boxes))
    centre = np.stack([boxes[:, 0], boxes[:, 1] - boxes[:, 3] / 2, boxes[:, 2]], axis=-1)
    half = heading_axis(boxes[:, 6]) * (boxes[:, 5] / 2)[:, None]
    out: dict[str, np.ndarray] = {}
    for name, point in (("front", centre + half), ("centre", centre), ("back", centre - half)):
        uv, depth = _project(point, K)
        out[f"{name}_uv"], out[f"{name}_depth"], out[f"{name}_xyz"] = uv, depth, point
    out["facing"] = (np.einsum("ni,ni->n", half, centre) < 0).astype(np.float64)
    return out


def yaw_from_keypoints(front_uv: np.ndarray, front_depth: np.ndarray, back_uv: np.ndarray,
                       back_depth: np.ndarray, facing: np.ndarray, K: np.ndarray,
                       margin: float = FACING_MARGIN) -> np.ndarray:
    """KITTI rotation_y ``(N,)`` from front/back keypoints lifted to 3D, with facing resolving the direction.

    The heading is the ground-plane direction from the lifted back point to the lifted front point.
    ``facing`` (probabilities or 0/1) decides front from back where the heading axis is within
    ``acos(margin)`` of the viewing ray (there the two points nearly coincide in the image and only
    their noisy depth difference separates them); elsewhere the keypoints' own order is kept.
    Exact keypoints give the exact yaw.
    """
    front = lift(front_uv, front_depth, K)
    back = lift(back_uv, back_depth, K)
    facing = np.asarray(facing, dtype=np.float64).reshape(-1)
    if len(facing) != len(front):
        raise ValueError(f"got {len(front)} keypoint pairs but {len(facing)} facing values")
    axis = front - back
    axis[:, 1] = 0.0  # the heading lies in the ground plane (rotation about the camera's y axis)
    ray = (front + back) / 2
    ray[:, 1] = 0.0
    norm = np.linalg.norm(axis, axis=1) * np.linalg.norm(ray, axis=1)
    cos = np.einsum("ni,ni->n", axis, ray) / np.where(norm > 0, norm, 1.0)
    says_towards = cos < 0
    flip = (np.abs(cos) > margin) & (says_towards != (facing > 0.5))
    axis[flip] *= -1
    return wrap_angle(np.arctan2(-axis[:, 2], axis[:, 0]))


def alpha_to_yaw(alpha: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """KITTI observation angle -> rotation_y for an object whose centre is at camera (x, z)."""
    return wrap_angle(np.asarray(alpha, dtype=np.float64) + np.arctan2(x, z))
