"""Image encoder + adapter (paper 3.1): stride-8 feature maps for 2D query matching.

The paper uses a frozen DINOv2 ViT with a trainable adapter. Pretrained weights cannot be
downloaded here, so the default is a small CNN trained from scratch (fast on one CPU core); a
DINOv2-style ViT (patch 14) is built from a LOCAL state dict when a user has one (``kind="vit"``,
``weights=PATH``). Either way a trainable adapter (1x1 conv + a normalisation) maps the backbone
features to ``out_channels`` at stride 8.

Normalisation is per pixel over channels (:class:`ChannelNorm`, GroupNorm with one group per pixel
so to speak) rather than GroupNorm/BatchNorm over the image: a location's features then do not depend
on what else is in the picture, so the matcher can train on crops and run on whole frames.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 8
KINDS = ("cnn", "vit")


def normalise(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float, the convention every sparse3dtrack network shares."""
    if images_uint8.ndim != 4 or images_uint8.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images_uint8.shape)}")
    return (images_uint8.float() / 255.0 - 0.45) / 0.25


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of every pixel of a (B, C, H, W) map, with a learned affine."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight[:, None, None] + self.bias[:, None, None]


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False),
                         ChannelNorm(cout), nn.ReLU(inplace=True))


class Adapter(nn.Sequential):
    """Trainable 1x1 conv + per-pixel channel normalisation on top of the (possibly frozen) backbone."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, 1), ChannelNorm(cout))


class SmallCNN(nn.Module):
    """Three stride-2 stages (width, 2*width, 4*width) and a dilated block for context at stride 8."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            _conv(3, w, 2), _conv(w, w),
            _conv(w, 2 * w, 2), _conv(2 * w, 2 * w),
            _conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w),
            _conv(4 * w, 4 * w, dilation=2),  # a wider view (cars are up to ~15 cells wide) at no resolution cost
        )
        self.channels = 4 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Block(nn.Module):
    """A pre-norm ViT block with DINOv2's parameter names (norm1, attn.qkv/proj, ls1, norm2, mlp.fc1/fc2, ls2)."""

    def __init__(self, dim: int, heads: int, hidden: int, layer_scale: bool) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, hidden)
        self.mlp.fc2 = nn.Linear(hidden, dim)
        if layer_scale:
            self.ls1 = nn.Module()
            self.ls1.gamma = nn.Parameter(torch.ones(dim))
            self.ls2 = nn.Module()
            self.ls2.gamma = nn.Parameter(torch.ones(dim))
        self.layer_scale = layer_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.attn.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(b, n, d)
        y = self.attn.proj(y)
        x = x + (y * self.ls1.gamma if self.layer_scale else y)
        y = self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))
        return x + (y * self.ls2.gamma if self.layer_scale else y)


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A local state dict (torch ``weights_only`` pickle or safetensors); never downloads anything."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ViT weights not found at {path} (weights are never downloaded; give a local file)")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as error:
            raise ImportError(f"{path}: reading .safetensors needs the safetensors package") from error
        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "teacher"):  # common checkpoint wrappers
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    for prefix in ("module.", "backbone.", "encoder."):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


class DinoViT(nn.Module):
    """A DINOv2-style ViT (patch 14) whose shape is read off the state dict; frozen after loading."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        needed = ("patch_embed.proj.weight", "pos_embed", "cls_token")
        missing = [k for k in needed if k not in state]
        if missing:
            raise ValueError(f"not a DINOv2-style ViT state dict: missing {missing}")
        dim, _, patch, _ = state["patch_embed.proj.weight"].shape
        depth = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("blocks.")), default=-1)
        if depth == 0:
            raise ValueError("not a DINOv2-style ViT state dict: no transformer blocks")
        hidden = state["blocks.0.mlp.fc1.weight"].shape[0]
        # DINOv2 uses 64-dimensional heads for every size (ViT-S/6, B/12, L/16, g/24).
        heads = max(1, dim // 64)
        self.patch, self.channels = int(patch), int(dim)
        self.num_register = state["register_tokens"].shape[1] if "register_tokens" in state else 0
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros_like(state["cls_token"]))
        self.pos_embed = nn.Parameter(torch.zeros_like(state["pos_embed"]))
        if self.num_register:
            self.register_tokens = nn.Parameter(torch.zeros_like(state["register_tokens"]))
        self.blocks = nn.ModuleList([_Block(dim, heads, hidden, "blocks.0.ls1.gamma" in state) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        ours = self.state_dict()
        missing = sorted(set(ours) - set(state))
        if missing:
            raise ValueError(f"ViT state dict lacks {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        self.load_state_dict({k: state[k] for k in ours})  # extra keys (heads, mask_token) are ignored
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> DinoViT:
        return super().train(False)  # frozen: always in eval mode

    def _pos(self, gh: int, gw: int) -> torch.Tensor:
        pos = self.pos_embed[:, 1:]
        n = pos.shape[1]
        side = int(math.isqrt(n))
        grid = pos.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
        return torch.cat([self.pos_embed[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        gh, gw = math.ceil(h / self.patch), math.ceil(w / self.patch)
        x = F.interpolate(x, size=(gh * self.patch, gw * self.patch), mode="bilinear", align_corners=False)
        tokens = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1) + self._pos(gh, gw)
        if self.num_register:
            tokens = torch.cat([tokens[:, :1], self.register_tokens.expand(b, -1, -1), tokens[:, 1:]], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)[:, 1 + self.num_register:]
        return tokens.transpose(1, 2).reshape(b, self.channels, gh, gw)


class ImageEncoder(nn.Module):
    """uint8 images (B, 3, H, W) -> adapted features (B, out_channels, ceil(H/8), ceil(W/8))."""

    def __init__(self, out_channels: int = 64, width: int = 32, kind: str = "cnn", weights: str | None = None) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"encoder kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.backbone: nn.Module
        if kind == "vit":
            if weights is None:
                raise ValueError("kind='vit' needs a local weights file (weights=PATH)")
            self.backbone = DinoViT(load_state_dict(weights))
        else:
            self.backbone = SmallCNN(width)
        self.adapter = Adapter(int(self.backbone.channels), out_channels)
        self.out_channels = out_channels

    def forward(self, images_uint8: torch.Tensor) -> torch.Tensor:
        h, w = images_uint8.shape[-2:]
        size = (math.ceil(h / STRIDE), math.ceil(w / STRIDE))
        if self.kind == "vit":
            # Pretrained DINOv2 expects ImageNet statistics, not the from-scratch convention.
            mean = torch.tensor([0.485, 0.456, 0.406], device=images_uint8.device).view(1, 3, 1, 1)
            std = torch.tensor([0.229, 0.224, 0.225], device=images_uint8.device).view(1, 3, 1, 1)
            if images_uint8.ndim != 4 or images_uint8.shape[1] != 3:
                raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images_uint8.shape)}")
            with torch.no_grad():
                feats = self.backbone((images_uint8.float() / 255.0 - mean) / std)
            feats = F.interpolate(feats, size=size, mode="bilinear", align_corners=False)
        else:
            feats = self.backbone(normalise(images_uint8))
            if feats.shape[-2:] != size:
                feats = F.interpolate(feats, size=size, mode="bilinear", align_corners=False)
        return self.adapter(feats)
