"""The dense tracker: iterative refinement of every low-resolution track plus sparse anchors, then upsampling.

From the query frame (frame 0 of the clip) the tracker follows a dense grid of tracks, one per ``factor x factor``
pixels (DELTA: 1/4 of the input), and an ``anchors`` grid of sparse tracks over the whole image (the tokens the
virtual tracks attend to). A track's state is its image position, log-depth and feature in every frame; each
iteration builds a token per track and frame (flow embedding, depth ratio, 4D correlation, depth correlation,
feature, visibility), runs the update transformer and adds its output (position, log-depth and feature updates).
Long videos are cut into windows of ``clip`` frames overlapping by half, each initialised from the one before.
The attention upsampler then gives every pixel its 3D track.

Two hooks are what DELTAv2 changes (methods/deltav2): :meth:`DenseTracker.stride_at` (which dense tracks an
iteration updates) and :meth:`DenseTracker.densify` (how the others follow); the correlation module comes from
:meth:`DenseTracker.make_corr`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.profiler import record_function

from baselines.delta.corr4d import Corr4DFeatures, sample_patches, sample_points
from baselines.delta.encoder import FeatureEncoder, pyramid
from baselines.delta.transformer import UpdateTransformer
from baselines.delta.upsampler import AttentionUpsampler

FREQS = 4  # sine / cosine frequencies of the flow embedding


@dataclass(frozen=True)
class TrackerConfig:
    feature_dim: int = 32
    levels: int = 2
    radius: int = 3  # correlation patches are (2 radius + 1)^2: DELTA's 7 x 7
    corr_dim: int = 32
    hidden: int = 64
    heads: int = 4
    depth: int = 2
    num_virtual: int = 16
    window: int = 4  # local attention windows of window x window dense tracks
    factor: int = 4  # one dense track per factor x factor pixels
    anchors: tuple[int, int] = (6, 8)
    iters: int = 4
    clip: int = 8  # frames per temporal window
    upsample_kernel: int = 3
    upsample_blocks: int = 1
    extra: dict = field(default_factory=dict)  # DELTAv2's switches (read by its subclass)


@dataclass
class Grid:
    """The dense tracks of one forward pass: ``rows x cols`` cells of the full grid starting at ``(top, left)``."""

    top: int
    left: int
    rows: int
    cols: int


def flow_embedding(flow: torch.Tensor, scale: float) -> torch.Tensor:
    """``(..., 2)`` pixel displacements -> sine / cosine at ``FREQS`` octaves plus the scaled raw values."""
    f = flow / scale
    freqs = 2.0 ** torch.arange(FREQS, dtype=flow.dtype, device=flow.device)
    ang = f[..., None] * freqs * math.pi / 8
    return torch.cat([torch.sin(ang).flatten(-2), torch.cos(ang).flatten(-2), f], -1)


def time_embedding(t: int, dim: int, device: torch.device) -> torch.Tensor:
    pos = torch.arange(t, dtype=torch.float32, device=device)[:, None]
    freqs = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(100.0) / dim))
    return torch.cat([torch.sin(pos * freqs), torch.cos(pos * freqs)], -1)


class DenseTracker(nn.Module):
    def __init__(self, cfg: TrackerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.feature_dim
        self.encoder = FeatureEncoder(c)
        self.corr = nn.ModuleList(self.make_corr() for _ in range(cfg.levels))
        self.time_dim = 8
        dim_in = (4 * FREQS + 2) + 1 + cfg.levels * cfg.corr_dim + 1 + c + 1 + self.time_dim
        self.transformer = UpdateTransformer(dim_in, cfg.hidden, cfg.heads, cfg.depth, cfg.num_virtual, cfg.window,
                                             dim_out=3 + c)
        self.feature_norm = nn.LayerNorm(c)
        self.vis_head = nn.Linear(c, 1)
        self.conf_head = nn.Linear(c, 1)
        self.upsampler = AttentionUpsampler(c, cfg.factor, cfg.upsample_kernel, cfg.upsample_blocks)

    # ---- what DELTAv2 changes --------------------------------------------------------------------------
    def make_corr(self) -> nn.Module:
        return Corr4DFeatures(self.cfg.radius, self.cfg.corr_dim)

    def stride_at(self, iteration: int) -> int:
        """The grid stride of the dense tracks that ``iteration`` updates (1: all of them)."""
        return 1

    def densify(self, stride: int, grid: Grid, update: torch.Tensor, query_feats: torch.Tensor) -> torch.Tensor:
        """The updates of every dense track from those of the tracked ones (stride 1: nothing to do).

        ``update (B, T, rows//stride', cols//stride', D)`` -> ``(B, T, rows, cols, D)``."""
        return update

    # ---- geometry of the queries ------------------------------------------------------------------------
    def dense_points(self, grid: Grid, device: torch.device) -> torch.Tensor:
        """Image positions ``(rows*cols, 2)`` of the dense tracks: the centre pixel of each cell."""
        r = self.cfg.factor
        ys = torch.arange(grid.top, grid.top + grid.rows, device=device) * r + r // 2 + 0.5
        xs = torch.arange(grid.left, grid.left + grid.cols, device=device) * r + r // 2 + 0.5
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1).float()

    def anchor_points(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """Image positions ``(ah*aw, 2)`` of the sparse anchors: pixel centres of an even grid over the image."""
        ah, aw = self.cfg.anchors
        ys = torch.floor((torch.arange(ah, device=device) + 0.5) * height / ah) + 0.5
        xs = torch.floor((torch.arange(aw, device=device) + 0.5) * width / aw) + 0.5
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1).float()

    # ---- forward --------------------------------------------------------------------------------------
    def forward(self, video: torch.Tensor, depth: torch.Tensor, grid: Grid | None = None,
                training: bool = False) -> dict[str, object]:
        """``video (B, T, 3, H, W)`` in [-1, 1] and given ``depth (B, T, H, W)`` metres, frame 0 the query frame.

        Returns ``points (N, 2)`` query positions (anchors first), ``num_anchors``, ``grid``, ``iterations``
        (per iteration ``(pos (B, T, N, 2), logz (B, T, N))``, for the loss), ``vis`` / ``conf`` logits
        ``(B, T, N)``, and the upsampled ``full_pos (B, T, 2, h, w)``, ``full_logz``, ``full_vis`` over the
        grid's pixels.
        """
        cfg = self.cfg
        b, t, _, height, width = video.shape
        dev = video.device
        if grid is None:
            grid = Grid(0, 0, height // cfg.factor, width // cfg.factor)
        with record_function("delta.encoder"):  # named stages: benchmarks/delta_speed.py reports their shares
            fmap = self.encoder(video.reshape(b * t, 3, height, width))
        levels = [lv.reshape(b, t, *lv.shape[1:]) for lv in pyramid(fmap, cfg.levels)]
        strides = [FeatureEncoder.stride * 2**i for i in range(cfg.levels)]
        anchors = self.anchor_points(height, width, dev)
        points = torch.cat([anchors, self.dense_points(grid, dev)], 0)
        na, n = anchors.shape[0], points.shape[0]
        xy0 = points[None].expand(b, n, 2)
        feat0 = sample_points(levels[0][:, 0], xy0, strides[0])  # (B, N, C)
        support = [sample_patches(lv[:, 0], xy0, cfg.radius, s) for lv, s in zip(levels, strides, strict=True)]
        depth_maps = depth[:, :, None]  # (B, T, 1, H, W)
        logz0 = torch.log(sample_points(depth_maps[:, 0], xy0, 1.0)[..., 0].clamp(min=1e-3))  # (B, N)

        pos = xy0[:, None].repeat(1, t, 1, 1)
        logz = logz0[:, None].repeat(1, t, 1)
        feats = feat0[:, None].repeat(1, t, 1, 1)
        iterations: list[tuple[torch.Tensor, torch.Tensor]] = []
        step = max(cfg.clip // 2, 1)
        starts = list(range(0, max(t - cfg.clip, 0) + 1, step))
        if starts[-1] + cfg.clip < t:
            starts.append(t - cfg.clip)
        done = 0
        for start in starts:
            end = min(start + cfg.clip, t)
            if done > 0 and end > done:  # new frames start where the last window left each track
                pos[:, done:end] = pos[:, done - 1:done]
                logz[:, done:end] = logz[:, done - 1:done]
                feats[:, done:end] = feats[:, done - 1:done]
            win = slice(start, end)
            p, lz, f = pos[:, win], logz[:, win], feats[:, win]
            for it in range(cfg.iters):
                stride = self.stride_at(it) if not training else self.train_stride_at(it)
                p, lz, f = self.iterate(p, lz, f, xy0, logz0, feat0, support, [lv[:, win] for lv in levels],
                                        strides, depth_maps[:, win], na, grid, stride, start)
                if start == 0:
                    iterations.append((p, lz))
            pos = torch.cat([pos[:, :start], p, pos[:, end:]], 1)
            logz = torch.cat([logz[:, :start], lz, logz[:, end:]], 1)
            feats = torch.cat([feats[:, :start], f, feats[:, end:]], 1)
            done = max(done, end)
        if len(starts) > 1:  # a windowed video: the loss (training uses one window) sees the final tracks
            iterations = [(pos, logz)]
        vis = self.vis_head(feats)[..., 0]
        conf = self.conf_head(feats)[..., 0]
        # The upsampler: convex weights from the query frame's dense track features, applied to the motion.
        dense_feat = feats[:, 0, na:].transpose(1, 2).reshape(b, -1, grid.rows, grid.cols)
        with record_function("delta.upsampler"):
            weights = self.upsampler.weights(dense_feat)
        motion = torch.cat([pos[:, :, na:] - xy0[:, None, na:], (logz - logz0[:, None])[..., na:, None],
                            vis[:, :, na:, None]], -1)  # (B, T, Nd, 4)
        motion = motion.permute(0, 1, 3, 2).reshape(b, t, 4, grid.rows, grid.cols)
        with record_function("delta.upsampler"):
            full = self.upsampler.upsample(weights, motion)
        r = cfg.factor
        y0, x0 = grid.top * r, grid.left * r
        hh, ww = grid.rows * r, grid.cols * r
        ys = torch.arange(y0, y0 + hh, device=dev, dtype=torch.float32) + 0.5
        xs = torch.arange(x0, x0 + ww, device=dev, dtype=torch.float32) + 0.5
        pix = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), 0)  # (2, hh, ww)
        full_logz0 = torch.log(depth[:, 0, y0:y0 + hh, x0:x0 + ww].clamp(min=1e-3))
        return {"points": points, "num_anchors": na, "grid": grid, "iterations": iterations, "vis": vis,
                "conf": conf, "full_pos": full[:, :, :2] + pix, "full_logz": full[:, :, 2] + full_logz0[:, None],
                "full_vis": full[:, :, 3]}

    def train_stride_at(self, iteration: int) -> int:
        return self.stride_at(iteration)

    def iterate(self, pos: torch.Tensor, logz: torch.Tensor, feats: torch.Tensor, xy0: torch.Tensor,
                logz0: torch.Tensor, feat0: torch.Tensor, support: list[torch.Tensor], levels: list[torch.Tensor],
                strides: list[int], depth: torch.Tensor, na: int, grid: Grid, stride: int,
                start: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One refinement of the anchors and the dense tracks on the ``stride`` sub-grid; the others follow by
        :meth:`densify`. ``pos (B, T, N, 2)``, ``logz (B, T, N)``, ``feats (B, T, N, C)`` of one window."""
        b, t, n, _ = pos.shape
        rows = torch.arange(0, grid.rows, stride, device=pos.device)
        cols = torch.arange(0, grid.cols, stride, device=pos.device)
        sub = (rows[:, None] * grid.cols + cols[None]).reshape(-1) + na
        idx = torch.cat([torch.arange(na, device=pos.device), sub])
        m = idx.numel()
        p = pos[:, :, idx].detach()  # correlation lookups do not carry gradients between iterations (RAFT)
        lz, f = logz[:, :, idx], feats[:, :, idx]
        q0, lz0 = xy0[:, idx], logz0[:, idx]
        corr = []
        for lv, s, sup, module in zip(levels, strides, support, self.corr, strict=True):
            with record_function("delta.corr_sample"):
                target = sample_patches(lv.reshape(b * t, *lv.shape[2:]), p.reshape(b * t, m, 2), self.cfg.radius, s)
                query = sup[:, idx][:, None].expand(b, t, m, *sup.shape[2:]).reshape(b * t * m, *sup.shape[2:])
            with record_function("delta.corr4d"):
                corr.append(module(query, target.reshape(b * t * m, *target.shape[2:])).reshape(b, t, m, -1))
        sampled_z = sample_points(depth.reshape(b * t, 1, *depth.shape[-2:]), p.reshape(b * t, m, 2), 1.0)
        dcorr = torch.log(sampled_z.reshape(b, t, m).clamp(min=1e-3)) - lz.detach()
        tokens = torch.cat([flow_embedding(p - q0[:, None], float(self.cfg.factor * 4)),
                            (lz.detach() - lz0[:, None])[..., None], *corr, dcorr[..., None], f,
                            torch.sigmoid(self.vis_head(f)),
                            time_embedding(t, self.time_dim, pos.device)[None, :, None].expand(b, t, m, -1)], -1)
        with record_function("delta.transformer"):
            out = self.transformer(tokens.permute(0, 2, 1, 3), na, (len(rows), len(cols))).permute(0, 2, 1, 3)
        d_pos, d_logz, d_feat = out[..., :2], 0.1 * out[..., 2].clamp(-50, 50), out[..., 3:]
        anchor_upd = torch.cat([d_pos[:, :, :na], d_logz[:, :, :na, None], d_feat[:, :, :na]], -1)
        dense_upd = torch.cat([d_pos[:, :, na:], d_logz[:, :, na:, None], d_feat[:, :, na:]], -1)
        dense_upd = dense_upd.reshape(b, t, len(rows), len(cols), -1)
        if stride > 1:
            query_feats = feat0[:, na:].transpose(1, 2).reshape(b, -1, grid.rows, grid.cols)
            with record_function("delta.interpolate"):
                dense_upd = self.densify(stride, grid, dense_upd, query_feats)
        upd = torch.cat([anchor_upd, dense_upd.reshape(b, t, grid.rows * grid.cols, -1)], 2)
        pos = pos + upd[..., :2]
        logz = logz + upd[..., 2]
        feats = self.feature_norm(feats + upd[..., 3:])
        if start == 0:  # the query frame: every track sits at its query point, at its query depth
            pos = torch.cat([xy0[:, None], pos[:, 1:]], 1)
            logz = torch.cat([logz0[:, None], logz[:, 1:]], 1)
        return pos, logz, feats
