"""Box geometry shared by the synthetic world, the format readers/writers and the metrics.

Camera frame: KITTI convention, x right, y down, z forward. A 3D box is (x, y, z, h, w, l, yaw)
with (x, y, z) the bottom centre and yaw = KITTI rotation_y, a rotation about the camera's y
axis; yaw 0 points the box's length along +x. World/global frames are right-handed with z up
(nuScenes, Waymo); ``cam_to_world`` 4x4 matrices map camera coordinates into them.
"""

from __future__ import annotations

import numpy as np


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """8 corners of KITTI camera-frame boxes: ``(N, 7) -> (N, 8, 3)``.

    Corner order: the 4 bottom corners (front-left, front-right, back-right, back-left as seen
    along the box's heading), then the 4 top corners in the same order.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    x, y, z, h, w, l, yaw = boxes.T
    dx = np.array([0.5, 0.5, -0.5, -0.5, 0.5, 0.5, -0.5, -0.5])
    dy = np.array([0, 0, 0, 0, -1, -1, -1, -1], dtype=np.float64)
    dz = np.array([0.5, -0.5, -0.5, 0.5, 0.5, -0.5, -0.5, 0.5])
    local = np.stack([l[:, None] * dx, h[:, None] * dy, w[:, None] * dz], axis=-1)  # (N, 8, 3)
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    # Rotation about y by yaw: x' = c x + s z, z' = -s x + c z.
    rx = c * local[..., 0] + s * local[..., 2]
    rz = -s * local[..., 0] + c * local[..., 2]
    return np.stack([rx + x[:, None], local[..., 1] + y[:, None], rz + z[:, None]], axis=-1)


def box_center(boxes: np.ndarray) -> np.ndarray:
    """Geometric centre of KITTI boxes (the bottom centre lifted by h/2): ``(N, 7) -> (N, 3)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    return np.stack([boxes[:, 0], boxes[:, 1] - boxes[:, 3] / 2, boxes[:, 2]], axis=-1)


def project_points(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points ``(..., 3)`` to pixels ``(..., 2)``."""
    points = np.asarray(points, dtype=np.float64)
    uvw = points @ np.asarray(intrinsics, dtype=np.float64).T
    return uvw[..., :2] / uvw[..., 2:3]


def project_boxes_2d(boxes: np.ndarray, intrinsics: np.ndarray, image_size: tuple[int, int] | None = None,
                     min_depth: float = 0.1) -> np.ndarray:
    """Tight 2D boxes ``(N, 4)`` (x1 y1 x2 y2) around projected 3D boxes.

    Boxes that cross the image plane are clipped at ``min_depth`` along each edge before projecting,
    so a car alongside the camera still gets a sensible box. With ``image_size`` (width, height),
    the result is clipped to the image. Boxes entirely behind the camera give NaN.
    """
    corners = box_corners(boxes)
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4],
                      [0, 4], [1, 5], [2, 6], [3, 7]])
    a, b = corners[:, edges[:, 0]], corners[:, edges[:, 1]]  # (N, 12, 3)
    za, zb = a[..., 2], b[..., 2]
    # Points on each edge: the endpoints in front of the camera, plus the crossing of z = min_depth.
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (min_depth - za) / (zb - za)
    crossing = a + np.clip(t, 0, 1)[..., None] * (b - a)
    crosses = (za - min_depth) * (zb - min_depth) < 0
    candidates = np.concatenate([a, b, crossing], axis=1)  # (N, 36, 3)
    valid = np.concatenate([za >= min_depth, zb >= min_depth, crosses], axis=1)
    uv = project_points(np.where(valid[..., None], candidates, 1.0), intrinsics)
    u, v = uv[..., 0], uv[..., 1]
    out = np.stack([np.where(valid, u, np.inf).min(1), np.where(valid, v, np.inf).min(1),
                    np.where(valid, u, -np.inf).max(1), np.where(valid, v, -np.inf).max(1)], axis=1)
    out[~valid.any(axis=1)] = np.nan  # entirely behind the camera
    if image_size is not None:
        w, h = image_size
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, w)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, h)
    return out


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4x4 rigid transform to points ``(..., 3)``."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ matrix[:3, :3].T + matrix[:3, 3]


def yaw_to_heading(yaw: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """KITTI rotation_y in a camera -> heading angle about the world z axis (radians, CCW from +x)."""
    yaw = np.asarray(yaw, dtype=np.float64)
    forward_cam = np.stack([np.cos(yaw), np.zeros_like(yaw), -np.sin(yaw)], axis=-1)
    forward_world = forward_cam @ np.asarray(cam_to_world, dtype=np.float64)[:3, :3].T
    return np.arctan2(forward_world[..., 1], forward_world[..., 0])


def heading_to_yaw(heading: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """Inverse of :func:`yaw_to_heading` for a camera whose y axis points along world -z."""
    heading = np.asarray(heading, dtype=np.float64)
    forward_world = np.stack([np.cos(heading), np.sin(heading), np.zeros_like(heading)], axis=-1)
    forward_cam = forward_world @ np.asarray(cam_to_world, dtype=np.float64)[:3, :3]
    return np.arctan2(-forward_cam[..., 2], forward_cam[..., 0])


def heading_to_quaternion(heading: np.ndarray) -> np.ndarray:
    """Rotation about world z by ``heading`` as nuScenes (w, x, y, z) quaternions ``(N, 4)``."""
    heading = np.asarray(heading, dtype=np.float64)
    zeros = np.zeros_like(heading)
    return np.stack([np.cos(heading / 2), zeros, zeros, np.sin(heading / 2)], axis=-1)


def quaternion_to_heading(quaternion: np.ndarray) -> np.ndarray:
    """Yaw about world z of (w, x, y, z) quaternions, as nuScenes' ``quaternion_yaw`` defines it."""
    q = np.asarray(quaternion, dtype=np.float64).reshape(-1, 4)
    w, x, y, z = q.T
    # The x axis of the rotated frame, projected on the ground plane.
    fx = 1 - 2 * (y * y + z * z)
    fy = 2 * (x * y + w * z)
    return np.arctan2(fy, fx)


def boxes_to_world(boxes: np.ndarray, cam_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KITTI camera-frame boxes -> (geometric centres ``(N, 3)``, headings ``(N,)``) in the world."""
    centres = transform_points(box_center(boxes), cam_to_world)
    return centres, yaw_to_heading(np.asarray(boxes, dtype=np.float64).reshape(-1, 7)[:, 6], cam_to_world)


def boxes_from_world(centres: np.ndarray, headings: np.ndarray, sizes_hwl: np.ndarray,
                     cam_to_world: np.ndarray) -> np.ndarray:
    """World centres + headings + (h, w, l) -> KITTI camera-frame boxes ``(N, 7)``."""
    world_to_cam = np.linalg.inv(np.asarray(cam_to_world, dtype=np.float64))
    centre_cam = transform_points(centres, world_to_cam).reshape(-1, 3)
    sizes = np.asarray(sizes_hwl, dtype=np.float64).reshape(-1, 3)
    yaw = heading_to_yaw(headings, cam_to_world).reshape(-1)
    bottom = centre_cam + np.stack([np.zeros(len(sizes)), sizes[:, 0] / 2, np.zeros(len(sizes))], axis=-1)
    return np.concatenate([bottom, sizes, yaw[:, None]], axis=1)


def observation_angle(boxes: np.ndarray) -> np.ndarray:
    """KITTI alpha: the yaw relative to the ray from the camera to the box centre, in [-pi, pi)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    alpha = boxes[:, 6] - np.arctan2(boxes[:, 0], boxes[:, 2])
    return wrap_angle(alpha)


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(angle, dtype=np.float64) + np.pi) % (2 * np.pi) - np.pi
