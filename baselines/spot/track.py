"""SPOT at inference: each labelled track propagated from its labels, forwards and backwards, by the tracker.

Every label starts two chains: forwards to the next label (or the video's end) and backwards to the previous
label (or the video's start). Each chain is a plain TransT/Ocean-style tracking loop: the template is the
label's crop (fixed, as in the public trackers), the search region is centred on the previous box with the
same context, and the next box is the argmax of the Hanning-calibrated score map. Between two labels each
frame takes the box of the chain from the nearer label (the shorter propagation; a tie goes forwards), as
SPOT's teacher takes its template from the nearest key frame.

Chains never stop: a single-object tracker has no notion of the target leaving the view, so the box is only
clipped to the image (TransT's ``_bbox_clip``) and the track goes on to the video's edge. The paper names this
as SPOT's weakness on driving data ("maintains object tracks even after they exit the frame"); it is kept,
not patched, so that it shows in the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from baselines.spot.crops import NONE, boxes_from_crop, context_side, crop_warps, cut
from baselines.spot.model import SiameseTracker, decode


@dataclass(frozen=True)
class Chain:
    """One propagation: from labelled frame ``start`` with ``box``, ``length`` frames in ``direction`` (+1 / -1)."""

    track: int  # index into the caller's track list
    start: int
    box: tuple[float, float, float, float]
    direction: int
    length: int


def chains_for(keys: dict[int, np.ndarray], num_frames: int, track: int = 0) -> list[Chain]:
    """The forward and backward chains of one track's labels, splitting each gap at its middle."""
    frames = sorted(keys)
    out = []
    for i, k in enumerate(frames):
        box = tuple(float(v) for v in keys[k])
        prev_k = frames[i - 1] if i > 0 else None
        next_k = frames[i + 1] if i + 1 < len(frames) else None
        # forwards: frames k+1 .. owned by k (f - k <= next - f), or the video's end
        fwd = (num_frames - 1 - k) if next_k is None else (next_k - k) // 2
        # backwards: frames owned by k on its left (k - f < f - prev: ties went forwards to prev)
        bwd = k if prev_k is None else (k - prev_k - 1) // 2
        if fwd > 0:
            out.append(Chain(track, k, box, +1, fwd))  # type: ignore[arg-type]
        if bwd > 0:
            out.append(Chain(track, k, box, -1, bwd))  # type: ignore[arg-type]
    return out


def clip_box(box: np.ndarray, width: int, height: int, min_size: float) -> np.ndarray:
    """TransT's ``_bbox_clip``: the centre inside the image, the size between ``min_size`` and the image's."""
    cx, cy = np.clip((box[:, 0] + box[:, 2]) / 2, 0, width), np.clip((box[:, 1] + box[:, 3]) / 2, 0, height)
    w = np.clip(box[:, 2] - box[:, 0], min_size, width)
    h = np.clip(box[:, 3] - box[:, 1], min_size, height)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


@torch.no_grad()
def run_chains(model: SiameseTracker, frames: torch.Tensor, chains: list[Chain], window_influence: float = 0.4,
               min_size: float = 2.0, batch: int = 256) -> list[tuple[int, int, np.ndarray, float, float]]:
    """Propagate every chain over ``frames`` ``(T, 3, H, W)`` (zero-mean floats), all chains one step at a time.

    Returns ``(track, frame index, box, score, predicted IoU)`` for every propagated frame."""
    model.eval()
    if not chains:
        return []
    height, width = int(frames.shape[-2]), int(frames.shape[-1])
    wh = (width, height)
    boxes = np.asarray([c.box for c in chains], dtype=float)
    kernels = []
    for i in range(0, len(chains), batch):
        part = chains[i:i + batch]
        b = boxes[i:i + batch]
        centres = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
        theta = crop_warps(centres, context_side(b), wh, NONE, None)
        crops = cut(frames[[c.start for c in part]], theta, model.template_size)
        kernels.append(model.template_features(crops))
    kernel = torch.cat(kernels)
    current = boxes.copy()
    out: list[tuple[int, int, np.ndarray, float, float]] = []
    lengths = np.asarray([c.length for c in chains])
    for step in range(1, int(lengths.max()) + 1):
        active = np.flatnonzero(lengths >= step)
        for i in range(0, len(active), batch):
            idx = active[i:i + batch]
            targets = [chains[j].start + chains[j].direction * step for j in idx]
            b = current[idx]
            centres = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
            theta = crop_warps(centres, context_side(b) * model.search_size / model.template_size, wh, NONE, None)
            search = cut(frames[targets], theta, model.search_size)
            decoded = decode(model.forward_features(kernel[idx], search), window_influence)
            new = clip_box(boxes_from_crop(decoded.boxes, theta, wh, model.search_size), width, height, min_size)
            current[idx] = new
            for j, f, box, score, iou in zip(idx, targets, new, decoded.scores, decoded.ious, strict=True):
                out.append((chains[j].track, int(f), box, float(score), float(iou)))
    return out
