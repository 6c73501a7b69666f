"""FCOS3D outputs -> 3D detections: scores, boxes through the camera, rotated bird's-eye-view NMS.

Score of a point = sigmoid(cls) x sigmoid(centerness). Box: the projected centre is point + offset x stride;
z = exp(depth); the centre is unprojected at z, the bottom centre is h/2 below; dims exp(size); the local yaw
from the regressed angle and the direction class (:func:`~.targets.decode_direction`); ``rot_y = alpha +
atan2(u - cx, fx)``. Then, per class, greedy NMS on rotated BEV IoU (FCOS3D: threshold 0.8, at most 200).
"""

from __future__ import annotations

import numpy as np
import torch

from baselines.fcos3d.targets import decode_direction
from bench.data.geometry import wrap_angle
from bench.metrics.similarity import bev_footprints, convex_intersection_area


def bev_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotated bird's-eye-view IoU ``(N, M)`` of KITTI boxes (x-z footprints of size w x l, yaw)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 7), np.asarray(b, np.float64).reshape(-1, 7)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    rows, cols = np.meshgrid(np.arange(len(a)), np.arange(len(b)), indexing="ij")
    inter = convex_intersection_area(bev_footprints(a[rows.ravel()]), bev_footprints(b[cols.ravel()]))
    area_a, area_b = a[rows.ravel(), 4] * a[rows.ravel(), 5], b[cols.ravel(), 4] * b[cols.ravel(), 5]
    return (inter / np.maximum(area_a + area_b - inter, 1e-9)).reshape(len(a), len(b))


def rotated_nms(boxes3d: np.ndarray, scores: np.ndarray, threshold: float, max_keep: int | None = None
                ) -> np.ndarray:
    """Indices kept by greedy NMS on rotated BEV IoU, best score first (a box goes when IoU > threshold)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    iou = bev_iou(boxes3d, boxes3d)
    suppressed = np.zeros(len(order), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        if max_keep is not None and len(keep) >= max_keep:
            break
        suppressed |= iou[i] > threshold
    return np.array(keep, dtype=np.int64)


def boxes_at(flat: dict[str, torch.Tensor], i: int, idx: np.ndarray, xy: np.ndarray, stride: np.ndarray,
             intrinsics: np.ndarray) -> np.ndarray:
    """3D boxes ``(N, 7)`` decoded from image ``i``'s outputs at points ``idx`` (with positions and strides)."""
    idx = np.asarray(idx, dtype=np.int64)
    if not len(idx):
        return np.zeros((0, 7))

    def get(name: str) -> np.ndarray:
        return flat[name][i, torch.as_tensor(idx)].detach().cpu().numpy().astype(np.float64).reshape(len(idx), -1)

    k = np.asarray(intrinsics, np.float64)
    uv = xy[idx] + get("offset") * stride[idx, None]
    z = np.exp(np.clip(get("depth")[:, 0], -5, 6))
    dims = np.exp(np.clip(get("size"), -5, 5))
    alpha = wrap_angle(decode_direction(get("yaw")[:, 0], get("dir").argmax(axis=1)))
    x = (uv[:, 0] - k[0, 2]) * z / k[0, 0]
    y = (uv[:, 1] - k[1, 2]) * z / k[1, 1]
    rot_y = wrap_angle(alpha + np.arctan2(uv[:, 0] - k[0, 2], k[0, 0]))
    return np.stack([x, y + dims[:, 0] / 2, z, dims[:, 0], dims[:, 1], dims[:, 2], rot_y], axis=1)


def point_scores(flat: dict[str, torch.Tensor], i: int) -> np.ndarray:
    """``(P, C)`` detection scores of image ``i``: sigmoid(cls) x sigmoid(centerness)."""
    s = torch.sigmoid(flat["cls"][i]) * torch.sigmoid(flat["centerness"][i])
    return s.detach().cpu().numpy().astype(np.float64)


def decode(flat: dict[str, torch.Tensor], i: int, xy: np.ndarray, stride: np.ndarray, intrinsics: np.ndarray,
           score_thresh: float = 0.05, nms_pre: int = 1000, nms_thresh: float = 0.8, max_per_img: int = 200
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes3d (N, 7), scores (N,), class index (N,)) of image ``i`` after per-class rotated NMS."""
    scores = point_scores(flat, i)
    best_cls, best = scores.argmax(axis=1), scores.max(axis=1)
    idx = np.flatnonzero(best > score_thresh)
    idx = idx[np.argsort(-best[idx], kind="stable")[:nms_pre]]
    boxes = boxes_at(flat, i, idx, xy, stride, intrinsics)
    out_b, out_s, out_c = [], [], []
    for c in np.unique(best_cls[idx]):
        sel = np.flatnonzero(best_cls[idx] == c)
        keep = sel[rotated_nms(boxes[sel], best[idx][sel], nms_thresh)]
        out_b.append(boxes[keep])
        out_s.append(best[idx][keep])
        out_c.append(np.full(len(keep), c, dtype=np.int64))
    if not out_b:
        return np.zeros((0, 7)), np.zeros(0), np.zeros(0, np.int64)
    b, s, c = np.concatenate(out_b), np.concatenate(out_s), np.concatenate(out_c)
    top = np.argsort(-s, kind="stable")[:max_per_img]
    return b[top], s[top], c[top]
