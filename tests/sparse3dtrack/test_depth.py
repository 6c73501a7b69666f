"""Self-supervised depth: shapes, the warp geometry (checked with the rendered depth), and that training helps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.sparse3dtrack.config import module_profile
from methods.sparse3dtrack.depth import (
    DepthNet,
    _relative_pose,
    _work_size,
    photometric_error,
    reprojection_loss,
    scale_intrinsics,
    train_depth,
    warp,
)


def test_shapes_and_depth_range():
    net = DepthNet(width=8, feat_channels=16, scale=0.5, min_depth=0.5, max_depth=100.0)
    images = torch.randint(0, 256, (2, 3, 64, 208), dtype=torch.uint8)
    depth, feats = net(images)
    assert depth.shape == (2, 1, 64, 208) and feats.shape == (2, 16, 8, 26)
    depth = depth.detach()
    assert float(depth.min()) >= 0.5 - 1e-4 and float(depth.max()) <= 100.0 + 1e-3
    # The untrained net starts near its init depth rather than at either end of the range.
    assert 5.0 < float(depth.median()) < 20.0
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.zeros(2, 64, 208, 3, dtype=torch.uint8))


def _frames(seq, t):
    images = torch.from_numpy(seq.load_images()[[t, t - 1, t + 1]]).permute(0, 3, 1, 2).float() / 255.0
    return images[:1], [images[1:2], images[2:3]]


def test_warp_with_true_depth_beats_a_constant_depth(smoke):
    """Warping the neighbours with the rendered depth explains the target far better: the pose and
    intrinsics algebra is right (ground truth used only here, in a test)."""
    name = sorted(smoke.train.sequences)[0]
    seq = smoke.train.sequences[name]
    gt = np.nan_to_num(smoke.train.layers[name]["depth"], posinf=100.0).clip(0.5, 100.0)
    errors = {"true": [], "constant": [], "identity": []}
    for t in range(1, seq.num_frames - 1, 3):
        target, sources = _frames(seq, t)
        K = torch.from_numpy(seq.intrinsics[t][None]).float()
        poses = [torch.from_numpy(_relative_pose(seq.cam_to_world, t, s)[None]).float() for s in (t - 1, t + 1)]
        true = torch.from_numpy(gt[t][None, None]).float()
        for what, depth in (("true", true), ("constant", torch.full_like(true, 10.0))):
            err = torch.stack([photometric_error(warp(s, depth, K, p), target)
                               for s, p in zip(sources, poses, strict=True)])
            errors[what].append(float(err.min(0).values.mean()))
        still = torch.stack([photometric_error(s, target) for s in sources])
        errors["identity"].append(float(still.min(0).values.mean()))
    true, constant, identity = (np.mean(errors[k]) for k in ("true", "constant", "identity"))
    assert true < 0.8 * constant and true < 0.7 * identity, errors


def test_scale_intrinsics_maps_pixel_edges():
    K = torch.tensor([[100.0, 0, 50], [0, 100, 20], [0, 0, 1]])
    half = scale_intrinsics(K, (40, 100), (20, 50))
    assert torch.allclose(half, torch.tensor([[50.0, 0, 25], [0, 50, 10], [0, 0, 1]]))
    assert _work_size(128, 416, 0.5) == (64, 208)


def test_training_lowers_the_reprojection_loss_on_fixed_frames(smoke):
    seqs = smoke.train.sequences
    # The default LR (1e-3). At 2e-3 batch-2 Adam is noisy enough that one 40-step trajectory can end above its start
    # on some CPUs (seed 0 on an AVX-512 Xeon: loss ratio 1.07; seeds 1-2 there and every seed at 1e-3: 0.79-0.85).
    cfg = {**module_profile("depth", "smoke"), "steps": 40}

    def loss(net: DepthNet) -> float:
        values = []
        torch.manual_seed(0)
        for seq in seqs.values():
            for t in (3, 6, 9):
                target, sources = _frames(seq, t)
                h, w = target.shape[-2:]
                size = _work_size(h, w, net.scale)

                def rs(x: torch.Tensor, size: tuple[int, int] = size) -> torch.Tensor:
                    return torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)

                K = scale_intrinsics(torch.from_numpy(seq.intrinsics[t][None]).float(), (h, w), size)
                poses = [torch.from_numpy(_relative_pose(seq.cam_to_world, t, s)[None]).float() for s in (t - 1, t + 1)]
                with torch.no_grad():
                    sig, _ = net._run((rs(target) - 0.45) / 0.25)
                    values.append(float(reprojection_loss(rs(target), [rs(s) for s in sources],
                                                          net.disparity_to_depth(sig), K, poses, automask=False)[0]))
        return float(np.mean(values))

    torch.manual_seed(0)
    untrained = DepthNet(cfg["width"], cfg["feat_channels"], 0.5)  # the same init train_depth draws at seed 0
    net, history = train_depth(seqs, cfg, seed=0)
    assert len(history) == 40 and {"total", "photometric", "smoothness", "seconds"} <= set(history[0])
    assert not net.training
    assert loss(net) < 0.97 * loss(untrained)


def test_training_is_deterministic_and_checks_its_settings(smoke):
    seqs = {k: v for k, v in smoke.train.sequences.items()}
    cfg = {**module_profile("depth", "smoke"), "steps": 2}
    a = train_depth(seqs, cfg, seed=3)[1]
    b = train_depth(seqs, cfg, seed=3)[1]
    assert [h["total"] for h in a] == [h["total"] for h in b]
    with pytest.raises(ValueError, match="unknown depth settings"):
        train_depth(seqs, {"stepz": 3})
