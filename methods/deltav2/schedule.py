"""The coarse-to-fine stride schedule (DenseTrack3Dv2's ``forward_window``).

At inference with K iterations, iteration ``i < K - 1`` updates the dense tracks on the grid of stride
``2^max(3 - i, 0)`` (8, 4, 2 for K = 4) and the last iteration all of them. In training the first two strides are
drawn at random (8 or 4, then 4 or 2), so that the interpolator sees every gap it meets at test time.
Anchors are not part of the grid: every iteration updates them.
"""

from __future__ import annotations

import torch

MAX_STRIDE = 8


def inference_strides(iters: int, max_stride: int = MAX_STRIDE) -> list[int]:
    """Strides of the ``iters`` iterations: halving from ``max_stride`` and 1 at the last."""
    levels = max_stride.bit_length() - 1  # 8 -> 3
    return [2 ** max(levels - i, 0) if i < iters - 1 else 1 for i in range(iters)]


def training_stride(iteration: int, iters: int, generator: torch.Generator | None = None,
                    max_stride: int = MAX_STRIDE) -> int:
    """The stride of ``iteration`` in training: iteration 0 picks ``max_stride`` or half of it, iteration 1 half
    or a quarter (never coarser than iteration 0's choices), later ones as at inference; the last is always 1."""
    fixed = inference_strides(iters, max_stride)[iteration]
    if iteration >= min(2, iters - 1):
        return fixed
    coin = int(torch.randint(0, 2, (1,), generator=generator))
    return max(fixed // (2 if coin else 1), 1)


def tracked_cells(stride: int, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of the dense cells a ``stride`` iteration updates (the grid's top-left lattice)."""
    return torch.arange(0, rows, stride), torch.arange(0, cols, stride)
