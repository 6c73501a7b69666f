"""The CenterNet "ddd" network: one image in, stride-4 dense maps out.

CenterNet's KITTI 3D model is DLA-34 (ImageNet weights) with one 3x3 + 1x1 branch per head. Neither the
weights nor the compute exist here, so the encoder-decoder is CenterTrack's small DLA-like one (imported:
the same residual blocks and upsampling, fed one image instead of three summed stems), and every head keeps
its own 3x3 branch as CenterNet has it. Heads and their raw meaning:

- ``hm`` (C): heatmap logits, bias -2.19 (CenterNet's ddd prior: sigmoid ~ 0.1),
- ``dep`` (1): depth = 1 / sigmoid(raw) - 1,
- ``rot`` (8): two overlapping bins x (2 logits, sin, cos of the residual),
- ``dim`` (3): h, w, l in metres (absolute, as CenterNet; not log),
- ``wh`` (2): 2D box size in output pixels, ``reg`` (2): sub-pixel offset of the 2D centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from baselines.centertrack.model import Block, Up, conv_bn

HEAD_CHANNELS: dict[str, int] = {"dep": 1, "rot": 8, "dim": 3, "wh": 2, "reg": 2}
HM_PRIOR_BIAS = -2.19  # CenterNet's ddd heatmap bias
INIT_DEPTH = 20.0  # m: raw = -log(depth) gives 1/sigmoid(raw) - 1 = depth exactly
INIT_DIMS = (1.5, 1.6, 3.9)  # h, w, l of a typical car (m)


@dataclass
class CenterNetConfig:
    num_classes: int = 1
    width: int = 16  # channels at stride 4; deeper levels double it
    head_conv: int = 32
    depth: tuple[int, ...] = field(default=(1, 1, 2, 2))  # residual blocks at strides 4, 8, 16, 32
    stem_kernel: int = 3


class CenterNetDDD(nn.Module):
    """``forward(img (B, 3, H, W) normalised) -> {head: (B, C, H/4, W/4)}``."""

    def __init__(self, config: CenterNetConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.stem = conv_bn(3, w // 2, config.stem_kernel, 2)
        chans = [w, 2 * w, 4 * w, 8 * w]
        levels, cin = [], w // 2
        for cout, n in zip(chans, config.depth, strict=True):
            levels.append(nn.Sequential(Block(cin, cout, 2), *[Block(cout, cout) for _ in range(n - 1)]))
            cin = cout
        self.levels = nn.ModuleList(levels)
        self.ups = nn.ModuleList([Up(chans[i + 1], chans[i]) for i in range(len(chans) - 1)])
        hc = config.head_conv
        channels = {"hm": config.num_classes, **HEAD_CHANNELS}
        self.heads = nn.ModuleDict({
            name: nn.Sequential(nn.Conv2d(w, hc, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(hc, c, 1))
            for name, c in channels.items()})
        nn.init.constant_(self.heads["hm"][-1].bias, HM_PRIOR_BIAS)
        # From scratch, start depth and sizes where the objects are, not at 1 m and 1x1x1 m: the L1 terms
        # would otherwise dominate the first hundreds of steps while the outputs crawl there.
        nn.init.constant_(self.heads["dep"][-1].bias, -math.log(INIT_DEPTH))
        with torch.no_grad():
            self.heads["dim"][-1].bias.copy_(torch.tensor(INIT_DIMS))

    def pyramid(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Every scale the network computes: the decoded stride-4 map the heads read, then the encoder's maps at
        strides 4, 8, 16, 32 (DEFT samples its appearance features from several scales)."""
        x = self.stem(img)
        feats = []
        for level in self.levels:
            x = level(x)
            feats.append(x)
        x = feats[-1]
        for i in range(len(feats) - 2, -1, -1):
            x = self.ups[i](x, feats[i])
        return [x, *feats]

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """The stride-4 feature map every head reads."""
        return self.pyramid(img)[0]

    def heads_of(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(x) for name, head in self.heads.items()}

    def forward(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads_of(self.features(img))


def depth_from_raw(raw: torch.Tensor) -> torch.Tensor:
    """CenterNet's depth transform: metres = 1 / sigmoid(raw) - 1."""
    return 1.0 / (torch.sigmoid(raw) + 1e-6) - 1.0
