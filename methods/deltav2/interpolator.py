"""How the untracked dense tracks follow the tracked ones in a coarse-to-fine iteration.

Each dense cell takes the updates (position, log-depth and feature changes) of its 2 x 2 nearest tracked cells
(the stride lattice around it; at the right and bottom edges, where the lattice ends, the last row / column is
repeated, DELTAv2's replicate padding) blended by weights that sum to 1:

- ``bilinear``: the cell's bilinear weights in the lattice;
- ``nearest``: all weight on the nearest tracked cell;
- ``learned`` (:class:`LearnableInterpolator`, paper 004 Sec. 3.3.2): the query-frame feature of the cell
  attends to those of its four neighbours through ``blocks`` cross-attention blocks with an ALiBi bias
  (-slope x L1 distance), and a last scaled dot product gives the logits. One difference from the paper: the
  bilinear weights enter the logits as a log prior, and the last projection starts at zero, so the untrained
  module *is* bilinear (exact on an affine motion field) and training moves it away only where the features
  say the neighbours move differently (at motion boundaries, where the paper found bilinear over-smooths).
"""

from __future__ import annotations

import math

import torch
from torch import nn

MODES = ("learned", "nearest", "bilinear")


def lattice(stride: int, rows: int, cols: int, device: torch.device | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every dense row / column its two lattice neighbours (indices into the stride sub-grid) and its
    fractional position between them: ``(nb_rows (rows, 2), frac_rows (rows,), nb_cols (cols, 2), frac_cols)``."""

    def axis(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.arange(n, device=device)
        last = (n - 1) // stride
        lo = torch.div(i, stride, rounding_mode="floor")
        hi = (lo + 1).clamp(max=last)
        frac = torch.where(hi > lo, (i - lo * stride).float() / stride, torch.zeros((), device=device))
        return torch.stack([lo, hi], -1), frac

    nr, fr = axis(rows)
    nc, fc = axis(cols)
    return nr, fr, nc, fc


def bilinear_weights(fr: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
    """``(rows, cols, 4)`` weights of the neighbours (top-left, top-right, bottom-left, bottom-right)."""
    wy = torch.stack([1 - fr, fr], -1)[:, None, :, None]
    wx = torch.stack([1 - fc, fc], -1)[None, :, None, :]
    return (wy * wx).reshape(len(fr), len(fc), 4)


def nearest_weights(fr: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
    """One-hot on the nearest neighbour (a tie goes to the top / left one)."""
    index = (fr > 0.5).long()[:, None] * 2 + (fc > 0.5).long()[None, :]
    return torch.nn.functional.one_hot(index, 4).float()


def gather_neighbours(values: torch.Tensor, nr: torch.Tensor, nc: torch.Tensor) -> torch.Tensor:
    """``values (..., R', C', D)`` on the lattice -> ``(..., rows, cols, 4, D)`` at each cell's neighbours."""
    out = [values[..., nr[:, a], :, :][..., :, nc[:, b], :] for a in (0, 1) for b in (0, 1)]
    return torch.stack(out, -2)


class LearnableInterpolator(nn.Module):
    def __init__(self, dim: int, blocks: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.dim, self.heads = dim, heads
        self.blocks = nn.ModuleList(nn.ModuleDict({"q": nn.Linear(dim, dim), "k": nn.Linear(dim, dim),
                                                   "v": nn.Linear(dim, dim), "o": nn.Linear(dim, dim),
                                                   "norm": nn.LayerNorm(dim),
                                                   "mlp": nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(),
                                                                        nn.Linear(2 * dim, dim))})
                                    for _ in range(blocks))
        self.slopes = nn.Parameter(torch.ones(blocks, heads))
        self.q_out, self.k_out = nn.Linear(dim, dim), nn.Linear(dim, dim)
        nn.init.zeros_(self.q_out.weight)
        nn.init.zeros_(self.q_out.bias)

    def weights(self, feats: torch.Tensor, stride: int) -> torch.Tensor:
        """Query-frame features of the dense cells ``(B, C, rows, cols)`` -> weights ``(B, rows, cols, 4)``."""
        b, c, rows, cols = feats.shape
        nr, fr, nc, fc = lattice(stride, rows, cols, feats.device)
        prior = bilinear_weights(fr, fc)
        x = feats.permute(0, 2, 3, 1)  # (B, rows, cols, C)
        nb = gather_neighbours(x[:, ::stride, ::stride], nr, nc)  # (B, rows, cols, 4, C)
        # L1 distance (in dense cells) from the cell to each neighbour: the ALiBi bias.
        dy = torch.stack([fr, fr - 1], -1).abs() * stride
        dx = torch.stack([fc, fc - 1], -1).abs() * stride
        dist = (dy[:, None, :, None] + dx[None, :, None, :]).reshape(rows, cols, 4)
        h, d = self.heads, c // self.heads
        q = x
        for i, blk in enumerate(self.blocks):
            qh = blk["q"](blk["norm"](q)).reshape(b, rows, cols, h, d)
            kh = blk["k"](nb).reshape(b, rows, cols, 4, h, d)
            vh = blk["v"](nb).reshape(b, rows, cols, 4, h, d)
            logits = torch.einsum("brchd,brckhd->brchk", qh, kh) / math.sqrt(d)
            logits = logits - self.slopes[i][:, None] * dist[:, :, None]
            att = torch.einsum("brchk,brckhd->brchd", logits.softmax(-1), vh).reshape(b, rows, cols, c)
            q = q + blk["o"](att)
            q = q + blk["mlp"](q)
        logits = torch.einsum("brcd,brckd->brck", self.q_out(q), self.k_out(nb)) / math.sqrt(c)
        return (logits + torch.log(prior.clamp(min=1e-12))).softmax(-1)


def interpolate(update: torch.Tensor, weights: torch.Tensor, stride: int) -> torch.Tensor:
    """``update (B, T, R', C', D)`` of the tracked lattice, ``weights (B | 1, rows, cols, 4)`` ->
    ``(B, T, rows, cols, D)``; tracked cells keep their own update exactly."""
    rows, cols = weights.shape[1:3]
    nr, _, nc, _ = lattice(stride, rows, cols, update.device)
    nb = gather_neighbours(update, nr, nc)  # (B, T, rows, cols, 4, D)
    out = (nb * weights[:, None, :, :, :, None]).sum(-2)
    return _keep_tracked(out, update, stride)


def _keep_tracked(out: torch.Tensor, update: torch.Tensor, stride: int) -> torch.Tensor:
    out = out.clone()
    out[:, :, ::stride, ::stride] = update
    return out
