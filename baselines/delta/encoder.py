"""The feature CNN: a RAFT-style residual encoder at stride 4, and its average-pooled pyramid."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm1, self.norm2 = nn.InstanceNorm2d(c_out), nn.InstanceNorm2d(c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1, stride=stride) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        return F.relu(self.skip(x) + y)


class FeatureEncoder(nn.Module):
    """Images ``(N, 3, H, W)`` in [-1, 1] -> features ``(N, dim, H/4, W/4)``.

    DELTA's BasicEncoder returns strides 2/4/8 with 64/128/128 channels; here one stride-4 map of ``dim``
    channels, whose coarser levels are average pools (CoTracker's pyramid): fewer weights to learn on a CPU.
    """

    stride = 4

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        half = max(dim // 2, 8)
        self.stem = nn.Sequential(nn.Conv2d(3, half, 7, stride=2, padding=3), nn.InstanceNorm2d(half), nn.ReLU())
        self.layer1 = ResidualBlock(half, half)
        self.layer2 = ResidualBlock(half, dim, stride=2)
        self.out = nn.Conv2d(dim, dim, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.layer2(self.layer1(self.stem(images))))


def pyramid(fmap: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``levels`` maps: the input and its 2x, 4x ... average pools (stride 4, 8, 16 of the image)."""
    out = [fmap]
    for _ in range(levels - 1):
        out.append(F.avg_pool2d(out[-1], 2, stride=2))
    return out
