"""DELTAv2's faster 4D correlation: a 1x1 projection of the P^2 = 49 correlation channels to ``proj`` (the public
code: 64; the paper's text: 32), LayerNorm and ReLU, before the same conv stack (``Corr4DCNN``). On a GPU it
pays because 49 channels are not a multiple of 8 (poor tensor-core use); on a CPU it pays only when ``proj`` is
smaller than P^2, since the convs then read fewer channels (measured in docs/methods/deltav2.md)."""

from __future__ import annotations

import torch
from torch import nn

from baselines.delta.corr4d import Corr4DFeatures


class ProjectedCorr4D(Corr4DFeatures):
    def __init__(self, radius: int = 3, out_dim: int = 64, proj: int = 64) -> None:
        self.proj = proj  # read by stem_channels inside the base constructor
        super().__init__(radius, out_dim)
        p2 = (2 * radius + 1) ** 2
        self.projection = nn.Sequential(nn.Linear(p2, proj), nn.LayerNorm(proj), nn.ReLU())

    def stem_channels(self, p2: int) -> int:
        return self.proj

    def stem(self, corr: torch.Tensor) -> torch.Tensor:
        return self.projection(corr).permute(0, 3, 1, 2)
