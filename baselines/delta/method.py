"""``delta``: DELTA-style dense 3D point tracking (the baseline of paper 004), as a bench method.

``fit`` trains :class:`~baselines.delta.tracker.DenseTracker` from scratch on the training videos' dense point
tracks (a fully supervised method on synthetic ground truth, as DELTA is on Kubric: it declares
``sees_ground_truth``, so the firewall hands it the training point tracks; it needs no box labels). Its inputs
are the RGB video and a video depth, as in the papers, from one of two sources (``depth_source``):

- ``dataset``: the dataset's given video depth (synth-dense: rendered depth through a noise model,
  :func:`bench.data.synth.labels.video_depth`);
- ``selfsup``: Sparse3DTrack's self-supervised depth network (:mod:`methods.sparse3dtrack.depth`), trained in
  ``fit`` from the training videos and their poses alone (no depth label), then run on every video, training and
  evaluation alike, so that the tracker trains on the depth it will be given.

``predict`` tracks every pixel of each query frame and returns
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
from methods.sparse3dtrack.depth import DEFAULTS as DEPTH_DEFAULTS
from methods.sparse3dtrack.depth import DepthNet, train_depth

DEPTH_SOURCES = ("dataset", "selfsup")
DEPTH_NET_PREFIX = "depth_net."  # the self-supervised depth network's weights in the state dict


def require_depth(view: SplitView, method: str) -> None:
    missing = sorted(set(view.sequences) - set(view.depth))
    if missing:
        raise ValueError(f"{method} needs the dataset's given video depth (SplitView.depth) for every video; "
                         f"missing for {missing[:3]}: use synth-dense or a TAPVid-3D export with video_depth")


def new_depth_net(scale: float) -> DepthNet:
    """An untrained depth network of the shape :func:`train_depth` builds at ``scale`` (for loading weights)."""
    d = DEPTH_DEFAULTS
    return DepthNet(d["width"], d["feat_channels"], scale, d["min_depth"], d["max_depth"], d["init_depth"])


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
                 upsample_blocks: int = 1, depth_source: str = "dataset",
                 # selfsup's depth network: chosen on the development world (synth-dense data seed 1; abs-rel
                 # against its given depth 1.29 at 700 steps / lr 1e-3, 0.37 at 2000 / 3e-4; lr 3e-3 collapsed to
                 # min_depth): docs/methods/deltav2.md
                 depth_steps: int = 2000, depth_lr: float = 3e-4, depth_scale: float = 0.5) -> None:
        super().__init__(steps=steps, lr=lr, feature_dim=feature_dim, levels=levels, radius=radius,
                         corr_dim=corr_dim, hidden=hidden, heads=heads, depth=depth, num_virtual=num_virtual,
                         window=window, factor=factor, anchor_rows=anchor_rows, anchor_cols=anchor_cols, iters=iters,
                         clip=clip, crop_rows=crop_rows, crop_cols=crop_cols, upsample_kernel=upsample_kernel,
                         upsample_blocks=upsample_blocks, depth_source=depth_source, depth_steps=depth_steps,
                         depth_lr=depth_lr, depth_scale=depth_scale)
        if steps < 0 or iters < 1 or clip < 2 or factor < 1 or radius < 1 or levels < 1 or hidden % heads:
            raise ValueError(f"{self.name}: need steps >= 0, iters >= 1, clip >= 2, factor >= 1, radius >= 1, "
                             "levels >= 1 and hidden divisible by heads")
        if depth_source not in DEPTH_SOURCES or depth_steps < 0 or not 0 < depth_scale <= 1 or depth_lr <= 0:
            raise ValueError(f"{self.name}: depth_source must be one of {DEPTH_SOURCES} (got {depth_source!r}), "
                             "depth_steps >= 0, depth_lr > 0 and 0 < depth_scale <= 1")
        self.model_: DenseTracker | None = None
        self.depth_net_: DepthNet | None = None
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
        return {"steps", "lr", "anchor_rows", "anchor_cols", "crop_rows", "crop_cols", "depth_source", "depth_steps",
                "depth_lr", "depth_scale"}

    def new_model(self) -> DenseTracker:
        return self.tracker_cls(self.tracker_config())

    def input_depth(self, view: SplitView, name: str, images: np.ndarray) -> torch.Tensor:
        """The video depth ``(T, H, W)`` metres the tracker is given for one video, from ``depth_source``."""
        if self.params["depth_source"] == "dataset":
            return torch.from_numpy(np.array(view.depth[name], dtype=np.float32))
        if self.depth_net_ is None:
            raise RuntimeError(f"{self.name}: depth_source=selfsup needs the depth network: call fit first")
        uint8 = torch.from_numpy(np.array(images, copy=True)).permute(0, 3, 1, 2)
        with torch.no_grad():
            # A few frames at a time bounds the decoder's memory on long videos.
            depth = [self.depth_net_(uint8[i:i + 8])[0][:, 0] for i in range(0, len(uint8), 8)]
        return torch.cat(depth)

    def fit(self, train_view: TrainView, labels: Any, ctx: RunContext) -> None:
        if not train_view.points:
            raise ValueError(f"{self.name}: the training videos carry no point tracks to learn from")
        self.depth_net_ = None
        if self.params["depth_source"] == "dataset":
            require_depth(train_view, self.name)
        else:
            # Videos and poses only: the depth network never sees a depth label (paper 001, Sec. 3.1).
            self.depth_net_, _ = train_depth(
                train_view.sequences, {"steps": int(self.params["depth_steps"]), "lr": float(self.params["depth_lr"]),
                                       "scale": float(self.params["depth_scale"])},
                seed=ctx.seed, progress=lambda i, n, msg: ctx.progress(i, n, f"self-supervised {msg}"))
        torch.manual_seed(ctx.seed)
        model = self.new_model()
        videos = []
        for name in sorted(train_view.points):
            seq = train_view.sequences[name]
            w, h = seq.image_size
            images = seq.load_images()
            videos.append(Video(frames_tensor(images), self.input_depth(train_view, name, images),
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
        if self.params["depth_source"] == "dataset":
            require_depth(split, self.name)
        result = {}
        for i, name in enumerate(sorted(split.sequences)):
            seq = split.sequences[name]
            queries = np.asarray(split.queries.get(name, np.zeros((0, 3))), dtype=np.float64)
            images = seq.load_images()
            frames = frames_tensor(images)
            depth = self.input_depth(split, name, images)
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
        if self.model_ is None:
            return None
        state = dict(self.model_.state_dict())
        if self.depth_net_ is not None:
            state.update({DEPTH_NET_PREFIX + k: v for k, v in self.depth_net_.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        model = self.new_model()
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith(DEPTH_NET_PREFIX)})
        self.model_ = model
        self.depth_net_ = None
        depth_state = {k[len(DEPTH_NET_PREFIX):]: v for k, v in state.items() if k.startswith(DEPTH_NET_PREFIX)}
        if self.params["depth_source"] == "selfsup":
            if not depth_state:
                raise ValueError(f"{self.name}: depth_source=selfsup, but the checkpoint has no depth network")
            self.depth_net_ = new_depth_net(float(self.params["depth_scale"]))
            self.depth_net_.load_state_dict(depth_state)
            self.depth_net_.eval()
