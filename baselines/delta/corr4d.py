"""4D correlation features (DELTA's ``get_4dcorr_features`` + ``Corr4DMLP``).

For each track and frame, the P x P feature patch around its current estimate is correlated with the P x P
support patch around the query point at the query frame: a P x P x P x P volume scaled by 1/sqrt(C). A small
conv stack reads it as a P x P image with P^2 channels, in both orientations (query patch as channels, then the
target patch), and the two readings are averaged. DELTAv2 changes only :meth:`Corr4DFeatures.stem`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sample_points(fmap: torch.Tensor, xy: torch.Tensor, stride: float) -> torch.Tensor:
    """Bilinear samples of ``fmap (B, C, h, w)`` at image points ``xy (B, M, 2)`` -> ``(B, M, C)``.

    Image coordinates have pixel ``u`` covering ``[u, u + 1)`` (a query at ``u + 0.5``); feature cell ``i`` at
    ``stride`` covers ``[stride i, stride (i + 1))``, so its centre is feature coordinate ``x / stride - 0.5``.
    """
    h, w = fmap.shape[-2:]
    fx = xy[..., 0] / stride - 0.5
    fy = xy[..., 1] / stride - 0.5
    grid = torch.stack([2 * fx / max(w - 1, 1) - 1, 2 * fy / max(h - 1, 1) - 1], -1)
    out = F.grid_sample(fmap, grid[:, :, None], mode="bilinear", padding_mode="border", align_corners=True)
    return out[..., 0].transpose(1, 2)


def patch_offsets(radius: int, stride: float, device: torch.device) -> torch.Tensor:
    """``(P^2, 2)`` image-coordinate offsets of a P x P patch (P = 2 radius + 1) of feature cells at ``stride``."""
    r = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32) * stride
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([dx.reshape(-1), dy.reshape(-1)], -1)


def sample_patches(fmap: torch.Tensor, xy: torch.Tensor, radius: int, stride: float) -> torch.Tensor:
    """P x P patches of ``fmap (B, C, h, w)`` around ``xy (B, N, 2)`` -> ``(B, N, P^2, C)``."""
    b, n = xy.shape[:2]
    offsets = patch_offsets(radius, stride, xy.device)
    pts = (xy[:, :, None] + offsets).reshape(b, -1, 2)
    return sample_points(fmap, pts, stride).reshape(b, n, offsets.shape[0], -1)


class Corr4DFeatures(nn.Module):
    """Correlation volumes of one pyramid level -> a feature vector per track and frame (``out_dim``)."""

    def __init__(self, radius: int = 3, out_dim: int = 64) -> None:
        super().__init__()
        self.radius = radius
        p = 2 * radius + 1
        c_in = self.stem_channels(p * p)
        s1 = (p - 1) // 2 + 1  # size after a stride-2, padding-1, kernel-3 conv
        s2 = (s1 - 1) // 2 + 1
        self.convs = nn.Sequential(nn.Conv2d(c_in, out_dim // 2, 3, stride=2, padding=1), nn.ReLU(),
                                   nn.Conv2d(out_dim // 2, out_dim, 3, stride=2, padding=1), nn.ReLU(),
                                   nn.Conv2d(out_dim, out_dim, s2))  # the last kernel covers what is left: 1 x 1

    def stem_channels(self, p2: int) -> int:
        """Channels the conv stack reads (the baseline reads the P^2 correlations themselves)."""
        return p2

    def stem(self, corr: torch.Tensor) -> torch.Tensor:
        """``(M, P, P, P^2)`` (channels last) -> ``(M, C, P, P)`` for the conv stack."""
        return corr.permute(0, 3, 1, 2)

    def forward(self, query: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``query (M, P^2, C)`` support patches, ``target (M, P^2, C)`` patches at the estimates -> ``(M, out)``."""
        m, p2, c = query.shape
        p = int(round(math.sqrt(p2)))
        corr = torch.einsum("mqc,mtc->mqt", query, target) / math.sqrt(c)
        a = self.convs(self.stem(corr.reshape(m, p2, p, p).permute(0, 2, 3, 1)))  # channels: query patch
        b = self.convs(self.stem(corr.transpose(1, 2).reshape(m, p2, p, p).permute(0, 2, 3, 1)))  # the target's
        return 0.5 * (a + b).reshape(m, -1)
