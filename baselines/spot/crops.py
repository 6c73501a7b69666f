"""Template and search crops, cut by one affine warp so that augmentation and box targets stay exact.

A crop is a square region of the image around a box (SiamFC's context rule: side
``sqrt((w + p)(h + p))`` with ``p = (w + h) / 2``), resampled to a fixed size with ``grid_sample``. The
search region is ``search_size / template_size`` times the template region, so an object has the same
size in pixels in both crops (the Siamese correlation compares like with like).

Augmentation is part of the warp (shift, scale, rotation, horizontal flip) plus colour (jitter, grey):
the same affine matrix that cuts the crop maps a box into crop coordinates, so a target box is never
approximated by re-cropping. SPOT gives the teacher weak augmentation (small jitter) and the student strong
augmentation (SPOT's ``aug_settings``: grey 0.05, colour jitter 0.2, rotation 10 degrees, flips).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """How much a crop is perturbed: ``shift`` in units of sqrt(w h) of the box, ``scale`` as log-scale range."""

    shift: float = 0.0
    scale: float = 0.0
    rotation_deg: float = 0.0
    flip: float = 0.0
    gray: float = 0.0
    jitter: float = 0.0


NONE = Augment()
# The teacher's weak augmentation: a little crop jitter, no colour change (its pseudo boxes must be stable).
WEAK = Augment(shift=0.05, scale=0.05)
# The student's strong augmentation (SPOT's aug_settings) for the search crop.
STRONG = Augment(shift=0.0, scale=0.0, rotation_deg=10.0, flip=0.5, gray=0.05, jitter=0.2)


def context_side(boxes: np.ndarray) -> np.ndarray:
    """SiamFC's template side for ``(N, 4)`` x1 y1 x2 y2 boxes: the box plus half its perimeter as context."""
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    p = (w + h) / 2
    return np.sqrt((w + p) * (h + p))


def crop_warps(centres: np.ndarray, sides: np.ndarray, image_wh: tuple[int, int], aug: Augment,
               rng: np.random.Generator | None, ref_sizes: np.ndarray | None = None,
               flips: np.ndarray | None = None) -> np.ndarray:
    """``(N, 2, 3)`` affine matrices (crop [-1, 1] -> image [-1, 1], ``align_corners=False``).

    ``centres`` ``(N, 2)`` and ``sides`` ``(N,)`` are the crop regions in image pixels; ``ref_sizes`` (N,)
    is sqrt(w h) of each box, the unit of ``aug.shift`` (the crop side when not given). ``flips`` (N,) bool, when
    given, decides the horizontal flips instead of ``aug.flip`` (a pair's template and search flip together)."""
    n = len(centres)
    W, H = image_wh
    cx, cy = centres[:, 0].astype(float).copy(), centres[:, 1].astype(float).copy()
    side = sides.astype(float).copy()
    angle = np.zeros(n)
    flip = np.ones(n)
    if rng is not None:
        unit = side if ref_sizes is None else ref_sizes
        if aug.shift:
            cx += rng.uniform(-1, 1, n) * aug.shift * unit
            cy += rng.uniform(-1, 1, n) * aug.shift * unit
        if aug.scale:
            side *= np.exp(rng.uniform(-aug.scale, aug.scale, n))
        if aug.rotation_deg:
            angle = np.deg2rad(rng.uniform(-aug.rotation_deg, aug.rotation_deg, n))
        if aug.flip and flips is None:
            flip = np.where(rng.random(n) < aug.flip, -1.0, 1.0)
    if flips is not None:
        flip = np.where(flips, -1.0, 1.0)
    cos, sin = np.cos(angle), np.sin(angle)
    # Crop coordinates u in [-1, 1] -> image pixels: centre + side/2 * R(angle) @ diag(flip, 1) @ u; then to [-1, 1].
    theta = np.zeros((n, 2, 3))
    theta[:, 0, 0] = side / 2 * cos * flip / (W / 2)
    theta[:, 0, 1] = -side / 2 * sin / (W / 2)
    theta[:, 1, 0] = side / 2 * sin * flip / (H / 2)
    theta[:, 1, 1] = side / 2 * cos / (H / 2)
    theta[:, 0, 2] = cx / (W / 2) - 1
    theta[:, 1, 2] = cy / (H / 2) - 1
    return theta


def cut(images: torch.Tensor, theta: np.ndarray, size: int) -> torch.Tensor:
    """Crops ``(N, 3, size, size)`` of ``images`` ``(N, 3, H, W)`` (zero-mean floats: padding is mean grey)."""
    grid = F.affine_grid(torch.as_tensor(theta, dtype=torch.float32), [len(theta), 3, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def boxes_to_crop(boxes: np.ndarray, theta: np.ndarray, image_wh: tuple[int, int], size: int) -> np.ndarray:
    """Image boxes ``(N, 4)`` in crop pixels under the warps ``theta``: the bounding box of the mapped corners."""
    W, H = image_wh
    corners = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [0, 3]], boxes[:, [2, 3]]], axis=1)  # (N, 4, 2)
    norm = np.stack([corners[..., 0] / (W / 2) - 1, corners[..., 1] / (H / 2) - 1], axis=-1)
    A, t = theta[:, :, :2], theta[:, :, 2]
    u = np.einsum("nij,nkj->nki", np.linalg.inv(A), norm - t[:, None, :])  # image [-1, 1] -> crop [-1, 1]
    px = (u + 1) * size / 2
    return np.concatenate([px.min(axis=1), px.max(axis=1)], axis=1)


def boxes_from_crop(boxes: np.ndarray, theta: np.ndarray, image_wh: tuple[int, int], size: int) -> np.ndarray:
    """Crop-pixel boxes back to image pixels (exact for the unrotated, unflipped warps used at inference)."""
    W, H = image_wh
    u = boxes.reshape(-1, 2, 2) * 2 / size - 1  # (N, 2 corners, xy)
    A, t = theta[:, :, :2], theta[:, :, 2]
    norm = np.einsum("nij,nkj->nki", A, u) + t[:, None, :]
    px = np.stack([(norm[..., 0] + 1) * W / 2, (norm[..., 1] + 1) * H / 2], axis=-1)
    return np.concatenate([px.min(axis=1), px.max(axis=1)], axis=1)


def colour(crops: torch.Tensor, aug: Augment, rng: np.random.Generator | None) -> torch.Tensor:
    """Colour augmentation of zero-mean crops: per-crop brightness/contrast jitter and grey with probability."""
    if rng is None or (not aug.jitter and not aug.gray):
        return crops
    n = len(crops)
    out = crops
    if aug.jitter:
        contrast = torch.as_tensor(rng.uniform(1 - aug.jitter, 1 + aug.jitter, (n, 1, 1, 1)), dtype=crops.dtype)
        bright = torch.as_tensor(rng.uniform(-aug.jitter, aug.jitter, (n, 3, 1, 1)) / 2, dtype=crops.dtype)
        out = out * contrast + bright
    if aug.gray:
        grey = torch.as_tensor(rng.random(n) < aug.gray)
        out = torch.where(grey[:, None, None, None], out.mean(dim=1, keepdim=True).expand_as(out), out)
    return out


def to_input(frame: np.ndarray) -> torch.Tensor:
    """An ``(H, W, 3)`` uint8 image as a zero-mean ``(3, H, W)`` float tensor (grey 0: crop padding)."""
    # A copy: the views hand out read-only images, which torch.from_numpy would only warn about.
    return torch.from_numpy(np.array(frame, dtype=np.float32)).permute(2, 0, 1).div_(255.0).sub_(0.5)


def hanning_window(cells: int) -> np.ndarray:
    """The outer product of two Hanning windows over the score map, as TransT's tracker builds it."""
    hann = np.hanning(cells)
    return np.outer(hann, hann)


__all__ = ["Augment", "NONE", "STRONG", "WEAK", "boxes_from_crop", "boxes_to_crop", "colour", "context_side",
           "crop_warps", "cut", "hanning_window", "to_input"]
