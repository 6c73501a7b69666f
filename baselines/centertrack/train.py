"""Train CenterTrack on a track table of (possibly sparse, possibly imperfect) labels.

Which frames train: only frames with at least one label row. A frame without labels says nothing
about where objects are, and treating all of it as background would teach the network that the
objects it does see are background. Inside a labelled frame, unlabelled objects ARE negatives
unless a weight map (FNComp) says otherwise: that is what makes the sparse-label lower bound low.

The previous frame of a sample is a random labelled frame of the same sequence less than
``max_frame_dist`` frames away (possibly the frame itself, as in CenterTrack); its labels, disturbed
as CenterTrack does (jitter, drops, false positives), are rendered into the previous heatmap.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from baselines.centertrack.losses import centertrack_loss
from baselines.centertrack.model import CenterTrackNet, ModelConfig, load_weights
from baselines.centertrack.targets import (
    DOWN,
    Objects,
    crop_boxes,
    crop_intrinsics,
    crop_objects,
    disturb_previous,
    flip_boxes,
    flip_intrinsics,
    flip_objects,
    objects_from_table,
    render_pre_hm,
    render_targets,
    scale_intrinsics,
    zoom_boxes,
    zoom_intrinsics,
    zoom_objects,
)
from bench.data.sequence import Sequence

NATIVE = "native"  # input_size value: the training images' own size
STRIDE = 32  # the backbone's coarsest stride: input sides must be multiples of it

# The training and inference functions read one flat dict of settings (``cfg``): the learner builds it
# from its constructor parameters (baselines.centertrack.learner.CenterTrackLearner.config), where each
# setting is declared once with its default; per-profile values live in bench/profiles/*.yaml.


def resolve_input_size(cfg: dict, sequences: dict[str, Sequence]) -> dict:
    """``cfg`` with an ``input_size`` of "native" replaced by the training images' size, rounded up to a
    multiple of 32 (the network's coarsest stride). Sequences of several sizes: the largest."""
    if cfg["input_size"] != NATIVE:
        return cfg
    if not sequences:
        raise ValueError('CenterTrack: input_size "native" needs training sequences to take the size from')
    w = max(seq.image_size[0] for seq in sequences.values())
    h = max(seq.image_size[1] for seq in sequences.values())
    return {**cfg, "input_size": (-(-w // STRIDE) * STRIDE, -(-h // STRIDE) * STRIDE)}


def build_model(cfg: dict, num_classes: int) -> CenterTrackNet:
    model = CenterTrackNet(ModelConfig(num_classes=num_classes, width=cfg["width"], head_conv=cfg["head_conv"],
                                       depth=cfg["depth"], stem_kernel=cfg["stem_kernel"],
                                       depth_uncertainty=bool(cfg.get("depth_uncertainty", False))))
    if cfg.get("depth_mode") == "geometric":  # start at the prior (residual 0), not at the direct mode's 20 m
        torch.nn.init.zeros_(model.heads["dep"].bias)
    return model


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> float, roughly zero-mean unit-variance."""
    return (images.float() / 255.0 - 0.45) / 0.25


def resize_images(seq: Sequence, input_size: tuple[int, int]) -> torch.Tensor:
    """All frames of a sequence resized to the input size, as a uint8 (T, 3, H, W) tensor."""
    w_in, h_in = input_size
    out = []
    for i in range(seq.num_frames):
        # A copy: cached images can be read-only memory maps, which torch must not wrap.
        img = torch.from_numpy(np.array(seq.image(i))).permute(2, 0, 1)[None].float()
        img = F.interpolate(img, size=(h_in, w_in), mode="bilinear", align_corners=False, antialias=True)
        out.append(img.round().clamp(0, 255).to(torch.uint8)[0])
    return torch.stack(out)


@dataclass
class LabelledFrame:
    index: int  # position in the sequence
    objects: Objects
    dontcare: np.ndarray
    neg_weight: np.ndarray | None


@dataclass
class SeqData:
    images: torch.Tensor  # (T, 3, H, W) uint8 at input size
    intrinsics: np.ndarray  # (T, 3, 3) for input size
    frames: list[LabelledFrame]


def prepare(sequences: dict[str, Sequence], labels: pd.DataFrame, classes: tuple[str, ...], cfg: dict,
            weight_maps: dict[tuple[str, int], np.ndarray] | None = None) -> list[SeqData]:
    """Resize images, scale intrinsics and group labels by frame; drop sequences without labels."""
    w_in, h_in = cfg["input_size"]
    out = []
    for name, rows in labels.groupby("seq", sort=True):
        if name not in sequences:
            raise ValueError(f"labels name sequence {name!r}, which the training split does not have")
        seq = sequences[name]
        sx, sy = w_in / seq.image_size[0], h_in / seq.image_size[1]
        frames = []
        for frame_id, frame_rows in rows.groupby("frame", sort=True):
            objects, dontcare = objects_from_table(frame_rows, classes, sx, sy)
            nw = None
            if weight_maps is not None and (name, int(frame_id)) in weight_maps:
                nw = _resize_map(weight_maps[(name, int(frame_id))], (w_in // DOWN, h_in // DOWN))
            frames.append(LabelledFrame(seq.index_of(int(frame_id)), objects, dontcare, nw))
        if frames:
            k = np.stack([scale_intrinsics(m, sx, sy) for m in seq.intrinsics])
            out.append(SeqData(resize_images(seq, cfg["input_size"]), k, frames))
    return out


def _resize_map(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    if m.shape == (size[1], size[0]):
        return m
    t = F.interpolate(torch.from_numpy(m)[None, None], size=(size[1], size[0]), mode="bilinear", align_corners=False)
    return t[0, 0].clamp(0, 1).numpy()


def _centres_sizes(obj: Objects) -> tuple[np.ndarray, np.ndarray]:
    centres = (obj.boxes[:, :2] + obj.boxes[:, 2:]) / 2
    return centres, obj.boxes[:, 2:] - obj.boxes[:, :2]


def make_sample(data: SeqData, fi: int, cfg: dict, num_classes: int, rng: np.random.Generator) -> dict:
    """One training sample (numpy) for labelled frame number ``fi`` of a sequence."""
    cur = data.frames[fi]
    near = [j for j, f in enumerate(data.frames) if abs(f.index - cur.index) < cfg["max_frame_dist"]]
    prev = data.frames[int(rng.choice(near))]
    objects, prev_objects, dontcare = cur.objects, prev.objects, cur.dontcare
    intrinsics, neg_weight = data.intrinsics[cur.index], cur.neg_weight
    # Mirroring doubles the scenes a from-scratch network sees and cancels any left/right bias it would learn
    # from a few hundred frames; both images, both frames' labels and the weight maps mirror together.
    flip = bool(cfg.get("flip", 0.0)) and rng.random() < cfg["flip"]
    if flip:
        width = float(cfg["input_size"][0])
        objects, prev_objects = flip_objects(objects, width), flip_objects(prev_objects, width)
        dontcare = flip_boxes(dontcare, width)
        intrinsics = flip_intrinsics(intrinsics, width)
        neg_weight = None if neg_weight is None else np.ascontiguousarray(neg_weight[:, ::-1])
    # Zoom (zoom > 1): a random part of the frame, 1/scale of each side, blown up to the whole input with the focal
    # length kept, which is the same scene with every object scale times nearer (targets.zoom_objects). Near
    # objects are few and mostly cut by the image edge (docs/methods/centertrack.md); a zoom turns the many far
    # ones into near ones with depths that stay true. Zoom-in only: the objects are already smaller than the
    # real datasets' (bench data info), and zooming out would shrink them further.
    zoom = (0.0, 0.0, 1.0)
    if cfg.get("zoom", 1.0) > 1.0:
        scale = float(rng.uniform(1.0, cfg["zoom"]))
        w_in, h_in = cfg["input_size"]
        x0, y0 = float(rng.uniform(0, w_in - w_in / scale)), float(rng.uniform(0, h_in - h_in / scale))
        objects = zoom_objects(objects, x0, y0, scale, (w_in, h_in))
        prev_objects = zoom_objects(prev_objects, x0, y0, scale, (w_in, h_in))
        dontcare = zoom_boxes(dontcare, x0, y0, scale, (w_in, h_in))
        intrinsics = zoom_intrinsics(intrinsics, x0, y0, scale)
        if neg_weight is not None:
            neg_weight = zoom_image(torch.from_numpy(neg_weight)[None], x0 / w_in, y0 / h_in, scale)[0].numpy()
        zoom = (x0 / w_in, y0 / h_in, scale)
    # Training on a window of the image (train_crop): the network sees objects at the full input resolution for
    # the cost of the window; inference runs on the whole image (the network is fully convolutional). Both
    # frames, their labels, the DontCare boxes, the weight map and the principal point move together.
    size, corner = tuple(cfg["input_size"]), (0, 0)
    if cfg.get("train_crop"):
        size = tuple(int(v) for v in cfg["train_crop"])
        corner = tuple(int(rng.integers(0, (full - part) // DOWN + 1)) * DOWN
                       for full, part in zip(cfg["input_size"], size, strict=True))
        objects, prev_objects = crop_objects(objects, *corner, size), crop_objects(prev_objects, *corner, size)
        dontcare = crop_boxes(dontcare, *corner, size)
        intrinsics = crop_intrinsics(intrinsics, *corner)
        if neg_weight is not None:
            x, y = corner[0] // DOWN, corner[1] // DOWN
            neg_weight = np.ascontiguousarray(neg_weight[y:y + size[1] // DOWN, x:x + size[0] // DOWN])
    centres, sizes = _centres_sizes(prev_objects)
    prev_centres = {int(t): c for t, c in zip(prev_objects.track_id, centres, strict=True)}
    noisy_c, noisy_s = disturb_previous(centres, sizes, rng, cfg["hm_disturb"], cfg["lost_disturb"],
                                        cfg["fp_disturb"])
    target = render_targets(objects, intrinsics, size, num_classes,
                            prev_centres=prev_centres, dontcare=dontcare, neg_weight=neg_weight,
                            max_objs=cfg["max_objs"], depth_mode=cfg["depth_mode"])
    target["pre_hm"] = render_pre_hm(noisy_c, noisy_s, size)
    target["img_index"] = np.array([cur.index, prev.index])
    target["flip"] = np.array(flip)
    target["window"] = np.array([corner[0], corner[1], size[0], size[1]])
    target["zoom"] = np.array(zoom)
    return target


def zoom_image(image: torch.Tensor, x0: float, y0: float, scale: float) -> torch.Tensor:
    """Float ``(..., H, W)`` image zoomed in by ``scale``: the window whose top-left corner is at (x0, y0), in
    shares of the width and height, and whose sides are 1/scale of the image's, resampled bilinearly to (H, W)."""
    shape = image.shape
    flat = image.reshape(-1, *shape[-3:]) if image.dim() > 3 else image[None]
    # affine_grid maps output to input in [-1, 1] coordinates: x_in = x_out / scale + (2 x0 + 1 / scale - 1).
    theta = torch.tensor([[1 / scale, 0.0, 2 * x0 + 1 / scale - 1], [0.0, 1 / scale, 2 * y0 + 1 / scale - 1]],
                         dtype=flat.dtype).expand(len(flat), 2, 3)
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    return F.grid_sample(flat, grid, mode="bilinear", align_corners=False).reshape(shape)


def collate(samples: list[dict], images: list[torch.Tensor], device: torch.device) -> tuple[dict, torch.Tensor,
                                                                                           torch.Tensor]:
    batch = {k: torch.from_numpy(np.stack([s[k] for s in samples])).to(device) for k in samples[0]
             if k not in ("img_index", "flip", "window", "zoom")}
    pairs = torch.stack([_sample_images(s, im) for s, im in zip(samples, images, strict=True)]).to(device)
    return batch, pairs[:, 0], pairs[:, 1]


def _sample_images(sample: dict, images: torch.Tensor) -> torch.Tensor:
    """A sample's (current, previous) uint8 images, normalised, as make_sample transformed its labels: mirrored
    first, then zoomed, then cut (each step's coordinates are in the image the step before made)."""
    if sample.get("flip", False):
        images = images.flip(-1)
    x0, y0, scale = (float(v) for v in sample.get("zoom", (0.0, 0.0, 1.0)))
    x, y, w, h = (int(v) for v in sample["window"])
    if scale == 1.0:
        return normalise(images[..., y:y + h, x:x + w])
    return zoom_image(normalise(images), x0, y0, scale)[..., y:y + h, x:x + w]


def train(sequences: dict[str, Sequence], labels: pd.DataFrame, classes: tuple[str, ...], cfg: dict,
          device: str = "cpu", seed: int = 0, weight_maps: dict[tuple[str, int], np.ndarray] | None = None,
          init_weights: str | None = None, progress: Callable[[int, int, dict], None] | None = None
          ) -> tuple[CenterTrackNet, list[dict]]:
    """Train a CenterTrack model; returns it (in eval mode) and the per-step loss log.

    ``labels`` is a track table (its ``conf`` column weights each box); ``weight_maps`` maps
    (seq, frame id) to a negative-loss weight map (FNComp). ``cfg`` comes from :func:`resolve_config`.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = torch.device(device)
    cfg = resolve_input_size(cfg, sequences)
    if cfg.get("train_crop") and any(c > i for c, i in zip(cfg["train_crop"], cfg["input_size"], strict=True)):
        raise ValueError(f"CenterTrack: train_crop {cfg['train_crop']} is larger than the input {cfg['input_size']}")
    data = prepare(sequences, labels, classes, cfg, weight_maps)
    index = [(s, f) for s, d in enumerate(data) for f in range(len(d.frames))]
    if not index:
        raise ValueError("CenterTrack: no labelled frames to train on (the label table has no rows for these "
                         "sequences)")
    model = build_model(cfg, len(classes)).to(dev)
    if init_weights:
        load_weights(model, init_weights, strict=False)
    bs = cfg["batch_size"]
    steps = cfg.get("steps") or math.ceil(cfg["epochs"] * len(index) / bs)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [max(1, int(steps * cfg["lr_step"]))], gamma=0.1)
    model.train()
    # The weight average is what is returned: from scratch on a few hundred frames, the last step's weights
    # vary a lot from seed to seed, and the average is the better and steadier model.
    decay = float(cfg.get("ema") or 0.0)
    average = copy.deepcopy(model).requires_grad_(False) if decay else None
    history = []
    order = rng.permutation(len(index))
    pos = 0
    start = time.perf_counter()
    for step in range(steps):
        picks = []
        for _ in range(bs):
            if pos == len(order):
                order, pos = rng.permutation(len(index)), 0
            picks.append(index[order[pos]])
            pos += 1
        samples = [make_sample(data[s], f, cfg, len(classes), rng) for s, f in picks]
        images = [data[s].images[sm["img_index"]] for (s, _), sm in zip(picks, samples, strict=True)]
        batch, img, pre = collate(samples, images, dev)
        out = model(img, pre, batch["pre_hm"])
        loss, log = centertrack_loss(out, batch, depth_mode=cfg["depth_mode"],
                                     flip_rot=cfg.get("orientation_loss") == "multibin-flip")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
        sched.step()
        if average is not None:
            # Warm-up (TensorFlow's num_updates rule): early on the average follows the model closely, so
            # a short run's average is not still the random initialisation.
            _update_average(average, model, min(decay, (1 + step) / (10 + step)))
        log.update(step=step, seconds=time.perf_counter() - start)
        history.append(log)
        if progress is not None:
            progress(step + 1, steps, log)
    if average is not None:
        model = average
    model.eval()
    return model, history


@torch.no_grad()
def _update_average(average: CenterTrackNet, model: CenterTrackNet, decay: float) -> None:
    """average <- decay * average + (1 - decay) * model, for weights and BatchNorm statistics alike."""
    for avg, cur in zip(average.state_dict().values(), model.state_dict().values(), strict=True):
        if avg.dtype.is_floating_point:
            avg.mul_(decay).add_(cur, alpha=1.0 - decay)
        else:
            avg.copy_(cur)
