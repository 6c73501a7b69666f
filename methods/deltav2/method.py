"""``deltav2``: DELTAv2 (paper 004) as a bench method: :class:`~baselines.delta.method.Delta` with the tracker of
:mod:`methods.deltav2.tracker` and its switches as parameters. With ``fast_corr=False, coarse_to_fine=False`` it is
the baseline's architecture; the Table 6 ladder turns them on one by one (docs/methods/deltav2.md)."""

from __future__ import annotations

from typing import ClassVar

from baselines.delta.method import Delta
from baselines.delta.tracker import DenseTracker
from methods.deltav2.interpolator import MODES
from methods.deltav2.tracker import DenseTrackerV2


class DeltaV2(Delta):
    tracker_cls: ClassVar[type[DenseTracker]] = DenseTrackerV2
    name: ClassVar[str] = "deltav2"

    def __init__(self, steps: int = 100, lr: float = 5e-4, feature_dim: int = 32, levels: int = 2, radius: int = 2,
                 corr_dim: int = 32, hidden: int = 64, heads: int = 4, depth: int = 2, num_virtual: int = 16,
                 window: int = 4, factor: int = 8, anchor_rows: int = 6, anchor_cols: int = 8, iters: int = 4,
                 clip: int = 8, crop_rows: int = 12, crop_cols: int = 16, upsample_kernel: int = 3,
                 upsample_blocks: int = 1, fast_corr: bool = True, corr_proj: int = 64, coarse_to_fine: bool = True,
                 interpolator: str = "learned", interp_blocks: int = 2, depth_source: str = "dataset",
                 depth_steps: int = 2000, depth_lr: float = 3e-4, depth_scale: float = 0.5) -> None:
        super().__init__(steps=steps, lr=lr, feature_dim=feature_dim, levels=levels, radius=radius, corr_dim=corr_dim,
                         hidden=hidden, heads=heads, depth=depth, num_virtual=num_virtual, window=window,
                         factor=factor, anchor_rows=anchor_rows, anchor_cols=anchor_cols, iters=iters, clip=clip,
                         crop_rows=crop_rows, crop_cols=crop_cols, upsample_kernel=upsample_kernel,
                         upsample_blocks=upsample_blocks, depth_source=depth_source, depth_steps=depth_steps,
                         depth_lr=depth_lr, depth_scale=depth_scale)
        if interpolator not in MODES or corr_proj < 1 or interp_blocks < 0:
            raise ValueError(f"deltav2: interpolator must be one of {MODES}, corr_proj >= 1, interp_blocks >= 0")
        self.params.update(fast_corr=bool(fast_corr), corr_proj=int(corr_proj), coarse_to_fine=bool(coarse_to_fine),
                           interpolator=str(interpolator), interp_blocks=int(interp_blocks))
