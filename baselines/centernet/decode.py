"""CenterNet "ddd" outputs -> 3D detections, and the heads read at a given 2D box (the lifter's fallback).

Peaks: 3x3 max-pool NMS on the class heatmaps, top K. For a peak at output cell (i, j): 2D centre
``(j + reg) * 4`` input px, 2D size ``wh * 4``; depth ``1/sigmoid(dep) - 1``; the 3D centre is the 2D centre
unprojected at that depth (CenterNet's approximation: the 2D box centre stands for the projected 3D centre);
the bottom centre is h/2 below; alpha from the bin whose in-bin logit is larger (CenterNet's ``get_alpha``);
``rot_y = alpha + atan2(u - cx, fx)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from baselines.centernet.model import depth_from_raw
from baselines.centernet.targets import BIN_CENTRES
from baselines.centertrack.targets import DOWN
from bench.data.geometry import wrap_angle


@dataclass
class Detections3D:
    """Detections of one image; image coordinates in the pixels of the intrinsics given to the decoder."""

    score: np.ndarray  # (N,)
    cls: np.ndarray  # (N,) class index
    boxes: np.ndarray  # (N, 4) x1 y1 x2 y2
    boxes3d: np.ndarray  # (N, 7) x y z h w l yaw (camera frame, bottom centre)

    def __len__(self) -> int:
        return len(self.score)

    def select(self, keep: np.ndarray) -> Detections3D:
        return Detections3D(self.score[keep], self.cls[keep], self.boxes[keep], self.boxes3d[keep])

    def scaled(self, sx: float, sy: float) -> Detections3D:
        """2D boxes divided by (sx, sy): from input pixels back to the original image's."""
        return Detections3D(self.score, self.cls, self.boxes / np.array([sx, sy, sx, sy]), self.boxes3d)


def decode_alpha(rot: np.ndarray) -> np.ndarray:
    """(N, 8) bin outputs -> alpha: the bin with the larger in-bin logit, its centre + atan2(sin, cos)."""
    rot = np.asarray(rot, dtype=np.float64).reshape(-1, 8)
    first = rot[:, 1] > rot[:, 5]
    a0 = np.arctan2(rot[:, 2], rot[:, 3]) + BIN_CENTRES[0]
    a1 = np.arctan2(rot[:, 6], rot[:, 7]) + BIN_CENTRES[1]
    return wrap_angle(np.where(first, a0, a1))


def boxes3d_from(centre_uv: np.ndarray, depth: np.ndarray, dims: np.ndarray, rot: np.ndarray,
                 intrinsics: np.ndarray) -> np.ndarray:
    """KITTI boxes ``(N, 7)`` from 2D centres (px), depths, dims (h, w, l) and 8-number rotations."""
    k = np.asarray(intrinsics, dtype=np.float64)
    u, v = centre_uv[:, 0], centre_uv[:, 1]
    x = (u - k[0, 2]) * depth / k[0, 0]
    y = (v - k[1, 2]) * depth / k[1, 1]
    rot_y = wrap_angle(decode_alpha(rot) + np.arctan2(u - k[0, 2], k[0, 0]))
    dims = np.maximum(dims, 0.05)  # an untrained head can say non-positive sizes
    return np.stack([x, y + dims[:, 0] / 2, depth, dims[:, 0], dims[:, 1], dims[:, 2], rot_y], axis=1)


def _at(out: dict[str, torch.Tensor], i: int, name: str, idx: torch.Tensor) -> np.ndarray:
    m = out[name][i].float()
    return m.reshape(m.shape[0], -1)[:, idx].T.detach().cpu().numpy().astype(np.float64)


def decode(out: dict[str, torch.Tensor], intrinsics: np.ndarray, k: int = 100, threshold: float = 0.0,
           heatmap: torch.Tensor | None = None) -> list[Detections3D]:
    """Detections per image of a batch of raw outputs; ``intrinsics`` (3, 3) or (B, 3, 3) of the input image.

    ``heatmap`` replaces ``sigmoid(out["hm"])`` (the encode/decode round trip passes its target here)."""
    hm = torch.sigmoid(out["hm"].float()) if heatmap is None else heatmap.float()
    b, c, h, w = hm.shape
    peaks = hm * (F.max_pool2d(hm, 3, 1, 1) == hm).float()
    scores, flat = peaks.reshape(b, -1).topk(min(k, c * h * w))
    cls, ind = flat // (h * w), flat % (h * w)
    kmats = np.broadcast_to(np.asarray(intrinsics, np.float64), (b, 3, 3))
    results = []
    for i in range(b):
        keep = scores[i] > threshold
        idx = ind[i][keep]
        xy = np.stack([(idx % w).cpu().numpy(), (idx // w).cpu().numpy()], 1).astype(np.float64)
        ct = (xy + _at(out, i, "reg", idx)) * DOWN
        wh = np.maximum(_at(out, i, "wh", idx), 0.0) * DOWN
        depth = depth_from_raw(torch.from_numpy(_at(out, i, "dep", idx)[:, 0])).numpy()
        boxes3d = boxes3d_from(ct, depth, _at(out, i, "dim", idx), _at(out, i, "rot", idx), kmats[i])
        results.append(Detections3D(scores[i][keep].detach().cpu().numpy().astype(np.float64),
                                    cls[i][keep].cpu().numpy().astype(np.int64),
                                    np.concatenate([ct - wh / 2, ct + wh / 2], 1), boxes3d))
    return results


def heads_at(out: dict[str, torch.Tensor], i: int, boxes: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """3D boxes ``(N, 7)`` read from image ``i``'s heads at the output cells of given 2D box centres (input px).

    The lifter's fallback when no detection matches a tracked box: depth, size and rotation are the network's
    at that place; the centre is the given box's, unprojected."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros((0, 7))
    _, _, h, w = out["hm"].shape
    ct = (boxes[:, :2] + boxes[:, 2:]) / 2
    cell = np.floor(ct / DOWN).astype(np.int64)
    cell[:, 0] = cell[:, 0].clip(0, w - 1)
    cell[:, 1] = cell[:, 1].clip(0, h - 1)
    idx = torch.from_numpy(cell[:, 1] * w + cell[:, 0])
    depth = depth_from_raw(torch.from_numpy(_at(out, i, "dep", idx)[:, 0])).numpy()
    return boxes3d_from(ct, depth, _at(out, i, "dim", idx), _at(out, i, "rot", idx), intrinsics)
