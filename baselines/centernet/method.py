"""CenterNet "ddd" as a bench method (3D detections on unseen videos) and a 3D lifter (``<2d source>+centernet``).

Every setting is a constructor keyword; the defaults are the ``quick`` recipe and each profile's own values
live in ``methods.centernet`` of ``bench/profiles/{smoke,quick,paper}.yaml``. ``fit`` trains on the labels it
is handed (the budget's sparse 3D labels when run alone), each row weighted by its ``conf``. The shared
method/lifter machinery is :class:`baselines.detector3d.MonoDetector3D`. ``centernet-full`` is the same
detector trained on every training label: the upper bound of the 3D detection figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from baselines.centernet.decode import decode, heads_at
from baselines.centernet.model import CenterNetDDD
from baselines.centernet.train import build_model
from baselines.centernet.train import train as train_model
from baselines.centertrack.targets import DOWN
from baselines.centertrack.train import NATIVE
from baselines.detector3d import Found, MonoDetector3D
from bench.interface import RunContext, TrainView


class CenterNet(MonoDetector3D):
    """CenterNet's monocular 3D detector trained from scratch on the labels at hand."""

    name: ClassVar[str] = "centernet"
    arch_keys: ClassVar[tuple[str, ...]] = ("input_size", "width", "head_conv", "depth", "stem_kernel")

    def __init__(
        self, *,
        input_size: str | Sequence[int] = NATIVE, width: int = 16, head_conv: int = 32,
        depth: Sequence[int] = (1, 1, 2, 2), stem_kernel: int = 3,
        steps: int | None = 1500, epochs: float | None = None, batch_size: int = 8, lr: float = 1e-3,
        lr_step: float = 0.8, flip: float = 0.5, max_objs: int = 64,
        topk: int = 100, score_thresh: float = 0.1,  # detections reported: the top K peaks above this score
        match_iou: float = 0.3,  # lifting: least 2D IoU between a tracked box and a detection's projected box
        classes: Sequence[str] | None = None, weights: str | None = None, threads: int | None = 1,
    ) -> None:
        super().__init__(input_size=input_size, width=width, head_conv=head_conv, depth=depth,
                         stem_kernel=stem_kernel, steps=steps, epochs=epochs, batch_size=batch_size, lr=lr,
                         lr_step=lr_step, flip=flip, max_objs=max_objs, topk=topk, score_thresh=score_thresh,
                         match_iou=match_iou, classes=classes, weights=weights, threads=threads)
        self._check_common()

    def build(self, cfg: dict[str, Any], num_classes: int) -> CenterNetDDD:
        return build_model(cfg, num_classes)

    def train(self, train: TrainView, labels: pd.DataFrame, classes: tuple[str, ...], cfg: dict[str, Any],
              ctx: RunContext) -> tuple[torch.nn.Module, list[dict]]:
        return train_model(train.sequences, labels, classes, cfg, device=ctx.device, seed=ctx.seed,
                           progress=self._progress(ctx), init_weights=self.params["weights"])

    def detect(self, raw: Any, kmat: np.ndarray) -> Found:
        dets = decode(raw, kmat, k=int(self.params["topk"]), threshold=float(self.params["score_thresh"]))[0]
        return dets.boxes3d, dets.score, dets.cls

    def fallback(self, raw: Any, kmat: np.ndarray, boxes: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # The fallback's confidence: the heatmap's own belief in an object of that class at the box centre.
        hm = torch.sigmoid(raw["hm"][0]).cpu().numpy()
        ct = ((boxes[:, :2] + boxes[:, 2:]) / 2 / DOWN).astype(np.int64).reshape(-1, 2)
        ct[:, 0] = ct[:, 0].clip(0, hm.shape[2] - 1)
        ct[:, 1] = ct[:, 1].clip(0, hm.shape[1] - 1)
        return heads_at(raw, 0, boxes, kmat), hm[cls, ct[:, 1], ct[:, 0]]


class CenterNetFull(CenterNet):
    """``centernet-full``: CenterNet trained on every training label (3D detection's upper bound)."""

    sees_ground_truth: ClassVar[bool] = True
