"""SPOT's base tracker, small: a Siamese template/search network with an IoU-prediction head.

SPOT trains either TransT or Ocean; this is the Ocean shape at CPU size, which fits the public code's
second base tracker: a shared convolutional backbone (stride 4), a depthwise cross-correlation of the
template features over the search features, and three heads on the correlation map:

- ``cls``: one foreground logit per cell (cell centres are positions of the template in the search crop);
- ``box``: the distances (left, top, right, bottom) from the cell centre to the box edges, in crop pixels;
- ``iou``: the predicted IoU of that cell's box with the target (SPOT's IoU-prediction head; its output is
  the confidence the IoU filter thresholds at 0.85).

:func:`decode` is SPOT's teacher decoding and TransT's tracker step: the score map blended with a Hanning
window (``0.4 * window + 0.6 * score``, "temporal calibration": a box far from the previous position needs
a higher score), the argmax cell's box and predicted IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.spot.crops import hanning_window


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def depthwise_xcorr(search: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each sample's template features ``(N, C, k, k)`` correlated, channel by channel, over its search
    features ``(N, C, S, S)``: ``(N, C, S - k + 1, S - k + 1)`` (SiamRPN++ / Ocean)."""
    n, c = kernel.shape[:2]
    out = F.conv2d(search.reshape(1, n * c, *search.shape[2:]), kernel.reshape(n * c, 1, *kernel.shape[2:]),
                   groups=n * c)
    return out.reshape(n, c, *out.shape[2:])


@dataclass
class Heads:
    """The network's output on a batch: logits ``(N, G, G)``, boxes ``(N, G, G, 4)`` x1 y1 x2 y2 in crop
    pixels, predicted IoU ``(N, G, G)`` in [0, 1]."""

    logits: torch.Tensor
    boxes: torch.Tensor
    iou: torch.Tensor


class SiameseTracker(nn.Module):
    """Template ``(N, 3, T, T)`` and search ``(N, 3, S, S)`` crops in, :class:`Heads` on a G x G grid out."""

    stride = 4
    centres: torch.Tensor

    def __init__(self, width: int = 32, template_size: int = 32, search_size: int = 80) -> None:
        super().__init__()
        if template_size % self.stride or search_size % self.stride or search_size <= template_size:
            raise ValueError(f"spot: crop sizes must be multiples of {self.stride} with search > template, got "
                             f"{template_size} / {search_size}")
        self.template_size, self.search_size = template_size, search_size
        w = width
        self.backbone = nn.Sequential(_conv(3, w // 2), _conv(w // 2, w, 2), _conv(w, w), _conv(w, 2 * w, 2),
                                      _conv(2 * w, 2 * w))
        c = 2 * w
        # Separate 1x1 adjust layers for template and search (Ocean's neck): the two roles differ.
        self.adjust_template = nn.Conv2d(c, c, 1)
        self.adjust_search = nn.Conv2d(c, c, 1)
        cls_out = nn.Conv2d(c, 1, 1)
        nn.init.constant_(cls_out.bias, -2.0)  # type: ignore[arg-type]  # few cells are foreground
        self.cls_head = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True), cls_out)
        self.box_head = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, 4, 1))
        self.iou_head = nn.Sequential(nn.Conv2d(c + 4, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, 1, 1))
        self.grid = search_size // self.stride - template_size // self.stride + 1
        # Cell centres in search-crop pixels: the template window's centre at each correlation offset.
        offsets = (np.arange(self.grid) + template_size / self.stride / 2) * self.stride
        self.register_buffer("centres", torch.as_tensor(offsets, dtype=torch.float32), persistent=False)

    def template_features(self, template: torch.Tensor) -> torch.Tensor:
        return self.adjust_template(self.backbone(template))

    def forward_features(self, kernel: torch.Tensor, search: torch.Tensor) -> Heads:
        feat = depthwise_xcorr(self.adjust_search(self.backbone(search)), kernel)
        logits = self.cls_head(feat)[:, 0]
        # Distances from the cell centre, positive; softplus keeps gradients where a distance is near zero.
        ltrb = F.softplus(self.box_head(feat)) * (self.template_size / 4)
        cx = self.centres[None, None, :].expand(len(feat), self.grid, self.grid)
        cy = self.centres[None, :, None].expand(len(feat), self.grid, self.grid)
        boxes = torch.stack([cx - ltrb[:, 0], cy - ltrb[:, 1], cx + ltrb[:, 2], cy + ltrb[:, 3]], dim=-1)
        box_feat = (ltrb / self.search_size).detach()  # the IoU head sees the box it rates, not its gradient
        iou = torch.sigmoid(self.iou_head(torch.cat([feat, box_feat], dim=1))[:, 0])
        return Heads(logits, boxes, iou)

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> Heads:
        return self.forward_features(self.template_features(template), search)


@dataclass
class Decoded:
    """One box per sample (crop pixels), its foreground score, predicted IoU and grid cell."""

    boxes: np.ndarray
    scores: np.ndarray
    ious: np.ndarray
    cells: np.ndarray


def calibrate(scores: np.ndarray, window_influence: float = 0.4) -> np.ndarray:
    """SPOT's temporal calibration of ``(N, G, G)`` foreground probabilities: ``(1 - w) * score + w * window``."""
    window = hanning_window(scores.shape[-1])
    return (1.0 - window_influence) * scores + window_influence * window[None]


def decode(heads: Heads, window_influence: float = 0.4) -> Decoded:
    """The argmax cell of the calibrated score map, its box and predicted IoU (SPOT ``_decode_teacher_result``)."""
    scores = torch.sigmoid(heads.logits).detach().cpu().numpy()
    calibrated = calibrate(scores, window_influence)
    n, g = scores.shape[0], scores.shape[-1]
    flat = calibrated.reshape(n, -1).argmax(axis=1)
    rows = np.arange(n)
    boxes = heads.boxes.detach().cpu().numpy().reshape(n, g * g, 4)[rows, flat]
    ious = heads.iou.detach().cpu().numpy().reshape(n, -1)[rows, flat]
    return Decoded(boxes, scores.reshape(n, -1)[rows, flat], ious, flat)
