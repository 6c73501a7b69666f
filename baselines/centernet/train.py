"""Train the CenterNet "ddd" network on a track table's 3D labels (the budget's sparse labels, or pseudolabels).

Which frames train: only frames with at least one labelled 3D box (a frame without labels says nothing about
where objects are). Inside such a frame, unlabelled objects are background, as for every method trained on
the sparse budget; DontCare boxes switch the negative loss off inside them. Each object's terms are scaled by
its ``conf``. Mirroring (probability ``flip``) doubles the scenes a from-scratch network sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from baselines.centernet.losses import centernet_loss
from baselines.centernet.model import CenterNetConfig, CenterNetDDD
from baselines.centernet.targets import render_targets
from baselines.centertrack.model import load_weights
from baselines.centertrack.targets import DOWN, Objects, flip_boxes, flip_objects, objects_from_table, scale_intrinsics
from baselines.centertrack.train import normalise, resize_images
from baselines.training import adam_with_drop, optimiser_step, shuffled_forever, step_budget
from bench.data.sequence import Sequence
from bench.data.tracks import has_3d


@dataclass
class Frame:
    seq: int  # index into the list of resized sequences
    index: int  # frame position in its sequence
    objects: Objects
    dontcare: np.ndarray
    intrinsics: np.ndarray  # (3, 3) of the input-size image
    neg_weight: np.ndarray | None = None  # FNComp map at the output size, or None


def _resize_map(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A weight map resized (bilinear) to ``size`` = (w, h) and kept in [0, 1]."""
    m = np.asarray(m, dtype=np.float32)
    if m.shape == (size[1], size[0]):
        return m
    t = torch.nn.functional.interpolate(torch.from_numpy(m)[None, None], size=(size[1], size[0]), mode="bilinear",
                                        align_corners=False)
    return t[0, 0].clamp(0, 1).numpy()


def build_model(cfg: dict, num_classes: int) -> CenterNetDDD:
    return CenterNetDDD(CenterNetConfig(num_classes=num_classes, width=cfg["width"], head_conv=cfg["head_conv"],
                                        depth=tuple(cfg["depth"]), stem_kernel=cfg["stem_kernel"]))


def prepare(sequences: dict[str, Sequence], labels: pd.DataFrame, classes: tuple[str, ...],
            input_size: tuple[int, int], weight_maps: dict[tuple[str, int], np.ndarray] | None = None
            ) -> tuple[list[torch.Tensor], list[Frame]]:
    """Resized images of the labelled sequences and the labelled frames' objects (input pixels); ``weight_maps``
    {(seq, frame id): map in [0, 1]} (a labeler's FNComp maps, any size) scale the negative heatmap loss."""
    w_in, h_in = input_size
    keep = has_3d(labels) | (labels["cls"] == "DontCare").to_numpy()
    labels = labels[keep]
    images: list[torch.Tensor] = []
    frames: list[Frame] = []
    for name, rows in labels.groupby("seq", sort=True):
        seq = sequences[str(name)]
        sx, sy = w_in / seq.image_size[0], h_in / seq.image_size[1]
        own = []
        for frame_id, frame_rows in rows.groupby("frame", sort=True):
            objects, dontcare = objects_from_table(frame_rows, classes, sx, sy)
            if len(objects.cls):
                index = seq.index_of(int(frame_id))
                kmat = scale_intrinsics(seq.intrinsics[index], sx, sy)
                nw = None
                if weight_maps is not None and (str(name), int(frame_id)) in weight_maps:
                    nw = _resize_map(weight_maps[(str(name), int(frame_id))], (w_in // DOWN, h_in // DOWN))
                own.append(Frame(len(images), index, objects, dontcare, kmat, nw))
        if own:
            images.append(resize_images(seq, input_size))
            frames += own
    return images, frames


def train(sequences: dict[str, Sequence], labels: pd.DataFrame, classes: tuple[str, ...], cfg: dict,
          device: str = "cpu", seed: int = 0, progress: Callable[[int, int, dict], None] | None = None,
          init_weights: str | None = None, weight_maps: dict[tuple[str, int], np.ndarray] | None = None
          ) -> tuple[CenterNetDDD, list[dict]]:
    """Train for ``cfg["steps"]`` steps (or ``epochs`` over the labelled frames); returns (model in eval mode, log).

    ``init_weights``: a local checkpoint to start from (matching names; never downloaded)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = torch.device(device)
    input_size = tuple(cfg["input_size"])
    images, frames = prepare(sequences, labels, classes, input_size, weight_maps)  # type: ignore[arg-type]
    if not frames:
        raise ValueError("centernet: no labelled frame with a 3D box to train on")
    model = build_model(cfg, len(classes)).to(dev)
    if init_weights:
        load_weights(model, init_weights, strict=False)
    bs = int(cfg["batch_size"])
    steps = step_budget(cfg, len(frames))
    opt, sched = adam_with_drop(model, cfg, steps)
    width = float(input_size[0])
    model.train()
    history: list[dict] = []
    picks = shuffled_forever(rng, len(frames))
    for step in range(steps):
        targets, batch_images = [], []
        for _ in range(bs):
            frame = frames[next(picks)]
            image = images[frame.seq][frame.index]
            objects, dontcare, nw = frame.objects, frame.dontcare, frame.neg_weight
            if cfg["flip"] and rng.random() < cfg["flip"]:
                objects, dontcare, image = flip_objects(objects, width), flip_boxes(dontcare, width), image.flip(-1)
                nw = None if nw is None else np.ascontiguousarray(nw[:, ::-1])
            targets.append(render_targets(objects, input_size, len(classes), cfg["max_objs"], dontcare,  # type: ignore[arg-type]
                                          nw))
            batch_images.append(image)
        batch = {k: torch.from_numpy(np.stack([t[k] for t in targets])).to(dev) for k in targets[0]}
        out = model(normalise(torch.stack(batch_images)).to(dev))
        loss, log = centernet_loss(out, batch)
        optimiser_step(loss, model, opt, sched)
        log["step"] = step
        history.append(log)
        if progress is not None:
            progress(step + 1, steps, log)
    model.eval()
    return model, history

