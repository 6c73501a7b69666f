"""The update transformer (DELTA's ``EfficientUpdateFormer``), per block:

1. time attention along each track;
2. ``num_virtual`` learnable virtual tracks cross-attend to the sparse anchor tracks, then self-attend;
3. dense tracks attend locally, inside ``window`` x ``window`` windows of their grid;
4. every track cross-attends to the virtual tracks (the global context, at a cost linear in the tracks).

Tokens are ``(B, N, T, D)`` with the ``num_anchors`` anchor tracks first and the dense grid ``(gh, gw)`` after.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Pre-norm multi-head (cross-)attention with a residual connection, then a pre-norm MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        q = self.norm_q(x)
        kv = q if context is None else self.norm_kv(context)
        x = x + self.attn(q, kv, kv, need_weights=False)[0]
        return x + self.mlp(self.norm_mlp(x))


def windows(x: torch.Tensor, grid: tuple[int, int], size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """``(M, gh*gw, D)`` -> ``(M * nwin, size*size, D)`` local windows (the grid zero-padded to whole windows)."""
    m, _, d = x.shape
    gh, gw = grid
    ph, pw = (-gh) % size, (-gw) % size
    g = F.pad(x.reshape(m, gh, gw, d), (0, 0, 0, pw, 0, ph))
    hh, ww = (gh + ph) // size, (gw + pw) // size
    g = g.reshape(m, hh, size, ww, size, d).permute(0, 1, 3, 2, 4, 5)
    return g.reshape(m * hh * ww, size * size, d), (hh, ww)


def unwindows(x: torch.Tensor, grid: tuple[int, int], size: int, shape: tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`windows`: ``(M * nwin, size*size, D)`` -> ``(M, gh*gw, D)``."""
    gh, gw = grid
    hh, ww = shape
    d = x.shape[-1]
    g = x.reshape(-1, hh, ww, size, size, d).permute(0, 1, 3, 2, 4, 5).reshape(-1, hh * size, ww * size, d)
    return g[:, :gh, :gw].reshape(-1, gh * gw, d)


class UpdateTransformer(nn.Module):
    def __init__(self, dim_in: int, dim: int = 64, heads: int = 4, depth: int = 2, num_virtual: int = 16,
                 window: int = 4, dim_out: int = 3) -> None:
        super().__init__()
        self.window = window
        self.inp = nn.Linear(dim_in, dim)
        self.virtual = nn.Parameter(torch.randn(1, num_virtual, 1, dim) * 0.02)
        self.time = nn.ModuleList(Attention(dim, heads) for _ in range(depth))
        self.virtual_from_anchors = nn.ModuleList(Attention(dim, heads) for _ in range(depth))
        self.virtual_self = nn.ModuleList(Attention(dim, heads) for _ in range(depth))
        self.local = nn.ModuleList(Attention(dim, heads) for _ in range(depth))
        self.from_virtual = nn.ModuleList(Attention(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim_out)
        # Zero updates at the start: the untrained tracker keeps every point where it was queried (a sound first
        # guess) instead of adding random motion that the first training steps must first unlearn.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, tokens: torch.Tensor, num_anchors: int, grid: tuple[int, int]) -> torch.Tensor:
        """``tokens (B, N, T, dim_in)`` -> ``(B, N, T, dim_out)``; ``N = num_anchors + gh * gw``."""
        b, n, t, _ = tokens.shape
        x = self.inp(tokens)
        v = self.virtual.expand(b, -1, t, -1)
        nv = v.shape[1]
        for blk in range(len(self.time)):
            x = self.time[blk](x.reshape(b * n, t, -1)).reshape(b, n, t, -1)
            per_frame = x.permute(0, 2, 1, 3).reshape(b * t, n, -1)  # (B*T, N, D)
            vf = v.permute(0, 2, 1, 3).reshape(b * t, nv, -1)
            vf = self.virtual_self[blk](self.virtual_from_anchors[blk](vf, per_frame[:, :num_anchors]))
            dense = per_frame[:, num_anchors:]
            if dense.shape[1]:
                win, shape = windows(dense, grid, self.window)
                dense = unwindows(self.local[blk](win), grid, self.window, shape)
            per_frame = self.from_virtual[blk](torch.cat([per_frame[:, :num_anchors], dense], 1), vf)
            x = per_frame.reshape(b, t, n, -1).permute(0, 2, 1, 3)
            v = vf.reshape(b, t, nv, -1).permute(0, 2, 1, 3)
        return self.out(self.norm(x))
