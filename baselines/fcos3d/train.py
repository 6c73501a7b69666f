"""Train FCOS3D on a track table's 3D labels (the budget's sparse labels, or pseudolabels), conf-weighted.

As CenterNet here: only frames with at least one labelled 3D box train, unlabelled objects of those frames
are background, and a mirrored copy (probability ``flip``) mirrors the intrinsics too, so the projected 3D
centres stay on their objects.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from baselines.centernet.train import prepare
from baselines.centertrack.model import load_weights
from baselines.centertrack.targets import flip_intrinsics, flip_objects
from baselines.centertrack.train import normalise
from baselines.fcos3d.losses import fcos3d_loss
from baselines.fcos3d.model import STRIDES, FCOS3DConfig, FCOS3DNet, flatten
from baselines.fcos3d.targets import level_ranges, render_targets
from baselines.training import adam_with_drop, optimiser_step, shuffled_forever, step_budget
from bench.data.sequence import Sequence


def build_model(cfg: dict, num_classes: int) -> FCOS3DNet:
    return FCOS3DNet(FCOS3DConfig(num_classes=num_classes, width=cfg["width"], fpn_channels=cfg["fpn_channels"],
                                  depth=tuple(cfg["depth"]), stem_kernel=cfg["stem_kernel"],
                                  head_convs=cfg["head_convs"]))


def train(sequences: dict[str, Sequence], labels: pd.DataFrame, classes: tuple[str, ...], cfg: dict,
          device: str = "cpu", seed: int = 0, progress: Callable[[int, int, dict], None] | None = None,
          init_weights: str | None = None) -> tuple[FCOS3DNet, list[dict]]:
    """Train for ``cfg["steps"]`` steps (or ``epochs`` over the labelled frames); returns (model in eval mode, log)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = torch.device(device)
    size = tuple(int(v) for v in cfg["input_size"])
    images, frames = prepare(sequences, labels, classes, size)  # type: ignore[arg-type]
    if not frames:
        raise ValueError("fcos3d: no labelled frame with a 3D box to train on")
    ranges = level_ranges(STRIDES, tuple(cfg["regress_ranges"]))
    model = build_model(cfg, len(classes)).to(dev)
    if init_weights:
        load_weights(model, init_weights, strict=False)
    bs = int(cfg["batch_size"])
    steps = step_budget(cfg, len(frames))
    opt, sched = adam_with_drop(model, cfg, steps)
    width = float(size[0])
    model.train()
    history: list[dict] = []
    picks = shuffled_forever(rng, len(frames))
    for step in range(steps):
        targets, batch = [], []
        for _ in range(bs):
            frame = frames[next(picks)]
            image, kmat, objects = images[frame.seq][frame.index], frame.intrinsics, frame.objects
            if cfg["flip"] and rng.random() < cfg["flip"]:
                image, kmat, objects = image.flip(-1), flip_intrinsics(kmat, width), flip_objects(objects, width)
            targets.append(render_targets(objects, kmat, size, STRIDES, ranges, cfg["center_radius"]))  # type: ignore[arg-type]
            batch.append(image)
        t = {k: torch.from_numpy(np.stack([x[k] for x in targets])).to(dev) for k in targets[0]}
        loss, log = fcos3d_loss(flatten(model(normalise(torch.stack(batch)).to(dev))), t)
        optimiser_step(loss, model, opt, sched)
        log["step"] = step
        history.append(log)
        if progress is not None:
            progress(step + 1, steps, log)
    model.eval()
    return model, history
