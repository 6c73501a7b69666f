"""Image encoder: stride-8 CNN features, and a DINOv2-style ViT built from a local state dict (never downloaded)."""

from __future__ import annotations

import pytest
import torch

from methods.sparse3dtrack.encoder import ImageEncoder


def _images(b: int, h: int, w: int) -> torch.Tensor:
    return torch.randint(0, 256, (b, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_cnn_features_are_stride_8():
    enc = ImageEncoder(out_channels=16, width=8)
    assert enc(_images(2, 64, 208)).shape == (2, 16, 8, 26)
    assert enc(_images(1, 60, 100)).shape == (1, 16, 8, 13)  # ceil(H/8), ceil(W/8)
    with pytest.raises(ValueError, match="B, 3, H, W"):
        enc(_images(1, 64, 64)[:, :2])


def _tiny_dinov2_state(dim: int = 64, depth: int = 2, grid: int = 4, patch: int = 14) -> dict[str, torch.Tensor]:
    """Random tensors under DINOv2's parameter names (as in its released checkpoints)."""
    g = torch.Generator().manual_seed(1)
    state = {
        "cls_token": torch.randn(1, 1, dim, generator=g) * 0.02,
        "pos_embed": torch.randn(1, 1 + grid * grid, dim, generator=g) * 0.02,
        "mask_token": torch.zeros(1, dim),  # in the checkpoints, unused for features
        "patch_embed.proj.weight": torch.randn(dim, 3, patch, patch, generator=g) * 0.02,
        "patch_embed.proj.bias": torch.zeros(dim),
        "norm.weight": torch.ones(dim),
        "norm.bias": torch.zeros(dim),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        state.update({
            p + "norm1.weight": torch.ones(dim), p + "norm1.bias": torch.zeros(dim),
            p + "attn.qkv.weight": torch.randn(3 * dim, dim, generator=g) * 0.05,
            p + "attn.qkv.bias": torch.zeros(3 * dim),
            p + "attn.proj.weight": torch.randn(dim, dim, generator=g) * 0.05, p + "attn.proj.bias": torch.zeros(dim),
            p + "ls1.gamma": torch.full((dim,), 0.1),
            p + "norm2.weight": torch.ones(dim), p + "norm2.bias": torch.zeros(dim),
            p + "mlp.fc1.weight": torch.randn(4 * dim, dim, generator=g) * 0.05,
            p + "mlp.fc1.bias": torch.zeros(4 * dim),
            p + "mlp.fc2.weight": torch.randn(dim, 4 * dim, generator=g) * 0.05, p + "mlp.fc2.bias": torch.zeros(dim),
            p + "ls2.gamma": torch.full((dim,), 0.1),
        })
    return state


def test_vit_loads_local_weights_frozen_with_trainable_adapter(tmp_path):
    state = _tiny_dinov2_state()
    path = tmp_path / "dinov2_tiny.pth"
    torch.save({"model": state}, path)  # a wrapped checkpoint is unwrapped
    enc = ImageEncoder(out_channels=16, kind="vit", weights=str(path))
    assert torch.equal(enc.backbone.patch_embed.proj.weight, state["patch_embed.proj.weight"])
    assert torch.equal(enc.backbone.blocks[1].mlp.fc2.weight, state["blocks.1.mlp.fc2.weight"])
    assert not any(p.requires_grad for p in enc.backbone.parameters())
    assert all(p.requires_grad for p in enc.adapter.parameters())
    out = enc(_images(2, 64, 208))
    assert out.shape == (2, 16, 8, 26)  # patch-14 tokens resampled to stride 8
    out.sum().backward()  # gradients reach the adapter only
    assert enc.adapter[0].weight.grad is not None
    assert enc.backbone.patch_embed.proj.weight.grad is None
    enc.train()
    assert not enc.backbone.training  # frozen backbone stays in eval mode


def test_vit_missing_weights_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere" / "dinov2_vits14.pth"
    with pytest.raises(FileNotFoundError, match="nowhere/dinov2_vits14.pth"):
        ImageEncoder(kind="vit", weights=str(missing))
    with pytest.raises(ValueError, match="local weights"):
        ImageEncoder(kind="vit")
    with pytest.raises(ValueError, match="kind"):
        ImageEncoder(kind="resnet")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="DINOv2"):
        ImageEncoder(kind="vit", weights=str(bad))
