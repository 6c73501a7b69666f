"""Fully supervised training of SPOT's Siamese tracker on the corpus: the "pretrained on abundant 2D labels" step.

The network is SPOT's (:class:`baselines.spot.model.SiameseTracker`, the same crops and losses); only the data
differ: every box of every corpus track is a label, so a step draws

- ``batch - negatives`` **positive pairs**: a template frame of a track and a search frame of the same track up
  to ``max_gap`` frames away (propagation at inference holds the label's template for up to half the distance
  between two labels); the search crop jittered around the target (SPOT's supervised pairs: shift, scale and its
  strong augmentation, flips joint). Losses: classification, GIoU + L1, IoU prediction (SPOT's heads).
- ``negatives`` **absent pairs**: the template of a track and a search frame where that object is not labelled
  (before it enters, after it leaves), the crop centred on its nearest labelled box, as the tracker's search
  region stays where the object was last seen. Target: no foreground cell. This is what SAM 2's object-presence
  score learns from SA-V and what SPOT, trained on key frames only, never sees: it lets propagation end a track.

Templates and positive search frames use boxes of occlusion level 0-1 at least ``min_height`` px tall (the label
sampler's visibility rule, :mod:`bench.labels.budget`). Budgets are steps; AdamW with SPOT's step decay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from baselines.pretrained2d.corpus import CorpusVideo
from baselines.spot.crops import STRONG, Augment, boxes_to_crop, colour, context_side, crop_warps, cut, to_input
from baselines.spot.model import SiameseTracker
from baselines.spot.train import LOSS_WEIGHTS, SEARCH_JITTER, TEMPLATE_JITTER, _merge, pair_losses


@dataclass(frozen=True)
class PretrainConfig:
    steps: int = 1500
    batch: int = 16
    negatives: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    lr_drop_at: float = 0.75  # SPOT's step decay x0.1 at 3/4 of the budget
    max_gap: int = 15
    min_height: float = 6.0


@dataclass
class TrackRows:
    """One corpus track: its video, labelled frame indices (sorted), boxes and which frames may be templates."""

    video: int
    frames: np.ndarray  # (K,) int
    boxes: np.ndarray  # (K, 4)
    good: np.ndarray  # (K,) bool: occlusion 0-1 and tall enough
    length: int  # frames in its video


def corpus_tracks(videos: list[CorpusVideo], min_height: float) -> list[TrackRows]:
    """Every track with at least two good boxes (one template, one other frame)."""
    out = []
    for v, video in enumerate(videos):
        for _, rows in video.tracks.groupby("track_id", sort=True):
            rows = rows.sort_values("frame")
            boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(float)
            good = (rows["occlusion"].to_numpy() <= 1) & (boxes[:, 3] - boxes[:, 1] >= min_height)
            if good.sum() >= 2:
                out.append(TrackRows(v, rows["frame"].to_numpy(int), boxes, good, len(video.frames)))
    return out


def _draw_positive(track: TrackRows, rng: np.random.Generator, max_gap: int) -> tuple[int, int]:
    """(template row, search row) of one track: both good, 1..max_gap frames apart when such a pair exists."""
    good = np.flatnonzero(track.good)
    a = int(rng.choice(good))
    gaps = np.abs(track.frames[good] - track.frames[a])
    near = good[(gaps >= 1) & (gaps <= max_gap)]
    return a, int(rng.choice(near)) if len(near) else a


def _draw_absent(track: TrackRows, rng: np.random.Generator, max_gap: int) -> tuple[int, int, int] | None:
    """(template row, absent frame, row of the nearest labelled box) or None when the object is labelled on every
    frame within ``max_gap`` of its first and last box."""
    labelled = set(track.frames.tolist())
    lo, hi = int(track.frames[0]), int(track.frames[-1])
    candidates = [f for f in range(max(0, lo - max_gap), min(track.length, hi + max_gap + 1)) if f not in labelled]
    if not candidates:
        return None
    frame = int(rng.choice(candidates))
    nearest = int(np.argmin(np.abs(track.frames - frame)))
    return int(rng.choice(np.flatnonzero(track.good))), frame, nearest


class Crops:
    """Template and search crops from uint8 corpus videos, one pair at a time (corpus worlds differ in image size,
    and frames are converted to floats only as they are cut)."""

    def __init__(self, videos: list[CorpusVideo], model: SiameseTracker) -> None:
        self.videos = videos
        self.t_size, self.s_size = model.template_size, model.search_size

    def wh(self, video: int) -> tuple[int, int]:
        frames = self.videos[video].frames
        return int(frames.shape[2]), int(frames.shape[1])

    def _cut(self, video: int, frame: int, box: np.ndarray, size: int, scale: float, aug: Augment, flip: bool,
             rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        boxes = box[None]
        centre = np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]])
        ref = np.sqrt(np.maximum(boxes[:, 2] - boxes[:, 0], 1) * np.maximum(boxes[:, 3] - boxes[:, 1], 1))
        theta = crop_warps(centre, context_side(boxes) * scale, self.wh(video), aug, rng, ref_sizes=ref,
                           flips=np.array([flip]))
        image = to_input(self.videos[video].frames[frame])[None]
        return colour(cut(image, theta, size), aug, rng), theta

    def pairs(self, templates: list[tuple[int, int]], t_boxes: np.ndarray, searches: list[tuple[int, int]],
              s_boxes: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Template crops, search crops and the search warps of ``(video, frame)`` picks, in order."""
        flips = rng.random(len(templates)) < STRONG.flip  # joint: template and search mirror together
        t_crops, s_crops, thetas = [], [], []
        for (tv, tf), tb, (sv, sf), sb, flip in zip(templates, t_boxes, searches, s_boxes, flips, strict=True):
            t_crops.append(self._cut(tv, tf, tb, self.t_size, 1.0, TEMPLATE_JITTER, bool(flip), rng)[0])
            crop, theta = self._cut(sv, sf, sb, self.s_size, self.s_size / self.t_size, _merge(SEARCH_JITTER, STRONG),
                                    bool(flip), rng)
            s_crops.append(crop)
            thetas.append(theta)
        return torch.cat(t_crops), torch.cat(s_crops), np.concatenate(thetas)


def pretrain(model: SiameseTracker, videos: list[CorpusVideo], cfg: PretrainConfig, seed: int,
             progress: Callable[[int, int, str], None] | None = None) -> dict[str, list[float]]:
    """Train ``model`` in place on the corpus; returns the per-step loss and its absent-pair part."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    tracks = corpus_tracks(videos, cfg.min_height)
    if not tracks:
        raise ValueError("pretrained2d: the corpus holds no track with two visible boxes")
    crops = Crops(videos, model)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    drop_at = int(cfg.lr_drop_at * cfg.steps)
    history: dict[str, list[float]] = {"loss": [], "absent": []}
    n_pos = cfg.batch - cfg.negatives
    model.train()
    for step in range(cfg.steps):
        if step == drop_at:
            for group in optim.param_groups:
                group["lr"] = cfg.lr * 0.1
        templates: list[tuple[int, int]] = []
        searches: list[tuple[int, int]] = []
        t_boxes: list[np.ndarray] = []
        s_boxes: list[np.ndarray] = []
        absent: list[bool] = []
        while len(templates) < cfg.batch:
            track = tracks[int(rng.integers(len(tracks)))]
            if len(templates) < n_pos:
                a, b = _draw_positive(track, rng, cfg.max_gap)
                search_frame, search_box, is_absent = int(track.frames[b]), track.boxes[b], False
            else:
                drawn = _draw_absent(track, rng, cfg.max_gap)
                if drawn is None:
                    continue
                a, search_frame, nearest = drawn
                search_box, is_absent = track.boxes[nearest], True
            templates.append((track.video, int(track.frames[a])))
            t_boxes.append(track.boxes[a])
            searches.append((track.video, search_frame))
            s_boxes.append(search_box)
            absent.append(is_absent)
        tb, sb, gone = np.asarray(t_boxes, float), np.asarray(s_boxes, float), np.asarray(absent)
        template, search, theta = crops.pairs(templates, tb, searches, sb, rng)
        targets = np.stack([boxes_to_crop(sb[i:i + 1], theta[i:i + 1], crops.wh(searches[i][0]), model.search_size)[0]
                            for i in range(len(sb))])
        heads = model(template, search)
        present = torch.as_tensor(~gone, dtype=torch.float32)
        losses = pair_losses(heads, torch.as_tensor(targets, dtype=torch.float32), model, present, with_iou=True)
        loss = torch.stack([LOSS_WEIGHTS[k] * v for k, v in losses.items()]).sum()
        absent_loss = torch.zeros(())
        if gone.any():
            # Absent pairs: every cell is background (pair_losses gave them weight 0).
            logits = heads.logits[torch.as_tensor(gone)]
            absent_loss = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
            loss = loss + absent_loss
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        history["loss"].append(float(loss.detach()))
        history["absent"].append(float(absent_loss.detach()))
        if progress is not None:
            progress(step + 1, cfg.steps, "pretrained2d: pretraining on the corpus")
    model.eval()
    return history


__all__ = ["PretrainConfig", "corpus_tracks", "pretrain"]
