"""CenterNet "ddd" losses, each object's terms scaled by its label confidence.

- ``hm``: the penalty-reduced focal loss (CenterTrack's weighted version, imported: the same loss),
- ``dep``: L1 on 1/sigmoid(raw) - 1 in metres, at labelled centres (masked L1),
- ``rot``: BinRotLoss: per bin, cross-entropy on its 2 logits for every object, plus SmoothL1 on
  (sin, cos) of the residual for objects inside that bin,
- ``dim``: L1 in metres, ``wh``: L1 (weight 0.1), ``reg``: L1.
Normalised by the number of labelled objects, so a low confidence lowers an object's pull instead of being
renormalised away (as CenterTrack's losses here).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from baselines.centernet.model import depth_from_raw
from baselines.centertrack.losses import focal_loss, gather, weighted_l1

LOSS_WEIGHTS: dict[str, float] = {"hm": 1.0, "dep": 1.0, "rot": 1.0, "dim": 1.0, "wh": 0.1, "reg": 1.0}


def bin_rot_loss(pred: torch.Tensor, bins: torch.Tensor, res: torch.Tensor, w: torch.Tensor,
                 num: torch.Tensor) -> torch.Tensor:
    """CenterNet's BinRotLoss. ``pred`` (B, K, 8); ``bins``/``res`` (B, K, 2); ``w`` (B, K) object weights."""
    total = pred.new_zeros(())
    for k in range(2):
        logits = pred[..., 4 * k:4 * k + 2].reshape(-1, 2)
        ce = F.cross_entropy(logits, bins[..., k].long().reshape(-1), reduction="none").view_as(w)
        total = total + (ce * w).sum() / num
        target = torch.stack([torch.sin(res[..., k]), torch.cos(res[..., k])], dim=-1)
        sl1 = F.smooth_l1_loss(pred[..., 4 * k + 2:4 * k + 4], target, reduction="none").sum(-1)
        total = total + (sl1 * w * bins[..., k]).sum() / num
    return total


def centernet_loss(out: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                   weights: dict[str, float] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts (floats, for logging); ``target`` is a batch of ``render_targets`` dicts."""
    weights = {**LOSS_WEIGHTS, **(weights or {})}
    num = target["mask"].sum().clamp(min=1.0)
    w = target["mask"] * target["weight"]
    ind = target["ind"]
    pos, neg = focal_loss(out["hm"], target)
    parts = {
        "hm": pos + neg,
        "dep": weighted_l1(depth_from_raw(gather(out["dep"], ind)), target["dep"], w, num),
        "rot": bin_rot_loss(gather(out["rot"], ind), target["rot_bin"], target["rot_res"], w, num),
        "dim": weighted_l1(gather(out["dim"], ind), target["dim"], w, num),
        "wh": weighted_l1(gather(out["wh"], ind), target["wh"], w, num),
        "reg": weighted_l1(gather(out["reg"], ind), target["reg"], w, num),
    }
    total = torch.stack([weights[k] * v for k, v in parts.items()]).sum()
    log = {k: float(v.detach()) for k, v in parts.items()}
    log["total"] = float(total.detach())
    return total, log
