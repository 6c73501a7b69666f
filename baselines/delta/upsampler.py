"""The attention upsampler (DELTA's ``UpsampleTransformerAlibi``): low-resolution dense tracks -> every pixel.

Each full-resolution pixel (one of the ``factor^2`` sub-pixels of a low-resolution cell) attends to the
``kernel x kernel`` cells around its own, with an ALiBi bias (-slope * L1 distance, in cells), through ``blocks``
cross-attention blocks; a last scaled dot product and softmax give convex weights over those cells, applied
RAFT-style to the cells' motion (pixel displacement, log-depth change, visibility logit). The weights depend
only on the query frame's features, so they are computed once per video and reused for every frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def neighbours(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """``(B, C, h, w)`` -> ``(B, C, kernel^2, h*w)``: each cell's ``kernel x kernel`` neighbourhood (edges
    replicated, so a border cell's missing neighbours repeat the border)."""
    pad = kernel // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    b, c = x.shape[:2]
    return F.unfold(x, kernel).reshape(b, c, kernel * kernel, -1)


class AttentionUpsampler(nn.Module):
    def __init__(self, dim: int, factor: int, kernel: int = 3, blocks: int = 1) -> None:
        super().__init__()
        self.factor, self.kernel, self.dim = factor, kernel, dim
        self.key = nn.Conv2d(dim, dim, 3, padding=1)
        self.query = nn.Conv2d(dim, dim, 3, padding=1)
        self.subpixel = nn.Parameter(torch.randn(factor * factor, dim) * 0.02)
        self.refine = nn.ModuleList(nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(),
                                                  nn.Linear(2 * dim, dim)) for _ in range(blocks))
        self.slope = nn.Parameter(torch.ones(blocks + 1))
        self.q_out, self.k_out = nn.Linear(dim, dim), nn.Linear(dim, dim)
        # L1 distance (in cells) from each sub-pixel's centre to each neighbour cell's centre: the ALiBi bias.
        sub = (torch.arange(factor, dtype=torch.float32) + 0.5) / factor - 0.5
        off = torch.arange(kernel, dtype=torch.float32) - kernel // 2
        sy, sx = torch.meshgrid(sub, sub, indexing="ij")
        oy, ox = torch.meshgrid(off, off, indexing="ij")
        dist = (sx.reshape(-1, 1) - ox.reshape(1, -1)).abs() + (sy.reshape(-1, 1) - oy.reshape(1, -1)).abs()
        self.register_buffer("dist", dist, persistent=False)  # (factor^2, kernel^2)

    def weights(self, feats: torch.Tensor) -> torch.Tensor:
        """Query-frame features of the dense cells ``(B, dim, h, w)`` -> convex weights
        ``(B, h*w, factor^2, kernel^2)`` (sum 1 over the last axis)."""
        keys = neighbours(self.key(feats), self.kernel).permute(0, 3, 2, 1)  # (B, G, k2, D)
        q = self.query(feats).flatten(2).transpose(1, 2)[:, :, None] + self.subpixel  # (B, G, r2, D)
        scale = 1.0 / math.sqrt(self.dim)
        for i, mlp in enumerate(self.refine):
            logits = torch.einsum("bgrd,bgkd->bgrk", q, keys) * scale - self.slope[i] * self.dist
            q = q + torch.einsum("bgrk,bgkd->bgrd", logits.softmax(-1), keys)
            q = q + mlp(q)
        logits = torch.einsum("bgrd,bgkd->bgrk", self.q_out(q), self.k_out(keys)) * scale - self.slope[-1] * self.dist
        return logits.softmax(-1)

    def upsample(self, weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Convex upsampling of ``values (B, T, C, h, w)`` with ``weights`` -> ``(B, T, C, h*factor, w*factor)``."""
        b, t, c, h, w = values.shape
        r = self.factor
        nb = neighbours(values.reshape(b * t, c, h, w), self.kernel).reshape(b, t, c, -1, h * w)  # (B,T,C,k2,G)
        out = torch.einsum("btckg,bgrk->btcrg", nb, weights)  # (B, T, C, r2, G)
        out = out.reshape(b, t, c, r, r, h, w).permute(0, 1, 2, 5, 3, 6, 4)
        return out.reshape(b, t, c, h * r, w * r)
