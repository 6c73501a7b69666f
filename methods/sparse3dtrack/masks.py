"""Object masks on each box's grid: how the matcher and propagation read the labelled instance masks.

A labelled row's mask arrives as a crop of its box (:class:`bench.data.masks.RowMask`); the matcher uses masks
on a box-aligned ``size`` x ``size`` grid everywhere (template channel, mask-head targets, predicted masks), so
the crop is resampled onto that grid once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bench.data.masks import MaskKey, RowMask
from bench.data.sequence import Sequence


def row_box_mask(row: RowMask, box: np.ndarray, size: int) -> np.ndarray:
    """A labelled row's instance mask (a crop, bench.data.masks) resampled onto its box's size x size grid."""
    crop = torch.from_numpy(np.ascontiguousarray(row.mask, dtype=np.float32))[None, None]
    h, w = row.mask.shape
    if h == 0 or w == 0:
        return np.ones((size, size), np.float32)
    steps = (np.arange(size) + 0.5) / size
    xs = (box[0] + steps * (box[2] - box[0]) - row.x0) / w * 2 - 1
    ys = (box[1] + steps * (box[3] - box[1]) - row.y0) / h * 2 - 1
    grid = torch.from_numpy(np.stack(np.broadcast_arrays(xs[None, :], ys[:, None]), -1).astype(np.float32))[None]
    sampled = F.grid_sample(crop, grid, mode="bilinear", padding_mode="border", align_corners=False)[0, 0]
    return sampled.clamp(0.0, 1.0).numpy()  # bilinear weights may sum to 1 + 1e-7


def label_box_masks(labels: pd.DataFrame, sequences: dict[str, Sequence], masks: dict[MaskKey, RowMask] | None,
                    size: int) -> dict[tuple[str, int, int], np.ndarray]:
    """(seq, track_id, frame index) -> the label's mask on its box grid, for the rows that have a mask."""
    out: dict[tuple[str, int, int], np.ndarray] = {}
    if not masks:
        return out
    boxes = labels[["x1", "y1", "x2", "y2"]].to_numpy(float)
    for seq, frame, track_id, box in zip(labels["seq"], labels["frame"], labels["track_id"], boxes, strict=True):
        row = masks.get((str(seq), int(frame), int(track_id)))
        if row is not None:
            out[(str(seq), int(track_id), sequences[str(seq)].index_of(int(frame)))] = row_box_mask(row, box, size)
    return out
