"""DELTAv2's tracker: baselines/delta's :class:`DenseTracker` with the paper's three changes as switches
(``TrackerConfig.extra``): ``fast_corr`` + ``corr_proj``, ``coarse_to_fine`` and ``interpolator``."""

from __future__ import annotations

import torch
from torch import nn

from baselines.delta.tracker import DenseTracker, Grid, TrackerConfig
from methods.deltav2.corr import ProjectedCorr4D
from methods.deltav2.interpolator import (
    MODES,
    LearnableInterpolator,
    bilinear_weights,
    interpolate,
    lattice,
    nearest_weights,
)
from methods.deltav2.schedule import inference_strides, training_stride


class DenseTrackerV2(DenseTracker):
    def __init__(self, cfg: TrackerConfig) -> None:
        extra = dict(cfg.extra)
        self.fast_corr = bool(extra.get("fast_corr", True))
        self.corr_proj = int(extra.get("corr_proj", 64))
        self.coarse_to_fine = bool(extra.get("coarse_to_fine", True))
        self.mode = str(extra.get("interpolator", "learned"))
        if self.mode not in MODES:
            raise ValueError(f"deltav2: interpolator {self.mode!r} is not one of {MODES}")
        super().__init__(cfg)
        self.interpolator = (LearnableInterpolator(cfg.feature_dim, int(extra.get("interp_blocks", 2)), cfg.heads)
                             if self.coarse_to_fine and self.mode == "learned" else None)
        self.strides = inference_strides(cfg.iters)

    def make_corr(self) -> nn.Module:
        if self.fast_corr:
            return ProjectedCorr4D(self.cfg.radius, self.cfg.corr_dim, self.corr_proj)
        return super().make_corr()

    def stride_at(self, iteration: int) -> int:
        return self.strides[iteration] if self.coarse_to_fine else 1

    def train_stride_at(self, iteration: int) -> int:
        return training_stride(iteration, self.cfg.iters) if self.coarse_to_fine else 1

    def densify(self, stride: int, grid: Grid, update: torch.Tensor, query_feats: torch.Tensor) -> torch.Tensor:
        if self.interpolator is not None:
            weights = self.interpolator.weights(query_feats, stride)
        else:
            _, fr, _, fc = lattice(stride, grid.rows, grid.cols, update.device)
            fixed = nearest_weights(fr, fc) if self.mode == "nearest" else bilinear_weights(fr, fc)
            weights = fixed[None]
        return interpolate(update, weights, stride)
