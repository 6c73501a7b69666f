"""DELTA's losses (``loss.py`` / ``train.py`` of the public code, as the notes give them), on what
:meth:`~baselines.delta.tracker.DenseTracker.forward` returns:

- L1 on the 2D tracks of every iteration, weighted ``gamma^(I - i - 1)`` (later iterations count more), in
  units of the dense cell (``factor`` pixels), and on the upsampled full-resolution tracks;
- L1 on inverse depth (``depth_ref / z``: metres over ``depth_ref``, so near points weigh more, as DELTA's
  inverse depth normalised by the maximum depth does);
- binary cross-entropy on visibility, and on the confidence with target "2D error below ``conf_px``".
Only points with ground truth count (the sky has none).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    track_2d: float = 1.0
    depth: float = 1.0
    visibility: float = 1.0
    confidence: float = 1.0
    gamma: float = 0.8
    conf_px: float = 6.0  # DELTA's 12 px at 512 px wide, scaled to the 256 px of synth-dense quick
    depth_ref: float = 10.0
    # A driving camera passes the points beside the road: behind the camera (or just in front) their projection
    # and inverse depth explode (1/z at 1 mm is 1000x a point at 1 m) and would drown the loss; Kubric's
    # orbiting cameras never meet this. Such frames of a track are left out of the loss.
    min_depth: float = 0.5


@dataclass
class Targets:
    """Ground truth of one clip at every pixel of the query frame: ``uv (T, H, W, 2)`` image positions,
    ``z (T, H, W)`` depth, ``vis (T, H, W)`` visibility, ``valid (H, W)`` (a 3D point exists there)."""

    uv: torch.Tensor
    z: torch.Tensor
    vis: torch.Tensor
    valid: torch.Tensor


def _at_points(targets: Targets, points: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Targets ``(T, N, ...)`` at pixel-centre query positions ``points (N, 2)``."""
    u = (points[:, 0] - 0.5).long().clamp(0, targets.valid.shape[1] - 1)
    v = (points[:, 1] - 0.5).long().clamp(0, targets.valid.shape[0] - 1)
    return targets.uv[:, v, u], targets.z[:, v, u], targets.vis[:, v, u], targets.valid[v, u]


def _track_terms(pos: torch.Tensor, logz: torch.Tensor, uv: torch.Tensor, z: torch.Tensor, mask: torch.Tensor,
                 factor: float, w: LossWeights) -> torch.Tensor:
    denom = mask.sum().clamp(min=1)
    l2d = ((pos - uv).abs().sum(-1) / factor * mask).sum() / denom
    inv_pred = w.depth_ref * torch.exp(-logz)
    ldepth = ((inv_pred - w.depth_ref / z.clamp(min=1e-3)).abs() * mask).sum() / denom
    return w.track_2d * l2d + w.depth * ldepth


def dense_tracking_loss(out: dict, targets: Targets, factor: int, w: LossWeights) -> tuple[torch.Tensor, dict]:
    """The weighted sum of the terms above for a batch of one clip (``B = 1``)."""
    uv, z, vis, valid = _at_points(targets, out["points"])
    mask = (valid[None] & torch.isfinite(z) & (z > w.min_depth)).float().expand_as(z)
    uv, z = torch.nan_to_num(uv), torch.nan_to_num(z, nan=1.0, posinf=1.0)
    iters = out["iterations"]
    track = sum(w.gamma ** (len(iters) - i - 1) * _track_terms(p[0], lz[0], uv, z, mask, factor, w)
                for i, (p, lz) in enumerate(iters))
    denom = mask.sum().clamp(min=1)
    lvis = (F.binary_cross_entropy_with_logits(out["vis"][0], vis.float(), reduction="none") * mask).sum() / denom
    err = (iters[-1][0][0] - uv).norm(dim=-1)
    conf_target = ((err < w.conf_px) & vis).float().detach()
    lconf = (F.binary_cross_entropy_with_logits(out["conf"][0], conf_target, reduction="none") * mask).sum() / denom
    # The upsampled tracks over the grid's pixels.
    grid, r = out["grid"], factor
    ys = slice(grid.top * r, (grid.top + grid.rows) * r)
    xs = slice(grid.left * r, (grid.left + grid.cols) * r)
    f_uv, f_z, f_vis = targets.uv[:, ys, xs], targets.z[:, ys, xs], targets.vis[:, ys, xs]
    f_mask = (targets.valid[ys, xs][None] & torch.isfinite(f_z) & (f_z > w.min_depth)).float().expand_as(f_z)
    f_uv, f_z = torch.nan_to_num(f_uv), torch.nan_to_num(f_z, nan=1.0, posinf=1.0)
    full = _track_terms(out["full_pos"][0].permute(0, 2, 3, 1), out["full_logz"][0], f_uv, f_z, f_mask, factor, w)
    f_denom = f_mask.sum().clamp(min=1)
    full_vis = (F.binary_cross_entropy_with_logits(out["full_vis"][0], f_vis.float(), reduction="none")
                * f_mask).sum() / f_denom
    total = track + full + w.visibility * (lvis + full_vis) + w.confidence * lconf
    parts = {k: float(v.detach()) for k, v in (("track", track), ("full", full), ("vis", lvis), ("conf", lconf))}
    return total, parts
