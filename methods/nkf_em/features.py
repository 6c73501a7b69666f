"""What the association network sees: measurements, appearance descriptors and pairwise features.

Boxes are measured as ``z = (cx, cy, w, h)`` divided by the image height, so that one set of noise
parameters fits every resolution. The appearance descriptor of a detection is the mean colour of the upper
and of the lower half of its box (6 numbers in [0, 1]): cheap, and enough to tell a red coat from a blue one
when two pedestrians cross. Pairwise features between a Kalman-predicted track and a detection: the
innovation in units of its predicted standard deviation (4), the log Mahalanobis distance, the IoU of the
predicted and detected boxes, the appearance distance and the detection's score.
"""

from __future__ import annotations

import numpy as np
import torch

NUM_FEATURES = 8
APPEARANCE_DIM = 6
MIN_SIZE = 1e-3  # image heights: the smallest box width or height a measurement or a filtered state may have


def appearance(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(N, 6)`` mean RGB of the upper and lower half of each ``x1 y1 x2 y2`` box (pixels) of ``image``."""
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), APPEARANCE_DIM), dtype=np.float64)
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.float64)):
        c1, c2 = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.ceil(x2), 1, w))
        r1, r2 = int(np.clip(np.floor(y1), 0, h - 1)), int(np.clip(np.ceil(y2), 1, h))
        mid = max(r1 + 1, (r1 + r2) // 2)
        for half, (a, b) in enumerate(((r1, mid), (mid, r2))):
            patch = image[a:max(b, a + 1), c1:max(c2, c1 + 1)]
            if patch.size:
                out[k, 3 * half:3 * half + 3] = patch.reshape(-1, 3).mean(0) / 255.0
    return out


def boxes_to_z(boxes: np.ndarray, scale: float) -> np.ndarray:
    """``x1 y1 x2 y2`` pixels -> ``cx cy w h`` in image heights."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, np.maximum(w, MIN_SIZE * scale),
                     np.maximum(h, MIN_SIZE * scale)], 1) / scale


def z_to_boxes(z: np.ndarray, scale: float) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64).reshape(-1, 4) * scale
    return np.stack([z[:, 0] - z[:, 2] / 2, z[:, 1] - z[:, 3] / 2, z[:, 0] + z[:, 2] / 2, z[:, 1] + z[:, 3] / 2], 1)


def iou_z(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU ``(N, M)`` of boxes given as ``cx cy w h`` rows."""
    a1, a2 = a[:, None, :2] - a[:, None, 2:] / 2, a[:, None, :2] + a[:, None, 2:] / 2
    b1, b2 = b[None, :, :2] - b[None, :, 2:] / 2, b[None, :, :2] + b[None, :, 2:] / 2
    inter = torch.clamp(torch.minimum(a2, b2) - torch.maximum(a1, b1), min=0).prod(-1)
    area_a = a[:, 2:].clamp(min=0).prod(-1)[:, None]
    area_b = b[:, 2:].clamp(min=0).prod(-1)[None, :]
    return inter / (area_a + area_b - inter).clamp(min=1e-12)


def pair_mahalanobis(zhat: torch.Tensor, S: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared Mahalanobis distances ``(N, M)`` of detections ``z`` (M, 4) from predictions ``zhat`` (N, 4) with
    innovation covariances ``S`` (N, 4, 4), and ``log det(2 pi S)`` per track (N,)."""
    chol = torch.linalg.cholesky(S)
    r = (z[None, :, :] - zhat[:, None, :]).transpose(1, 2)  # (N, 4, M)
    sol = torch.cholesky_solve(r, chol)
    d2 = (r * sol).sum(1)
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1) + 4 * float(np.log(2 * np.pi))
    return d2, logdet


def pair_features(zhat: torch.Tensor, S: torch.Tensor, z: torch.Tensor, d2: torch.Tensor,
                  app_track: torch.Tensor, app_det: torch.Tensor, score: torch.Tensor,
                  use_appearance: bool = True) -> torch.Tensor:
    """``(N, M, 8)`` features of every (track, detection) pair (see the module docstring)."""
    std = torch.sqrt(torch.diagonal(S, dim1=-2, dim2=-1))  # (N, 4)
    r = (z[None, :, :] - zhat[:, None, :]) / std[:, None, :]
    n, m = d2.shape
    app = ((app_track[:, None, :] - app_det[None, :, :]) ** 2).sum(-1) * 10.0
    if not use_appearance:
        app = torch.zeros_like(app)
    return torch.cat([
        torch.clamp(r, -10, 10) / 3,
        torch.log1p(d2)[..., None] / 3,
        iou_z(zhat, z)[..., None],
        app[..., None],
        score[None, :, None].expand(n, m, 1),
    ], -1)
