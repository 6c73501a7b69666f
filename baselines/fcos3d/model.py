"""The FCOS3D network, small: a residual encoder, an FPN, and one head shared by every level.

FCOS3D is ResNet-101 + FPN P3-P7 (strides 8-128, 256 channels) with a shared head of 2 stacked convs per
branch. Our images are 416x128 (quick), so the pyramid is P3-P5 (strides 8, 16, 32: 52x16 down to 13x4
cells), built on CenterTrack's small residual blocks (imported). Per point, the head predicts:

- ``cls`` (C) logits (focal loss) and ``centerness`` (1) from the classification branch,
- from the regression branch: ``offset`` (2) to the projected 3D centre in units of the level's stride,
  ``depth`` (1, metres = exp(scale_l * x), a learnable scale per level), ``size`` (3, log h w l),
  ``yaw`` (1, the local yaw alpha, trained by the sine of the difference) and ``dir`` (2, the direction bin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from baselines.centertrack.model import Block, conv_bn

STRIDES = (8, 16, 32)
CLS_PRIOR = 0.01  # FCOS's prior probability for the classification bias
INIT_DEPTH = 20.0
INIT_DIMS = (1.5, 1.6, 3.9)


@dataclass
class FCOS3DConfig:
    num_classes: int = 1
    width: int = 16  # channels at stride 4; deeper levels double it
    fpn_channels: int = 32
    depth: tuple[int, ...] = field(default=(1, 1, 2, 2))  # residual blocks at strides 4, 8, 16, 32
    stem_kernel: int = 3
    head_convs: int = 2


def _tower(channels: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(n):
        layers += [nn.Conv2d(channels, channels, 3, 1, 1), nn.GroupNorm(min(8, channels), channels), nn.ReLU(True)]
    return nn.Sequential(*layers)


class FCOS3DNet(nn.Module):
    """``forward(img) -> {head: [(B, C, H_l, W_l) per level]}`` for levels of strides 8, 16, 32."""

    def __init__(self, config: FCOS3DConfig):
        super().__init__()
        self.config = config
        w, c = config.width, config.fpn_channels
        self.stem = conv_bn(3, w // 2, config.stem_kernel, 2)
        chans = [w, 2 * w, 4 * w, 8 * w]
        levels, cin = [], w // 2
        for cout, n in zip(chans, config.depth, strict=True):
            levels.append(nn.Sequential(Block(cin, cout, 2), *[Block(cout, cout) for _ in range(n - 1)]))
            cin = cout
        self.levels = nn.ModuleList(levels)
        self.lateral = nn.ModuleList([nn.Conv2d(ch, c, 1) for ch in chans[1:]])
        self.smooth = nn.ModuleList([nn.Conv2d(c, c, 3, 1, 1) for _ in chans[1:]])
        self.cls_tower = _tower(c, config.head_convs)
        self.reg_tower = _tower(c, config.head_convs)
        self.cls = nn.Conv2d(c, config.num_classes, 3, 1, 1)
        self.centerness = nn.Conv2d(c, 1, 3, 1, 1)
        self.reg = nn.Conv2d(c, 2 + 1 + 3 + 1, 3, 1, 1)  # offset, depth, size, yaw
        self.dir = nn.Conv2d(c, 2, 3, 1, 1)
        self.scales = nn.Parameter(torch.ones(len(STRIDES), 2))  # per level: offset scale, depth scale
        nn.init.constant_(self.cls.bias, -math.log((1 - CLS_PRIOR) / CLS_PRIOR))
        with torch.no_grad():
            self.reg.bias.zero_()
            self.reg.bias[2] = math.log(INIT_DEPTH)
            self.reg.bias[3:6] = torch.log(torch.tensor(INIT_DIMS))

    def forward(self, img: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        x = self.stem(img)
        feats = []
        for level in self.levels:
            x = level(x)
            feats.append(x)
        pyramid: list[torch.Tensor] = []
        top = None
        for i in range(len(feats) - 1, 0, -1):  # strides 32, 16, 8
            lat = self.lateral[i - 1](feats[i])
            top = lat if top is None else lat + F.interpolate(top, size=lat.shape[-2:], mode="nearest")
            pyramid.insert(0, self.smooth[i - 1](top))
        out: dict[str, list[torch.Tensor]] = {k: [] for k in ("cls", "centerness", "offset", "depth", "size", "yaw",
                                                               "dir")}
        for lvl, p in enumerate(pyramid):
            cf, rf = self.cls_tower(p), self.reg_tower(p)
            reg = self.reg(rf)
            out["cls"].append(self.cls(cf))
            out["centerness"].append(self.centerness(cf))
            out["offset"].append(reg[:, 0:2] * self.scales[lvl, 0])
            # FCOS3D: depth = exp(scale * x); the bias starts it at INIT_DEPTH.
            out["depth"].append(reg[:, 2:3] * self.scales[lvl, 1])
            out["size"].append(reg[:, 3:6])
            out["yaw"].append(reg[:, 6:7])
            out["dir"].append(self.dir(rf))
        return out


def flatten(out: dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per-level maps -> ``(B, P, C)`` over every point of every level (level by level, row-major)."""
    return {k: torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1) for k, maps in out.items()}
