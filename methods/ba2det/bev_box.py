"""Fitting a 3D box to an object's points: the paper's orientation search (Eq. 4) and height from the points.

Eq. 4 of paper 002: over yaw in [0, pi), the BEV box of minimal area at that yaw (the points' extent along the
two rotated axes), scored by the sum over points of the l2 distance to the box's nearest edge; the yaw with the
smallest sum wins (after Zhang et al. 2017's L-shape fitting: reconstructed points lie on the visible faces).
The height is the spread of the points along the vertical axis, the box standing on the lowest point.

Frames: the points are in the world frame with z up (the synthetic world's and Waymo's); the box is returned
there as (centre x, y, z of the geometric centre, length, width, height, heading about +z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WorldBox:
    """A box in the world frame: geometric centre, size and heading (radians about +z, length along heading)."""

    centre: np.ndarray  # (3,)
    length: float
    width: float
    height: float
    heading: float


def edge_distance(points_xy: np.ndarray, yaw: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Eq. 4's cost at one yaw: the summed distance of the points to the nearest edge of their minimal-area
    box at that yaw; returns (cost, box min corner, box max corner) in the rotated frame."""
    c, s = np.cos(yaw), np.sin(yaw)
    # Coordinates along the box's length axis (heading yaw) and its width axis.
    u = points_xy[:, 0] * c + points_xy[:, 1] * s
    v = -points_xy[:, 0] * s + points_xy[:, 1] * c
    lo = np.array([u.min(), v.min()])
    hi = np.array([u.max(), v.max()])
    # A point inside the box is nearest to one of its four edges: the smallest of the four gaps.
    gaps = np.stack([u - lo[0], hi[0] - u, v - lo[1], hi[1] - v], axis=1)
    return float(gaps.min(axis=1).sum()), lo, hi


def search_orientation(points_xy: np.ndarray, steps: int = 180) -> float:
    """The yaw in [0, pi) minimising :func:`edge_distance`, searched on ``steps`` equal steps (a box is symmetric
    under a half turn, so [0, pi) covers every box; which end is the front stays unknown, as in the paper)."""
    points_xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    if len(points_xy) < 2:
        return 0.0
    centred = points_xy - points_xy.mean(axis=0)
    yaws = np.arange(steps) * (np.pi / steps)
    # edge_distance for every yaw at once: (steps, N) coordinates along the length and width axes.
    c, s = np.cos(yaws)[:, None], np.sin(yaws)[:, None]
    u = centred[:, 0] * c + centred[:, 1] * s
    v = -centred[:, 0] * s + centred[:, 1] * c
    gaps = np.minimum(np.minimum(u - u.min(axis=1, keepdims=True), u.max(axis=1, keepdims=True) - u),
                      np.minimum(v - v.min(axis=1, keepdims=True), v.max(axis=1, keepdims=True) - v))
    return float(yaws[int(np.argmin(gaps.sum(axis=1)))])


def fit_box(points: np.ndarray, steps: int = 180) -> WorldBox:
    """The tight box of an object's world points ``(N, 3)``: orientation search in BEV, then the minimal-area
    extent at that yaw, the longer side taken as the length (heading along it), the height from the z spread."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    yaw = search_orientation(points[:, :2], steps)
    _, lo, hi = edge_distance(points[:, :2], yaw)
    extent = hi - lo
    mid = (lo + hi) / 2
    c, s = np.cos(yaw), np.sin(yaw)
    centre_xy = np.array([mid[0] * c - mid[1] * s, mid[0] * s + mid[1] * c])
    length, width, heading = float(extent[0]), float(extent[1]), yaw
    if width > length:  # the heading runs along the longer side
        length, width, heading = width, length, yaw + np.pi / 2
    z_lo, z_hi = float(points[:, 2].min()), float(points[:, 2].max())
    heading = float((heading + np.pi) % (2 * np.pi) - np.pi)
    return WorldBox(centre=np.array([centre_xy[0], centre_xy[1], (z_lo + z_hi) / 2]), length=length, width=width,
                    height=z_hi - z_lo, heading=heading)
