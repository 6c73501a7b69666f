"""SPOT's training: burn-in on labelled pairs, then a teacher-student loop over relay frames.

Read top to bottom, one step is:

1. ``sup_batch`` supervised pairs: two labelled key frames of one track (the same frame twice when the
   track has one label), template and search cut around their boxes with training jitter; the losses are
   classification, box (GIoU + L1) and IoU prediction (SPOT trains the IoU head on supervised pairs only).
2. after ``burn_in`` steps, ``unsup_batch`` unlabelled frames drawn from the relay state
   (:mod:`baselines.spot.relay`): the **teacher** (weakly augmented, template = nearest key frame) decodes a
   pseudo box with the Hanning calibration and its predicted IoU; the **IoU filter** keeps it when that is
   >= ``iou_threshold`` (0.85) and proposes it as a relay frame; the **student** learns transitive
   consistency on it: template = the nearest relay frame, strongly augmented search crop of the unlabelled
   frame, target = the teacher's box (classification and box losses, filtered samples only).
3. the teacher follows the student by EMA (``keep = 0.998``) every ``ema_every`` (5) steps; pending relay
   frames are committed every ``relay_every`` steps (SPOT: after each epoch).

At the end of burn-in the teacher is a copy of the student (SPOT's ``keep_rate = 0``). Budgets are steps.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from baselines.spot.crops import (
    NONE,
    STRONG,
    WEAK,
    Augment,
    boxes_from_crop,
    boxes_to_crop,
    colour,
    context_side,
    crop_warps,
    cut,
)
from baselines.spot.model import Heads, SiameseTracker, decode
from baselines.spot.relay import TrackRelay

# Training jitter of the search crop (both the supervised and the student's pairs): the target must not
# always sit at the centre, or the network learns the centre prior instead of the template.
SEARCH_JITTER = Augment(shift=0.6, scale=0.15)
TEMPLATE_JITTER = Augment(shift=0.05, scale=0.05)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    burn_in: int = 400
    sup_batch: int = 8
    unsup_batch: int = 24
    lr: float = 2e-3
    weight_decay: float = 1e-4
    lr_drop_at: float = 0.75  # SPOT: step decay x0.1 at epoch 300 of 400
    ema_keep: float = 0.998
    ema_every: int = 5
    relay_every: int = 100
    iou_threshold: float = 0.85
    window_influence: float = 0.4
    propagating_step: int = 1


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, keep: float) -> None:
    """teacher <- keep * teacher + (1 - keep) * student, over every float entry of the state (SPOT's
    ``_update_teacher_model``: BatchNorm statistics follow too); integer counters are copied."""
    t_state, s_state = teacher.state_dict(), student.state_dict()
    for name, value in t_state.items():
        if value.dtype.is_floating_point:
            value.mul_(keep).add_(s_state[name], alpha=1.0 - keep)
        else:
            value.copy_(s_state[name])


# ---- losses ---------------------------------------------------------------------------------------------------
def giou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(IoU, generalised IoU) of row-aligned x1 y1 x2 y2 boxes ``(..., 4)``."""
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    lt, rb = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = (area_a + area_b - inter).clamp(min=1e-6)
    iou = inter / union
    hull = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).clamp(min=0).prod(-1)
    return iou, iou - (hull - union) / hull.clamp(min=1e-6)


def positive_cells(targets: torch.Tensor, centres: torch.Tensor, stride: int) -> torch.Tensor:
    """``(N, G, G)`` bool: cells whose centre lies in the central half of the target box (at least the cell
    nearest to the box centre when that lies on the grid)."""
    cx, cy = (targets[:, 0] + targets[:, 2]) / 2, (targets[:, 1] + targets[:, 3]) / 2
    rx = ((targets[:, 2] - targets[:, 0]) / 4).clamp(min=stride / 2)
    ry = ((targets[:, 3] - targets[:, 1]) / 4).clamp(min=stride / 2)
    inside_x = (centres[None, :] - cx[:, None]).abs() <= rx[:, None]  # (N, G)
    inside_y = (centres[None, :] - cy[:, None]).abs() <= ry[:, None]
    return inside_y[:, :, None] & inside_x[:, None, :]


def pair_losses(heads: Heads, targets: torch.Tensor, model: SiameseTracker, weights: torch.Tensor,
                with_iou: bool) -> dict[str, torch.Tensor]:
    """Classification (balanced BCE), box (GIoU + L1 on positive cells) and, optionally, IoU-prediction losses.
    ``weights`` (N,) are 0 for samples that do not count (rejected pseudo labels)."""
    pos = positive_cells(targets, model.centres, model.stride)
    w = weights[:, None, None].expand_as(pos)
    bce = F.binary_cross_entropy_with_logits(heads.logits, pos.float(), reduction="none")
    pos_w, neg_w = w * pos, w * ~pos
    cls = (bce * pos_w).sum() / pos_w.sum().clamp(min=1) + (bce * neg_w).sum() / neg_w.sum().clamp(min=1)
    target_grid = targets[:, None, None, :].expand_as(heads.boxes)
    iou, g = giou(heads.boxes, target_grid)
    l1 = (heads.boxes - target_grid).abs().mean(-1) / model.search_size
    n_pos = pos_w.sum().clamp(min=1)
    out = {"cls": cls, "giou": ((1 - g) * pos_w).sum() / n_pos, "l1": (l1 * pos_w).sum() / n_pos}
    if with_iou:
        bce_iou = F.binary_cross_entropy(heads.iou.clamp(1e-6, 1 - 1e-6), iou.detach(), reduction="none")
        out["iou"] = (bce_iou * pos_w).sum() / n_pos
    return out


LOSS_WEIGHTS = {"cls": 1.0, "giou": 2.0, "l1": 5.0, "iou": 1.0}


# ---- pairs -------------------------------------------------------------------------------------------------------
class PairCutter:
    """Cuts batches of (template, search) crops from the training videos (zero-mean float frames)."""

    def __init__(self, videos: dict[str, torch.Tensor], model: SiameseTracker) -> None:
        self.videos = videos
        self.t_size, self.s_size = model.template_size, model.search_size

    def _wh(self, seq: str) -> tuple[int, int]:
        frames = self.videos[seq]
        return int(frames.shape[-1]), int(frames.shape[-2])

    def crops(self, seqs: list[str], frames: list[int], boxes: np.ndarray, size: int, aug: Augment,
              rng: np.random.Generator | None, scale: float = 1.0, flips: np.ndarray | None = None
              ) -> tuple[torch.Tensor, np.ndarray]:
        """Crops of ``size`` px around ``boxes`` (region = context side x ``scale``) and their warps."""
        wh = self._wh(seqs[0])
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        ref = np.sqrt(np.maximum(boxes[:, 2] - boxes[:, 0], 1) * np.maximum(boxes[:, 3] - boxes[:, 1], 1))
        theta = crop_warps(centres, context_side(boxes) * scale, wh, aug, rng, ref_sizes=ref, flips=flips)
        images = torch.stack([self.videos[s][f] for s, f in zip(seqs, frames, strict=True)])
        return colour(cut(images, theta, size), aug, rng), theta

    def pair(self, seqs: list[str], t_frames: list[int], t_boxes: np.ndarray, s_frames: list[int],
             s_centre_boxes: np.ndarray, t_aug: Augment, s_aug: Augment, rng: np.random.Generator | None
             ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        # Flips are joint (pytracking's transform_joint): a mirrored search region against an unmirrored
        # template would ask the tracker to match an object with its mirror image.
        flip_p = max(t_aug.flip, s_aug.flip)
        flips = rng.random(len(seqs)) < flip_p if (rng is not None and flip_p) else None
        template, _ = self.crops(seqs, t_frames, t_boxes, self.t_size, t_aug, rng, flips=flips)
        search, theta = self.crops(seqs, s_frames, s_centre_boxes, self.s_size, s_aug, rng,
                                   scale=self.s_size / self.t_size, flips=flips)
        return template, search, theta


def _merge(a: Augment, b: Augment) -> Augment:
    """Crop jitter of ``a`` with the photometric / geometric augmentation of ``b``."""
    return Augment(shift=a.shift, scale=a.scale, rotation_deg=b.rotation_deg, flip=b.flip, gray=b.gray,
                   jitter=b.jitter)


def train_spot(model: SiameseTracker, videos: dict[str, torch.Tensor], tracks: list[TrackRelay], cfg: TrainConfig,
               seed: int, progress: Callable[[int, int, str], None] | None = None) -> dict[str, list[float]]:
    """Train ``model`` (the student) in place; returns per-step history (losses, acceptance, relay size)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    cutter = PairCutter(videos, model)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    drop_at = int(cfg.lr_drop_at * cfg.steps)
    teacher: SiameseTracker | None = None
    history: dict[str, list[float]] = {"loss": [], "accepted": [], "relay": [], "propagate": []}
    if not tracks:
        return history
    for step in range(cfg.steps):
        if step == drop_at:
            for group in optim.param_groups:
                group["lr"] = cfg.lr * 0.1
        if step == cfg.burn_in:
            teacher = copy.deepcopy(model).eval()  # burn-in ends: the teacher starts as the student
            for p in teacher.parameters():
                p.requires_grad_(False)
        model.train()
        # 1. supervised pairs of key frames
        picks = rng.integers(len(tracks), size=cfg.sup_batch)
        seqs, t_frames, s_frames, t_boxes, s_boxes = [], [], [], [], []
        for i in picks:
            track = tracks[i]
            keys = sorted(track.keys)
            a = keys[rng.integers(len(keys))]
            b = keys[rng.integers(len(keys))]
            if len(keys) > 1:
                while b == a:
                    b = keys[rng.integers(len(keys))]
            seqs.append(track.seq)
            t_frames.append(a)
            s_frames.append(b)
            t_boxes.append(track.keys[a])
            s_boxes.append(track.keys[b])
        tb, sb = np.asarray(t_boxes, float), np.asarray(s_boxes, float)
        template, search, theta = cutter.pair(seqs, t_frames, tb, s_frames, sb, TEMPLATE_JITTER,
                                              _merge(SEARCH_JITTER, STRONG), rng)
        targets = torch.as_tensor(boxes_to_crop(sb, theta, cutter._wh(seqs[0]), model.search_size),
                                  dtype=torch.float32)
        sup = pair_losses(model(template, search), targets, model, torch.ones(len(picks)), with_iou=True)
        loss = torch.stack([LOSS_WEIGHTS[k] * v for k, v in sup.items()]).sum()
        accepted_share, propagate_share = float("nan"), float("nan")
        # 2. teacher pseudo labels on relay-sampled frames, the student's transitive-consistency pairs
        if teacher is not None and cfg.unsup_batch > 0:
            unsup, accepted_share, propagate_share = _unsupervised(model, teacher, cutter, tracks, cfg, rng)
            if unsup is not None:
                # Batch-weighted as SPOT's actor: each loss counts by the number of pairs behind it.
                n_sup, n_unsup = float(cfg.sup_batch), float(unsup.pop("n"))
                unsup_loss = torch.stack([LOSS_WEIGHTS[k] * v for k, v in unsup.items()]).sum()
                loss = (n_sup * loss + n_unsup * unsup_loss) / (n_sup + n_unsup)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        # 3. EMA teacher and relay commits
        if teacher is not None and (step - cfg.burn_in + 1) % cfg.ema_every == 0:
            ema_update(teacher, model, cfg.ema_keep)
        if teacher is not None and (step - cfg.burn_in + 1) % cfg.relay_every == 0:
            for track in tracks:
                track.commit()
        history["loss"].append(float(loss.detach()))
        history["accepted"].append(accepted_share)
        history["propagate"].append(propagate_share)
        history["relay"].append(float(sum(len(t.relay) for t in tracks)))
        if progress is not None:
            progress(step + 1, cfg.steps, "spot training")
    for track in tracks:
        track.commit()
    model.eval()
    return history


def _unsupervised(student: SiameseTracker, teacher: SiameseTracker, cutter: PairCutter, tracks: list[TrackRelay],
                  cfg: TrainConfig, rng: np.random.Generator) -> tuple[dict[str, torch.Tensor] | None, float, float]:
    """The student's losses on the teacher's filtered pseudo labels, the accepted share, the propagating share."""
    samples = []
    for i in rng.integers(len(tracks), size=cfg.unsup_batch):
        drawn = tracks[i].sample(rng, cfg.propagating_step)
        if drawn is not None:
            samples.append((tracks[i], *drawn))
    if not samples:
        return None, float("nan"), float("nan")
    seqs = [t.seq for t, _, _ in samples]
    frames = [f for _, f, _ in samples]
    coarse = np.stack([t.coarse_box(f) for t, f, _ in samples])
    key_frames = [t.nearest_key(f) for t, f, _ in samples]
    key_boxes = np.stack([t.keys[k] for (t, _, _), k in zip(samples, key_frames, strict=True)])
    wh = cutter._wh(seqs[0])
    # Teacher: weak augmentation, key frame -> unlabelled frame, decoded with the temporal calibration.
    with torch.no_grad():
        template, search, theta = cutter.pair(seqs, key_frames, key_boxes, frames, coarse, WEAK, WEAK, rng)
        decoded = decode(teacher(template, search), cfg.window_influence)
    pseudo = boxes_from_crop(decoded.boxes, theta, wh, teacher.search_size)
    accept = decoded.ious >= cfg.iou_threshold
    for (track, frame, _), box, conf in zip(samples, pseudo, decoded.ious, strict=True):
        track.propose(frame, box, float(conf), cfg.iou_threshold)
    propagate_share = float(np.mean([mode == "propagate" for _, _, mode in samples]))
    if not accept.any():
        return None, 0.0, propagate_share
    # Student: relay frame -> strongly augmented unlabelled frame, target = the teacher's pseudo box.
    relay_frames = [t.nearest_relay(f) for t, f, _ in samples]
    relay_boxes = np.stack([t.relay[r][0] for (t, _, _), r in zip(samples, relay_frames, strict=True)])
    template, search, theta = cutter.pair(seqs, relay_frames, relay_boxes, frames, coarse, TEMPLATE_JITTER,
                                          _merge(SEARCH_JITTER, STRONG), rng)
    targets = torch.as_tensor(boxes_to_crop(pseudo, theta, wh, student.search_size), dtype=torch.float32)
    weights = torch.as_tensor(accept, dtype=torch.float32)
    losses = pair_losses(student(template, search), targets, student, weights, with_iou=False)
    losses["n"] = weights.sum()
    return losses, float(accept.mean()), propagate_share


__all__ = ["LOSS_WEIGHTS", "NONE", "TrainConfig", "ema_update", "giou", "pair_losses", "positive_cells",
           "train_spot"]
