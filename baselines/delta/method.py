"""``delta``: DELTA-style dense 3D point tracking (the baseline of paper 004), as a bench method.

``fit`` trains :class:`~baselines.delta.tracker.DenseTracker` from scratch on the training videos' dense point
tracks (a fully supervised method on synthetic ground truth, as DELTA is on Kubric: it declares
``sees_ground_truth``, so the firewall hands it the training point tracks; it needs no box labels). Its inputs
are the RGB video and the dataset's given video depth (synth-dense: rendered depth through a noise model,
:func:`bench.data.synth.labels.video_depth`). ``predict`` tracks every pixel of each query frame and returns
the queried points' 3D tracks in the camera frame (``point-tracks``), which the runner scores with TAPVid-3D.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from baselines.delta.losses import LossWeights
from baselines.delta.tracker import DenseTracker, TrackerConfig
from baselines.delta.train import TrainConfig, Video, frames_tensor, pixel_targets, train
from bench.data.sequence import PointTracks
from bench.interface import Method, RunContext, SplitView, TrainView


def require_depth(view: SplitView, method: str) -> None:
    missing = sorted(set(view.sequences) - set(view.depth))
    if missing:
        raise ValueError(f"{method} needs the dataset's given video depth (SplitView.depth) for every video; "
                         f"missing for {missing[:3]}: use synth-dense or a TAPVid-3D export with video_depth")


class Delta(Method):
    """The dense baseline. Parameters are the tracker's (see :class:`TrackerConfig`) and training's."""

    outputs = "point-tracks"
    sees_ground_truth = True  # trained on the training videos' dense point tracks (synthetic ground truth)
    tracker_cls: ClassVar[type[DenseTracker]] = DenseTracker
    name: ClassVar[str] = "delta"

    def __init__(self, steps: int = 100, lr: float = 5e-4, feature_dim: int = 32, levels: int = 2, radius: int = 2,
                 corr_dim: int = 32, hidden: int = 64, heads: int = 4, depth: int = 2, num_virtual: int = 16,
                 window: int = 4, factor: int = 8, anchor_rows: int = 6, anchor_cols: int = 8, iters: int = 4,
                 clip: int = 8, crop_rows: int = 12, crop_cols: int = 16, upsample_kernel: int = 3,
                 upsample_blocks: int = 1) -> None:
        super().__init__(steps=steps, lr=lr, feature_dim=feature_dim, levels=levels, radius=radius,
                         corr_dim=corr_dim, hidden=hidden, heads=heads, depth=depth, num_virtual=num_virtual,
                         window=window, factor=factor, anchor_rows=anchor_rows, anchor_cols=anchor_cols, iters=iters,
                         clip=clip, crop_rows=crop_rows, crop_cols=crop_cols, upsample_kernel=upsample_kernel,
                         upsample_blocks=upsample_blocks)
        if steps < 0 or iters < 1 or clip < 2 or factor < 1 or radius < 1 or levels < 1 or hidden % heads:
            raise ValueError(f"{self.name}: need steps >= 0, iters >= 1, clip >= 2, factor >= 1, radius >= 1, "
                             "levels >= 1 and hidden divisible by heads")
        self.model_: DenseTracker | None = None
        self.history_: list[float] = []

    def tracker_config(self) -> TrackerConfig:
        p = self.params
        keys = ("feature_dim", "levels", "radius", "corr_dim", "hidden", "heads", "depth", "num_virtual", "window",
                "factor", "iters", "clip", "upsample_kernel", "upsample_blocks")
        known = {k: p[k] for k in keys}
        extra = {k: v for k, v in p.items() if k not in keys and k not in self._not_model()}
        return TrackerConfig(**known, anchors=(int(p["anchor_rows"]), int(p["anchor_cols"])), extra=extra)

    @staticmethod
    def _not_model() -> set[str]:
        return {"steps", "lr", "anchor_rows", "anchor_cols", "crop_rows", "crop_cols"}

    def new_model(self) -> DenseTracker:
        return self.tracker_cls(self.tracker_config())

    def fit(self, train_view: TrainView, labels: Any, ctx: RunContext) -> None:
        require_depth(train_view, self.name)
        if not train_view.points:
            raise ValueError(f"{self.name}: the training videos carry no point tracks to learn from")
        torch.manual_seed(ctx.seed)
        model = self.new_model()
        videos = []
        for name in sorted(train_view.points):
            seq = train_view.sequences[name]
            w, h = seq.image_size
            videos.append(Video(frames_tensor(seq.load_images()),
                                torch.from_numpy(np.array(train_view.depth[name], dtype=np.float32)),
                                pixel_targets(train_view.points[name], seq.intrinsics[0], h, w)))
        p = self.params
        self.history_ = train(model, videos, TrainConfig(int(p["steps"]), float(p["lr"]), int(p["crop_rows"]),
                                                         int(p["crop_cols"])),
                              LossWeights(), ctx.seed, ctx.progress)
        self.model_ = model

    @torch.no_grad()
    def track(self, frames: torch.Tensor, depth: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every pixel of frame 0 tracked through ``frames (T, 3, H, W)``: ``pos (T, 2, H', W')`` image positions,
        ``z (T, H', W')`` metres, ``vis (T, H', W')`` (bool); ``H', W'`` = the image cut to whole dense cells."""
        if self.model_ is None:
            raise RuntimeError(f"{self.name}: call fit (or load_state_dict) before predict")
        self.model_.eval()
        out = self.model_(frames[None], depth[None])
        return {"pos": out["full_pos"][0], "z": torch.exp(out["full_logz"][0]), "vis": out["full_vis"][0] > 0}

    def predict(self, split: SplitView, ctx: RunContext) -> dict[str, PointTracks]:
        require_depth(split, self.name)
        result = {}
        for i, name in enumerate(sorted(split.sequences)):
            seq = split.sequences[name]
            queries = np.asarray(split.queries.get(name, np.zeros((0, 3))), dtype=np.float64)
            frames = frames_tensor(seq.load_images())
            depth = torch.from_numpy(np.array(split.depth[name], dtype=np.float32))
            t_len = frames.shape[0]
            xyz = np.full((t_len, len(queries), 3), np.nan, dtype=np.float32)
            visible = np.zeros((t_len, len(queries)), dtype=bool)
            k = seq.intrinsics[0]
            for t0 in np.unique(queries[:, 2].astype(np.int64)):
                sel = np.flatnonzero(queries[:, 2].astype(np.int64) == t0)
                # Forward from the query frame, and backward (the video reversed) to the frames before it.
                for order in (np.arange(t0, t_len), np.arange(t0, -1, -1)):
                    if len(order) < 2 and t0 > 0:
                        continue
                    idx = torch.from_numpy(order.copy())
                    out = self.track(frames[idx], depth[idx])
                    hh, ww = out["z"].shape[-2:]
                    u = np.clip(np.floor(queries[sel, 0]).astype(np.int64), 0, ww - 1)
                    v = np.clip(np.floor(queries[sel, 1]).astype(np.int64), 0, hh - 1)
                    pos, z = out["pos"][:, :, v, u].numpy(), out["z"][:, v, u].numpy()  # (T', 2, n), (T', n)
                    x = (pos[:, 0] - k[0, 2]) / k[0, 0] * z
                    y = (pos[:, 1] - k[1, 2]) / k[1, 1] * z
                    xyz[order[:, None], sel[None]] = np.stack([x, y, z], -1)
                    visible[order[:, None], sel[None]] = out["vis"][:, v, u].numpy()
            result[name] = PointTracks(xyz=xyz, visible=visible, queries=queries)
            ctx.progress(i + 1, len(split.sequences), f"{self.name} tracking")
        return result

    def state_dict(self) -> dict[str, Any] | None:
        return None if self.model_ is None else dict(self.model_.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        model = self.new_model()
        model.load_state_dict(state)
        self.model_ = model
