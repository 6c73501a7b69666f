"""FCOS3D's losses, each positive point's terms scaled by its label confidence.

- classification: sigmoid focal loss (alpha 0.25, gamma 2) over every point, normalised by the positives
  (a positive's term scaled by its confidence);
- regression at positives, SmoothL1 (beta 1/9) weighted by the centerness target x code weights
  (offset 1, 1; depth 0.2; size 1, 1, 1; yaw 1), as mmdet3d weights them; the yaw term is the **sine
  difference**: SmoothL1(sin(p) cos(t), cos(p) sin(t)), which penalises sin(p - t) and cannot see a half turn;
- direction: cross-entropy on the 2 direction bins (which resolves that half turn);
- centerness: binary cross-entropy against its target.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

CODE_WEIGHTS = {"offset": 1.0, "depth": 0.2, "size": 1.0, "yaw": 1.0}
LOSS_WEIGHTS = {"cls": 1.0, "reg": 1.0, "dir": 1.0, "centerness": 1.0}
BETA = 1.0 / 9.0


def sigmoid_focal(logits: torch.Tensor, onehot: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
                  ) -> torch.Tensor:
    """Elementwise sigmoid focal loss (RetinaNet's)."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    p_t = p * onehot + (1 - p) * (1 - onehot)
    a_t = alpha * onehot + (1 - alpha) * (1 - onehot)
    return a_t * (1 - p_t).pow(gamma) * ce


def sin_difference(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sin(p) cos(t), cos(p) sin(t)): their difference is sin(p - t) (mmdet3d's ``add_sin_difference``)."""
    return torch.sin(pred) * torch.cos(target), torch.cos(pred) * torch.sin(target)


def fcos3d_loss(out: dict[str, torch.Tensor], t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """``out``: flattened network outputs ``(B, P, C)``; ``t``: batched :func:`render_targets` dicts ``(B, P, ...)``."""
    num_classes = out["cls"].shape[-1]
    pos = t["cls"] >= 0
    num = pos.sum().clamp(min=1).float()
    onehot = F.one_hot(t["cls"].clamp(min=0), num_classes).float() * pos[..., None]
    # A positive's focal term scaled by its conf; background points weigh 1.
    point_w = torch.where(pos, t["weight"], torch.ones_like(t["weight"]))
    cls = (sigmoid_focal(out["cls"], onehot).sum(-1) * point_w).sum() / num
    w = (t["weight"] * t["centerness"])[pos]
    cw = w.sum().clamp(min=1e-6)

    def sl1(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(p, g, beta=BETA, reduction="none").reshape(len(w), -1).sum(-1)

    sp, st = sin_difference(out["yaw"][..., 0][pos], t["yaw"][pos])
    reg = (CODE_WEIGHTS["offset"] * sl1(out["offset"][pos], t["offset"][pos])
           + CODE_WEIGHTS["depth"] * sl1(out["depth"][..., 0][pos], t["depth"][pos])
           + CODE_WEIGHTS["size"] * sl1(out["size"][pos], t["size"][pos])
           + CODE_WEIGHTS["yaw"] * sl1(sp, st))
    reg = (reg * w).sum() / cw
    conf = t["weight"][pos]
    dir_loss = (F.cross_entropy(out["dir"][pos], t["dir"][pos], reduction="none") * conf).sum() / num
    ctr = (F.binary_cross_entropy_with_logits(out["centerness"][..., 0][pos], t["centerness"][pos], reduction="none")
           * conf).sum() / num
    parts = {"cls": cls, "reg": reg, "dir": dir_loss, "centerness": ctr}
    total = torch.stack([LOSS_WEIGHTS[k] * v for k, v in parts.items()]).sum()
    log = {k: float(v.detach()) for k, v in parts.items()}
    log["total"] = float(total.detach())
    return total, log
