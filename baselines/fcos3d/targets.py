"""FCOS3D training targets per point of every pyramid level, and the yaw direction-bin encoding.

Points: level ``l`` of stride ``s`` has one point per cell at ``(j s + s // 2, i s + s // 2)`` input px.
A point is positive for an object when it lies inside the object's 2D box, within ``radius`` x stride of the
object's **projected 3D centre** (centre sampling) and the object's regress distance at that point (the
largest distance to a 2D box edge) falls in the level's range; among several objects, the one whose
projected centre is nearest wins (FCOS3D's rule). Per positive point:

- ``offset``: projected centre minus point, in strides; ``depth``: log z; ``size``: log h, w, l;
- ``yaw``: the local yaw (observation angle) alpha; ``dir``: its direction bin (:func:`direction_target`);
- ``centerness``: exp(-2.5 d^2), d = distance to the projected centre / (sqrt(2) x radius x stride);
- ``weight``: the label's ``conf``.
Only rows with a 3D box are objects (the lifter trains on 3D labels only).
"""

from __future__ import annotations

import numpy as np

from baselines.centertrack.targets import Objects
from bench.data.geometry import box_center, observation_angle, project_points

DIR_OFFSET = np.pi / 4  # FCOS3D's dir_offset
CENTERNESS_ALPHA = 2.5


def limit_period(value: np.ndarray, offset: float, period: float) -> np.ndarray:
    """mmdet3d's ``limit_period``: ``value`` shifted by whole periods into [-offset * period, (1 - offset) * period)."""
    value = np.asarray(value, dtype=np.float64)
    return value - np.floor(value / period + offset) * period


def direction_target(alpha: np.ndarray, dir_offset: float = DIR_OFFSET) -> np.ndarray:
    """The 2-bin direction class of a yaw: which half-turn, starting at ``dir_offset``, it points into."""
    return np.clip(np.floor(limit_period(alpha - dir_offset, 0.0, 2 * np.pi) / np.pi), 0, 1).astype(np.int64)


def decode_direction(yaw: np.ndarray, dir_class: np.ndarray, dir_offset: float = DIR_OFFSET) -> np.ndarray:
    """Yaw regressed up to a half turn (the sine loss cannot tell yaw from yaw + pi) + its direction class."""
    return limit_period(yaw - dir_offset, 0.0, np.pi) + dir_offset + np.pi * np.asarray(dir_class, np.float64)


def points(input_size: tuple[int, int], strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Every point ``(P, 2)`` in input px, level by level, row-major, and each point's stride ``(P,)``."""
    w, h = input_size
    xy, stride = [], []
    for s in strides:
        ys, xs = np.meshgrid(np.arange(h // s), np.arange(w // s), indexing="ij")
        xy.append(np.stack([xs.ravel() * s + s // 2, ys.ravel() * s + s // 2], axis=1).astype(np.float64))
        stride.append(np.full(xs.size, s, dtype=np.float64))
    return np.concatenate(xy), np.concatenate(stride)


def level_ranges(strides: tuple[int, ...], bounds: tuple[float, ...]) -> np.ndarray:
    """``(L, 2)`` regress ranges from the boundaries between levels: (-1, b0), (b0, b1), ..., (b_last, inf)."""
    if len(bounds) != len(strides) - 1:
        raise ValueError(f"fcos3d: {len(strides)} levels need {len(strides) - 1} range boundaries, got {bounds}")
    edges = [-1.0, *[float(b) for b in bounds], np.inf]
    return np.array([[edges[i], edges[i + 1]] for i in range(len(strides))])


def render_targets(objects: Objects, intrinsics: np.ndarray, input_size: tuple[int, int], strides: tuple[int, ...],
                   ranges: np.ndarray, radius: float = 1.5) -> dict[str, np.ndarray]:
    """Per-point targets of one image (objects and intrinsics in input pixels)."""
    xy, stride = points(input_size, strides)
    level_of = np.repeat(np.arange(len(strides)), [int((input_size[0] // s) * (input_size[1] // s)) for s in strides])
    n = len(xy)
    t = {"cls": np.full(n, -1, np.int64), "weight": np.zeros(n, np.float32), "offset": np.zeros((n, 2), np.float32),
         "depth": np.zeros(n, np.float32), "size": np.zeros((n, 3), np.float32), "yaw": np.zeros(n, np.float32),
         "dir": np.zeros(n, np.int64), "centerness": np.zeros(n, np.float32)}
    has3d = np.isfinite(objects.boxes3d).all(axis=1) & (objects.boxes3d[:, 2] > 0.1)
    if not has3d.any():
        return t
    boxes, boxes3d = objects.boxes[has3d], objects.boxes3d[has3d]
    cls, conf = objects.cls[has3d], objects.conf[has3d]
    centre = project_points(box_center(boxes3d), intrinsics)  # (M, 2)
    dx = centre[None, :, 0] - xy[:, None, 0]  # (P, M)
    dy = centre[None, :, 1] - xy[:, None, 1]
    inside = ((xy[:, None, 0] > boxes[None, :, 0]) & (xy[:, None, 0] < boxes[None, :, 2])
              & (xy[:, None, 1] > boxes[None, :, 1]) & (xy[:, None, 1] < boxes[None, :, 3]))
    near = (np.abs(dx) < radius * stride[:, None]) & (np.abs(dy) < radius * stride[:, None])
    reach = np.maximum.reduce([xy[:, None, 0] - boxes[None, :, 0], xy[:, None, 1] - boxes[None, :, 1],
                               boxes[None, :, 2] - xy[:, None, 0], boxes[None, :, 3] - xy[:, None, 1]])
    lo, hi = ranges[level_of, 0][:, None], ranges[level_of, 1][:, None]
    ok = inside & near & (reach >= lo) & (reach <= hi)
    dist = np.where(ok, np.hypot(dx, dy), np.inf)
    best = dist.argmin(axis=1)
    pos = np.isfinite(dist[np.arange(n), best])
    p, m = np.flatnonzero(pos), best[pos]
    alpha = observation_angle(boxes3d)
    t["cls"][p] = cls[m]
    t["weight"][p] = conf[m]
    t["offset"][p] = np.stack([dx[p, m], dy[p, m]], axis=1) / stride[p, None]
    t["depth"][p] = np.log(boxes3d[m, 2])
    t["size"][p] = np.log(boxes3d[m, 3:6])
    t["yaw"][p] = alpha[m]
    t["dir"][p] = direction_target(alpha[m])
    rel = np.hypot(dx[p, m], dy[p, m]) / (np.sqrt(2) * radius * stride[p])
    t["centerness"][p] = np.exp(-CENTERNESS_ALPHA * rel**2)
    return t
