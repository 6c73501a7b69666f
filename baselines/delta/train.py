"""Training from scratch on the training videos' dense ground truth (no pretrained weights).

Each step takes one video, a clip of ``clip`` frames from the query frame (frame 0) with a random frame step of
1 or 2 (more motion per clip), and a random ``crop_rows x crop_cols`` patch of the dense grid (DELTA trains on a
dense 15 x 20 patch of its low-resolution grid plus sparse tracks); the anchors cover the whole image. AdamW with
gradient clipping, a fixed number of steps, seeded: the same seed gives the same weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from baselines.delta.losses import LossWeights, Targets, dense_tracking_loss
from baselines.delta.tracker import DenseTracker, Grid
from bench.data.sequence import PointTracks


@dataclass
class Video:
    """One training video as tensors: ``frames (T, 3, H, W)`` in [-1, 1], ``depth (T, H, W)`` (given), and the
    per-pixel ground truth of its query frame."""

    frames: torch.Tensor
    depth: torch.Tensor
    targets: Targets


def frames_tensor(images: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 -> ``(T, 3, H, W)`` float in [-1, 1] (DELTA's ``2 x / 255 - 1``)."""
    return torch.from_numpy(np.array(images, copy=True)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def pixel_targets(points: PointTracks, intrinsics: np.ndarray, height: int, width: int) -> Targets:
    """Per-pixel targets from point tracks queried at frame 0 on pixel centres (synth-dense's dense tracks)."""
    t_len = points.xyz.shape[0]
    uv = np.full((t_len, height, width, 2), np.nan, dtype=np.float32)
    z = np.full((t_len, height, width), np.nan, dtype=np.float32)
    vis = np.zeros((t_len, height, width), dtype=bool)
    valid = np.zeros((height, width), dtype=bool)
    q = np.asarray(points.queries)
    first = q[:, 2] == 0
    u = np.floor(q[first, 0]).astype(np.int64)
    v = np.floor(q[first, 1]).astype(np.int64)
    xyz = np.asarray(points.xyz, dtype=np.float64)[:, first]
    with np.errstate(divide="ignore", invalid="ignore"):
        proj = xyz @ intrinsics.T
        uv[:, v, u] = (proj[..., :2] / proj[..., 2:3]).astype(np.float32)
    z[:, v, u] = xyz[..., 2]
    vis[:, v, u] = np.asarray(points.visible)[:, first]
    valid[v, u] = True
    uv[~np.isfinite(uv)] = np.nan
    return Targets(torch.from_numpy(uv), torch.from_numpy(z), torch.from_numpy(vis), torch.from_numpy(valid))


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 100
    lr: float = 5e-4
    crop_rows: int = 12
    crop_cols: int = 16
    max_frame_step: int = 2


def train(model: DenseTracker, videos: list[Video], cfg: TrainConfig, weights: LossWeights, seed: int,
          progress: Callable[[int, int, str], None] | None = None) -> list[float]:
    """Train ``model`` in place for ``cfg.steps`` steps; the per-step losses."""
    if not videos:
        raise ValueError("dense tracker training needs at least one video with point tracks")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    clip, factor = model.cfg.clip, model.cfg.factor
    history = []
    model.train()
    for step in range(cfg.steps):
        video = videos[int(rng.integers(len(videos)))]
        t_len, _, height, width = video.frames.shape
        max_step = max(1, min(cfg.max_frame_step, (t_len - 1) // max(clip - 1, 1)))
        frame_step = int(rng.integers(1, max_step + 1))
        idx = torch.arange(min(clip, t_len)) * frame_step
        rows, cols = height // factor, width // factor
        crop_r, crop_c = min(cfg.crop_rows, rows), min(cfg.crop_cols, cols)
        grid = Grid(int(rng.integers(rows - crop_r + 1)), int(rng.integers(cols - crop_c + 1)), crop_r, crop_c)
        tg = video.targets
        targets = Targets(tg.uv[idx], tg.z[idx], tg.vis[idx], tg.valid)
        out = model(video.frames[idx][None], video.depth[idx][None], grid=grid, training=True)
        loss, _ = dense_tracking_loss(out, targets, factor, weights)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, cfg.steps, "dense tracker training")
    model.eval()
    return history
