"""The CenterTrack network, small enough to train from scratch on a laptop CPU.

CenterTrack (Zhou et al., 2020) feeds the current image, the previous image and a heatmap of the
previous frame's objects through three separate stems whose outputs are summed, runs one backbone,
and predicts dense maps at stride 4. The paper's backbone is DLA-34 with deformable convolutions
and ImageNet weights; none of that is available offline, so this is a tiny DLA-like encoder-decoder
(strided residual blocks down to stride 32, then iterative upsampling with skip connections back to
stride 4) whose width is a config knob. The heads are CenterTrack's "tracking,ddd" heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

# Head name -> channels, except "hm" whose channels are the number of classes.
# rot: 2 bins x (2 bin logits, sin, cos of the residual), CenterNet's "ddd" multibin layout.
HEAD_CHANNELS: dict[str, int] = {"reg": 2, "wh": 2, "tracking": 2, "dep": 1, "rot": 8, "dim": 3, "amodal": 2}
# CenterNet's prior on the heatmap logits: sigmoid(-4.6) ~ 0.01, so training starts with few false peaks.
HM_PRIOR_BIAS = -4.6
INIT_DEPTH = 20.0  # metres; depth = 1/sigmoid(raw) - 1, so raw = -log(depth) gives it exactly
INIT_DIMS = (1.5, 1.6, 3.9)  # h, w, l of a typical car (m)


@dataclass
class ModelConfig:
    num_classes: int = 1
    width: int = 32  # channels at stride 4; deeper levels double it (capped at 8x)
    head_conv: int = 64
    depth: tuple[int, ...] = field(default=(1, 1, 2, 2))  # residual blocks at strides 4, 8, 16, 32
    stem_kernel: int = 7  # CenterTrack's 7x7 stems; 3 is much cheaper at full resolution
    # A "dep_unc" head: the log scale of a Laplace distribution over the depth (the aleatoric uncertainty of
    # MonoFlex / GUPNet), trained by its negative log-likelihood instead of plain L1.
    depth_uncertainty: bool = False


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Block(nn.Module):
    """A basic residual block (two 3x3 convs), strided when it changes resolution."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.skip is None else self.skip(x)
        return F.relu(self.conv2(self.conv1(x)) + identity)


class Up(nn.Module):
    """Upsample the deeper map x2 and fuse it with the skip map of the shallower level (DLA's IDA, simplified)."""

    def __init__(self, cdeep: int, cskip: int):
        super().__init__()
        self.proj = conv_bn(cdeep, cskip, 1)
        self.fuse = conv_bn(cskip, cskip, 3)

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(self.proj(deep), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(up + skip)


class CenterTrackNet(nn.Module):
    """Inputs: image, previous image ``(B, 3, H, W)`` normalised, previous heatmap ``(B, 1, H, W)``.

    Returns a dict of stride-4 maps: ``hm`` (logits, one channel per class), ``reg``, ``wh``,
    ``tracking``, ``dep`` (raw; depth = 1/sigmoid(raw) - 1), ``rot``, ``dim`` (log metres), ``amodal``, and
    with ``depth_uncertainty`` ``dep_unc`` (log of the depth's Laplace scale, in the depth target's units).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        w = config.width
        stem = w // 2
        # Three stems, summed: the way CenterTrack injects the previous frame into the backbone.
        k = config.stem_kernel
        self.img_stem = conv_bn(3, stem, k, 2)
        self.pre_img_stem = conv_bn(3, stem, k, 2)
        self.pre_hm_stem = conv_bn(1, stem, k, 2)
        chans = [w, 2 * w, 4 * w, 8 * w]
        levels = []
        cin = stem
        for cout, n in zip(chans, config.depth, strict=True):
            blocks = [Block(cin, cout, 2)] + [Block(cout, cout) for _ in range(n - 1)]
            levels.append(nn.Sequential(*blocks))
            cin = cout
        self.levels = nn.ModuleList(levels)
        self.ups = nn.ModuleList([Up(chans[i + 1], chans[i]) for i in range(len(chans) - 1)])
        # The heatmap gets its own 3x3 branch (it decides what is detected); the regression heads share
        # one 3x3 branch and differ by a 1x1 projection. CenterNet gives every head its own 3x3 conv,
        # which here would cost more than the whole backbone.
        hc = config.head_conv
        self.hm_branch = nn.Sequential(nn.Conv2d(w, hc, 3, 1, 1), nn.ReLU(inplace=True))
        self.reg_branch = nn.Sequential(nn.Conv2d(w, hc, 3, 1, 1), nn.ReLU(inplace=True))
        self.heads = nn.ModuleDict({"hm": nn.Conv2d(hc, config.num_classes, 1)})
        self.heads.update({name: nn.Conv2d(hc, c, 1) for name, c in HEAD_CHANNELS.items()})
        if config.depth_uncertainty:  # created last, so a model without it draws the same initial weights
            self.heads["dep_unc"] = nn.Conv2d(hc, 1, 1)
        nn.init.constant_(self.heads["hm"].bias, HM_PRIOR_BIAS)
        # Start depth at ~20 m and sizes at a car's instead of 1 m and 1x1x1 m: from scratch, the L1 depth
        # loss would otherwise dominate the first hundreds of steps while the raw output crawls there.
        nn.init.constant_(self.heads["dep"].bias, -math.log(INIT_DEPTH))
        with torch.no_grad():
            self.heads["dim"].bias.copy_(torch.log(torch.tensor(INIT_DIMS)))

    def forward(self, img: torch.Tensor, pre_img: torch.Tensor, pre_hm: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.img_stem(img) + self.pre_img_stem(pre_img) + self.pre_hm_stem(pre_hm)
        feats = []
        for level in self.levels:
            x = level(x)
            feats.append(x)
        x = feats[-1]
        for i in range(len(feats) - 2, -1, -1):
            x = self.ups[i](x, feats[i])
        hm_feat, reg_feat = self.hm_branch(x), self.reg_branch(x)
        return {name: head(hm_feat if name == "hm" else reg_feat) for name, head in self.heads.items()}


def depth_from_raw(raw: torch.Tensor) -> torch.Tensor:
    """CenterNet's depth transform: metres = 1 / sigmoid(raw) - 1 (always positive)."""
    return 1.0 / (torch.sigmoid(raw) + 1e-6) - 1.0


def save_weights(model: nn.Module, path: str) -> None:
    """Save a state dict: safetensors when installed, else ``torch.save`` (loadable with weights_only)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, str(path))


def load_weights(model: nn.Module, path: str, strict: bool = True) -> None:
    """Load weights saved by :func:`save_weights` (or a user's checkpoint with matching names)."""
    import os

    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: CenterTrack weights file not found (bench never downloads weights)")
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    model.load_state_dict(state, strict=strict)
