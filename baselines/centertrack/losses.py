"""CenterTrack's losses, extended for imperfect labels.

- Heatmap: CenterNet's penalty-reduced focal loss. The positive term is taken at each object's peak
  and scaled by the object's label confidence (``weight``); the negative term is scaled per pixel
  by ``neg_weight`` (1 = background is trusted, 0 = an unlabeled object may be here: FNComp).
- Regression heads: L1 at the object peaks, scaled by the label confidence. Depth: L1 in metres
  (``depth_mode="direct"``) or on the raw output, the log-residual over the geometric prior ("geometric").
  With a ``dep_unc`` head the depth term is the Laplace negative log-likelihood sqrt(2) |d - d*| / sigma + log sigma
  (MonoFlex / GUPNet): objects whose depth the image cannot tell (far, occluded, truncated) pull less, and sigma
  becomes a per-detection depth confidence.
All terms are normalised by the number of labelled objects (not by the sum of confidences), so a
low confidence lowers an object's pull on the network instead of being renormalised away.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from baselines.centertrack.model import depth_from_raw
from baselines.centertrack.targets import ROT_BIN_HALF_WIDTH

# CenterTrack's default loss weights (wh is down-weighted to 0.1).
LOSS_WEIGHTS: dict[str, float] = {
    "hm": 1.0, "reg": 1.0, "wh": 0.1, "tracking": 1.0, "dep": 1.0, "rot": 1.0, "dim": 1.0, "amodal": 1.0,
}


def gather(feat: torch.Tensor, ind: torch.Tensor) -> torch.Tensor:
    """Values of a ``(B, C, H, W)`` map at flat indices ``(B, K)`` -> ``(B, K, C)``."""
    b, c = feat.shape[:2]
    flat = feat.view(b, c, -1)
    return flat.gather(2, ind.unsqueeze(1).expand(b, c, ind.shape[1])).permute(0, 2, 1)


def focal_loss(logits: torch.Tensor, target: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) parts of the weighted focal loss, each already normalised.

    ``logits`` (B, C, H, W); target ``hm`` (B, C, H, W), ``neg_weight`` (B, H, W), ``ind``/``cls``/
    ``mask``/``weight`` (B, K).
    """
    pred = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    gt = target["hm"]
    num = target["mask"].sum().clamp(min=1.0)
    neg_map = (1 - gt).pow(4) * pred.pow(2) * torch.log(1 - pred) * (gt < 1).float()
    neg = -(neg_map * target["neg_weight"].unsqueeze(1)).sum() / num
    b, c, h, w = pred.shape
    # Peak probability of each object in its own class channel.
    flat_ind = target["cls"] * (h * w) + target["ind"]
    p = pred.view(b, -1).gather(1, flat_ind)
    pos_w = target["mask"] * target["weight"]
    pos = -((1 - p).pow(2) * torch.log(p) * pos_w).sum() / num
    return pos, neg


def weighted_l1(pred: torch.Tensor, gt: torch.Tensor, w: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
    """L1 over (B, K, C) with per-object weights (B, K), normalised by the object count."""
    return (F.l1_loss(pred, gt, reduction="none").sum(-1) * w).sum() / num


def laplace_nll(pred: torch.Tensor, log_sigma: torch.Tensor, gt: torch.Tensor, w: torch.Tensor,
                num: torch.Tensor) -> torch.Tensor:
    """Laplace negative log-likelihood (constant dropped; sigma is the standard deviation) over (B, K, 1), with
    per-object weights, normalised by the object count.
    log sigma is clamped so that one confident miss cannot explode the loss, nor a lazy head shrug it off."""
    log_sigma = log_sigma.clamp(-4.0, 4.0)
    nll = 2 ** 0.5 * (pred - gt).abs() * torch.exp(-log_sigma) + log_sigma
    return (nll.sum(-1) * w).sum() / num


def rot_loss(pred: torch.Tensor, bins: torch.Tensor, res: torch.Tensor, w: torch.Tensor,
             num: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """Multibin loss: per bin, cross-entropy on (out, in) logits + L1 on (sin, cos) of the residual where in-bin.

    ``flip`` (BA²-Det's Eq. 6, paper 002): each object's loss is the smaller of the loss against its angle and
    against the angle turned by 180°, for labels whose front and back cannot be told apart (a box fitted to
    points)."""
    if flip:
        turned = torch.remainder(res + 2 * math.pi, 2 * math.pi) - math.pi  # residuals of alpha + pi, in [-pi, pi)
        turned_bins = (turned.abs() < ROT_BIN_HALF_WIDTH).to(bins.dtype)
        per_object = [sum(ce + l1 * bins_k for ce, l1, bins_k in _multibin_terms(pred, b, r))
                      for b, r in ((bins, res), (turned_bins, turned))]
        return (torch.minimum(*per_object) * w).sum() / num
    total = pred.new_zeros(())
    for ce, l1, bins_k in _multibin_terms(pred, bins, res):
        total = total + (ce * w).sum() / num
        total = total + (l1 * w * bins_k).sum() / num
    return total


def _multibin_terms(pred: torch.Tensor, bins: torch.Tensor, res: torch.Tensor
                    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per bin, each object's cross-entropy and residual L1 (unmasked) and its in-bin flag, all (B, K)."""
    terms = []
    for k in range(2):
        logits = pred[..., 4 * k:4 * k + 2]
        ce = F.cross_entropy(logits.reshape(-1, 2), bins[..., k].long().reshape(-1), reduction="none")
        sc = torch.stack([torch.sin(res[..., k]), torch.cos(res[..., k])], dim=-1)
        l1 = F.l1_loss(pred[..., 4 * k + 2:4 * k + 4], sc, reduction="none").sum(-1)
        terms.append((ce.view_as(l1), l1, bins[..., k]))
    return terms


def centertrack_loss(out: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                     weights: dict[str, float] | None = None, depth_mode: str = "direct", flip_rot: bool = False,
                     ) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts (floats, for logging). ``target`` tensors are batched ``render_targets`` dicts
    rendered with the same ``depth_mode``; ``flip_rot``: :func:`rot_loss`'s 180°-symmetric form."""
    weights = {**LOSS_WEIGHTS, **(weights or {})}
    num = target["mask"].sum().clamp(min=1.0)
    w = target["mask"] * target["weight"]
    w3 = w * target["mask3d"]
    pos, neg = focal_loss(out["hm"], target)
    ind = target["ind"]
    dep = gather(out["dep"], ind)
    dep = dep if depth_mode == "geometric" else depth_from_raw(dep)
    if "dep_unc" in out:
        dep_loss = laplace_nll(dep, gather(out["dep_unc"], ind), target["dep"], w3, num)
    else:
        dep_loss = weighted_l1(dep, target["dep"], w3, num)
    parts = {
        "hm": pos + neg,
        "reg": weighted_l1(gather(out["reg"], ind), target["reg"], w, num),
        "wh": weighted_l1(gather(out["wh"], ind), target["wh"], w, num),
        "tracking": weighted_l1(gather(out["tracking"], ind), target["tracking"], w * target["tracking_mask"], num),
        "dep": dep_loss,
        "rot": rot_loss(gather(out["rot"], ind), target["rot_bin"], target["rot_res"], w3, num, flip=flip_rot),
        "dim": weighted_l1(gather(out["dim"], ind), target["dim"], w3, num),
        "amodal": weighted_l1(gather(out["amodal"], ind), target["amodal"], w3, num),
    }
    total = sum(weights[k] * v for k, v in parts.items())
    log = {k: float(v.detach()) for k, v in parts.items()}
    log.update(hm_pos=float(pos.detach()), hm_neg=float(neg.detach()), total=float(total.detach()))
    return total, log
