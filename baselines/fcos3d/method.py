"""FCOS3D as a bench method (3D detections on unseen videos) and a 3D lifter (``<2d source>+fcos3d``).

Every setting is a constructor keyword; the defaults are the ``quick`` recipe and each profile's own values live
in ``methods.fcos3d`` of ``bench/profiles/{smoke,quick,paper}.yaml``. ``regress_ranges`` are the boundaries
between the pyramid levels' ranges of regress distance (input px; FCOS3D's 48/96/192/384 at 1600x900 input,
scaled to our three levels and image sizes). The shared method/lifter machinery is
:class:`baselines.detector3d.MonoDetector3D`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from baselines.centertrack.train import NATIVE
from baselines.detector3d import Found, MonoDetector3D
from baselines.fcos3d.decode import boxes_at, decode, point_scores
from baselines.fcos3d.model import STRIDES, FCOS3DNet, flatten
from baselines.fcos3d.targets import level_ranges, points
from baselines.fcos3d.train import build_model
from baselines.fcos3d.train import train as train_model
from bench.interface import RunContext, TrainView


class FCOS3D(MonoDetector3D):
    """FCOS3D trained from scratch on the labels at hand."""

    name: ClassVar[str] = "fcos3d"
    arch_keys: ClassVar[tuple[str, ...]] = ("input_size", "width", "fpn_channels", "depth", "stem_kernel",
                                            "head_convs")

    def __init__(
        self, *,
        input_size: str | Sequence[int] = NATIVE, width: int = 16, fpn_channels: int = 32,
        depth: Sequence[int] = (1, 1, 2, 2), stem_kernel: int = 3, head_convs: int = 2,
        regress_ranges: Sequence[float] = (16.0, 32.0), center_radius: float = 1.5,
        steps: int | None = 1500, epochs: float | None = None, batch_size: int = 8, lr: float = 1e-3,
        lr_step: float = 0.8, flip: float = 0.5,
        score_thresh: float = 0.05, nms_pre: int = 1000, nms_thresh: float = 0.8, max_per_img: int = 200,
        match_iou: float = 0.3,  # lifting: least 2D IoU between a tracked box and a detection's projected box
        classes: Sequence[str] | None = None, weights: str | None = None, threads: int | None = 1,
    ) -> None:
        super().__init__(input_size=input_size, width=width, fpn_channels=fpn_channels, depth=depth,
                         stem_kernel=stem_kernel, head_convs=head_convs, regress_ranges=regress_ranges,
                         center_radius=center_radius, steps=steps, epochs=epochs, batch_size=batch_size, lr=lr,
                         lr_step=lr_step, flip=flip, score_thresh=score_thresh, nms_pre=nms_pre,
                         nms_thresh=nms_thresh, max_per_img=max_per_img, match_iou=match_iou, classes=classes,
                         weights=weights, threads=threads)
        self._check_common()
        level_ranges(STRIDES, tuple(regress_ranges))  # the right number of boundaries
        if center_radius <= 0 or not 0.0 < nms_thresh <= 1.0:
            raise ValueError("fcos3d: center_radius must be > 0 and nms_thresh in (0, 1]")

    def build(self, cfg: dict[str, Any], num_classes: int) -> FCOS3DNet:
        return build_model(cfg, num_classes)

    def train(self, train: TrainView, labels: pd.DataFrame, classes: tuple[str, ...], cfg: dict[str, Any],
              ctx: RunContext) -> tuple[torch.nn.Module, list[dict]]:
        return train_model(train.sequences, labels, classes, cfg, device=ctx.device, seed=ctx.seed,
                           progress=self._progress(ctx), init_weights=self.params["weights"])

    def _points(self) -> tuple[np.ndarray, np.ndarray]:
        return points(tuple(self.config_["input_size"]), STRIDES)  # type: ignore[arg-type]

    def detect(self, raw: Any, kmat: np.ndarray) -> Found:
        xy, stride = self._points()
        p = self.params
        return decode(flatten(raw), 0, xy, stride, kmat, score_thresh=float(p["score_thresh"]),
                      nms_pre=int(p["nms_pre"]), nms_thresh=float(p["nms_thresh"]), max_per_img=int(p["max_per_img"]))

    def fallback(self, raw: Any, kmat: np.ndarray, boxes: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The heads at the point nearest the box centre on the level its size belongs to."""
        xy, stride = self._points()
        ranges = level_ranges(STRIDES, tuple(self.params["regress_ranges"]))
        reach = np.max(boxes[:, 2:] - boxes[:, :2], axis=1) / 2  # the centre point's regress distance
        level = np.array([int(np.flatnonzero((r >= ranges[:, 0]) & (r <= ranges[:, 1]))[0]) for r in reach],
                         dtype=np.int64).reshape(-1)
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        idx = np.empty(len(boxes), np.int64)
        for j in range(len(boxes)):
            on_level = np.flatnonzero(stride == STRIDES[level[j]])
            idx[j] = on_level[np.argmin(np.hypot(*(xy[on_level] - centre[j]).T))]
        flat = flatten(raw)
        conf = point_scores(flat, 0)[idx, cls] if len(idx) else np.zeros(0)
        return boxes_at(flat, 0, idx, xy, stride, kmat), conf


class FCOS3DFull(FCOS3D):
    """``fcos3d-full``: FCOS3D trained on every training label (3D detection's upper bound)."""

    sees_ground_truth: ClassVar[bool] = True
