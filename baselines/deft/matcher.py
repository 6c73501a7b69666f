"""DEFT's appearance matcher: object features from several scales, paired between frames into an affinity matrix.

DEFT (after SST/DAN) samples each object's feature at its centre from 13 backbone maps, concatenates the
features of every pair (one object from each frame) and scores the pair with a stack of 1x1 convolutions
(2 sum(C) -> 512 -> 256 -> 128 -> 64 -> 1). The affinity matrix gets one extra column (this object has no match
in the other frame) and one extra row (that object has none here); the loss is the cross-entropy of the
row-wise softmax (each object of frame 1 picks a partner or "unmatched") plus that of the column-wise softmax,
averaged. Here: the five maps of the CenterNet network (:meth:`CenterNetDDD.pyramid`), each projected to ``dim``
channels, a 2 x 5 dim -> 64 -> 32 -> 1 MLP, and one learnable "unmatched" score.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class AppearanceMatcher(nn.Module):
    def __init__(self, channels: list[int], dim: int = 16, hidden: int = 64):
        super().__init__()
        self.proj = nn.ModuleList([nn.Linear(c, dim) for c in channels])
        self.pair = nn.Sequential(nn.Linear(2 * dim * len(channels), hidden), nn.ReLU(True),
                                  nn.Linear(hidden, hidden // 2), nn.ReLU(True), nn.Linear(hidden // 2, 1))
        self.unmatched = nn.Parameter(torch.zeros(()))

    def embed(self, pyramid: list[torch.Tensor], centres: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """``(N, D)`` embeddings of objects at ``centres`` (N, 2) input px of one image (pyramid maps (1, C, h, w))."""
        w, h = image_size
        grid = torch.stack([centres[:, 0] / w * 2 - 1, centres[:, 1] / h * 2 - 1], dim=-1).view(1, 1, -1, 2)
        parts = []
        for feat, proj in zip(pyramid, self.proj, strict=True):
            sampled = F.grid_sample(feat, grid.to(feat.dtype), mode="bilinear", align_corners=False)  # (1, C, 1, N)
            parts.append(proj(sampled[0, :, 0].T))
        return torch.cat(parts, dim=-1)

    def affinity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``(N+1, M+1)`` pair scores of embeddings ``a`` (N, D) and ``b`` (M, D), the last row/column "unmatched"."""
        n, m = len(a), len(b)
        pairs = torch.cat([a[:, None].expand(n, m, -1), b[None].expand(n, m, -1)], dim=-1)
        scores = self.pair(pairs)[..., 0] if n and m else a.new_zeros((n, m))
        out = self.unmatched.expand(n + 1, m + 1).clone()
        out[:n, :m] = scores
        return out


def matching_loss(aff: torch.Tensor, match: torch.Tensor, weight_a: torch.Tensor, weight_b: torch.Tensor
                  ) -> torch.Tensor:
    """DEFT's loss on one pair of frames. ``match[i]``: index in frame 2 of frame-1 object i, or -1.

    Row softmax over (M partners + unmatched), column softmax over (N partners + unmatched); each object's term
    weighted by its label confidence."""
    n, m = aff.shape[0] - 1, aff.shape[1] - 1
    row_target = torch.where(match >= 0, match, torch.full_like(match, m))
    col_target = torch.full((m,), n, dtype=torch.long, device=aff.device)
    has = match >= 0
    col_target[match[has]] = torch.arange(n, device=aff.device)[has]
    rows = F.cross_entropy(aff[:n], row_target, reduction="none") * weight_a if n else aff.new_zeros(0)
    cols = F.cross_entropy(aff[:, :m].T, col_target, reduction="none") * weight_b if m else aff.new_zeros(0)
    total = rows.sum() + cols.sum()
    return total / max(n + m, 1)
