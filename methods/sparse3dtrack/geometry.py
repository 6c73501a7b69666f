"""3D geometry estimation (paper 3.3): lift a 2D box to a 3D box from an object crop and self-supervised depth.

Built as the paper describes it (Sec. 3.3, "3D Geometry Estimation"):

- **Inputs.** The object crop (bilinear ``grid_sample`` crop of the RGB image at a fixed size) through a
  small CNN (the paper's image encoder + adapter; DINOv2 cannot be downloaded here), giving the image
  tokens; in parallel the self-supervised :class:`DepthNet`'s stride-8 features cropped with the same box,
  plus the cropped depth map's layout (log-depth relative to the crop's median), giving the depth tokens.
  One more token says where the box sits in the camera's view (ray angles, angular size, border contact,
  class): the crop alone has lost that, and the 3D centre cannot be placed without it (ours).
- **Fusion.** An encoder-decoder transformer "comprising self- and cross-attention layers between the
  image and depth features": the encoder self-attends over the depth tokens; the decoder's queries are the
  object token and the image tokens, which self-attend and cross-attend to the encoded depth tokens. The
  decoded object token is the "feature vector for the target object". Without depth (ablation D1) the
  encoder self-attends over the image tokens and the decoder cross-attends to those instead.
- **Heads.** "Two separate heads" regress the 3D centre (its projection as an offset from the 2D box
  centre in box units, and its depth as a log-ratio to the depth prior) and the dimensions (log-ratios to
  the class means of the labels); a third head gives the yaw by ``yaw_mode``: ``keypoints`` (the paper's:
  front/back 2D offsets, their depths relative to the centre, and a facing logit -> :func:`yaw_from_keypoints`),
  ``regression`` (sin/cos of the observation angle) or ``bins`` (two overlapping bins, classification +
  in-bin sin/cos). Losses (Eq. 5): L1 for centre, keypoints, keypoint depths and dimensions, BCE for facing.
- **Depth prior** (``depth_prior``): ``"depth"`` (default, the paper's design) = the self-supervised
  depth net's median depth in the inner half of the box; the network corrects it. ``"pinhole"`` (a
  variant, ours) = focal x class-mean height / box height, with the depth tokens as evidence. Without
  depth features (D1) the ``"depth"`` prior has nothing to read: the reference is then a constant (the
  labels' median depth), so the network regresses depth from the crop and the box alone.

The paper also masks the crop with the matcher's predicted object mask; this module crops without a mask
(the mask head belongs to the matcher's side of issue 15).

It trains only on labelled rows with a 3D box (no DontCare), with jittered 2D boxes because at
label time the boxes come from propagation, not from ground truth.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from bench.data.geometry import observation_angle, wrap_angle
from bench.data.sequence import Sequence
from bench.data.tracks import BOX2D_COLUMNS, BOX3D_COLUMNS, CLASSES, DONTCARE
from methods.sparse3dtrack.depth import DepthNet, normalise
from methods.sparse3dtrack.yaw import YAW_MODES, alpha_to_yaw, keypoints_from_boxes, lift, yaw_from_keypoints

# Provenance of each default (issue 15's tuning protocol: a default is the paper's value, a size the CPU
# budget sets, or chosen on the development world, bench/data/dev_world.py -- never on the benchmark's
# training or validation ground truth):
DEFAULTS: dict = {
    "crop_size": 32,  # CPU budget: RGB crop side in pixels (tokens: crop_size / 8 squared); objects are 10-60 px
    "context": 1.15,  # set at the first build (a little context around the box), never compared on ground truth
    "dim": 64,  # CPU budget (token width); the paper's sizes are for a GPU and DINOv2 features
    "heads": 4,  # CPU budget
    "layers": 1,  # CPU budget: one encoder and one decoder layer
    "width": 32,  # CPU budget: channels of the crop CNN
    "steps": 800,  # step budget; the profiles set their own (quick: 900)
    "batch_size": 64,  # CPU budget
    "lr": 1e-3,  # Adam(W)'s usual rate; not compared on ground truth
    "weight_decay": 1e-4,  # the paper's (Sec. 4.2)
    "optimizer": "adamw",  # ours: SGD at the paper's settings needs its epoch budget, far beyond a CPU minute
    "momentum": 0.9,  # the paper's (Sec. 4.2), used with optimizer=sgd
    "lr_drops": (0.8,),  # one drop by 10 late in training, as the paper's step schedule (Sec. 4.2)
    "flip": 0.5,  # the paper's horizontal flips (Sec. 4.2), probability per training box
    # Box centre shift (fraction of size) and log-scale noise of the 2D boxes: at label time the boxes come from
    # propagation; 0.08 is about the propagated boxes' error at the first build, never compared on ground truth.
    "jitter": 0.08,
    # What the depth head's log-ratio is relative to: "depth" (the paper's design, Sec. 3.3: the self-supervised
    # depth net's median in the box) or "pinhole" (ours, a variant: focal * class-mean height / box height).
    # Dev world (synth-kitti quick, data seed 1; docs/methods/sparse3dtrack.md, "Geometry on self-supervised depth").
    "depth_prior": "depth",
}
DEPTH_PRIORS = ("depth", "pinhole")

_NUM_CLASSES = len(CLASSES)
_BOX_FEATURES = 11 + _NUM_CLASSES
_DEPTH_CELL = 4 + 1  # per depth token besides the features: the 2x2 depth layout and one prior channel
_YAW_OUTPUTS = {"keypoints": 7, "regression": 2, "bins": 8}
# Two overlapping orientation bins (CenterTrack-style): centres -pi/2 and +pi/2, each 4pi/3 wide.
_BIN_CENTRES = (-np.pi / 2, np.pi / 2)


def crop(maps: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int], size: int,
         context: float = 1.0) -> torch.Tensor:
    """Bilinear crops (N, C, size, size) of per-row maps (N, C, h, w) inside pixel boxes (N, 4).

    ``image_size`` (width, height) is the native size the boxes refer to; ``maps`` may be at any
    resolution of that image (images, depth maps, stride-8 features).
    """
    w, h = image_size
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0) / 2 * context
    steps = (torch.arange(size, dtype=boxes.dtype, device=boxes.device) + 0.5) / size * 2 - 1  # (-1, 1)
    u = centre[:, 0:1] + steps[None] * half[:, 0:1]  # (N, size)
    v = centre[:, 1:2] + steps[None] * half[:, 1:2]
    grid = torch.stack([(u / w * 2 - 1)[:, None, :].expand(-1, size, -1),
                        (v / h * 2 - 1)[:, :, None].expand(-1, -1, size)], dim=-1)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _class_index(cls: np.ndarray) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(CLASSES)}
    return np.array([lookup.get(c, -1) for c in cls], dtype=np.int64)


class GeometryNet(nn.Module):
    """Object crop (+ depth crop) -> 3D centre, dimensions and yaw; see the module docstring."""

    def __init__(self, class_means: np.ndarray, yaw_mode: str = "keypoints", use_depth: bool = True,
                 depth_channels: int = 32, crop_size: int = 32, context: float = 1.15, dim: int = 64,
                 heads: int = 4, layers: int = 1, width: int = 32, depth_prior: str = "depth",
                 constant_depth: float = 20.0) -> None:
        super().__init__()
        if yaw_mode not in YAW_MODES:
            raise ValueError(f"yaw_mode must be one of {YAW_MODES}, got {yaw_mode!r}")
        if crop_size % 8:
            raise ValueError(f"crop_size must be a multiple of 8, got {crop_size}")
        class_means = np.asarray(class_means, dtype=np.float32)
        if class_means.shape != (_NUM_CLASSES + 1, 3):
            raise ValueError(f"class_means must be ({_NUM_CLASSES + 1}, 3) (h, w, l per class + overall)")
        if depth_prior not in DEPTH_PRIORS:
            raise ValueError(f"depth_prior must be one of {DEPTH_PRIORS}, got {depth_prior!r}")
        if not constant_depth > 0:
            raise ValueError(f"constant_depth must be > 0, got {constant_depth}")
        self.yaw_mode, self.use_depth, self.depth_prior = yaw_mode, use_depth, depth_prior
        self.crop_size, self.context, self.grid = crop_size, context, crop_size // 8
        self.register_buffer("class_means", torch.from_numpy(class_means))
        # The reference depth of D1 with the "depth" prior (no depth net to read): the labels' median depth.
        self.register_buffer("constant_depth", torch.tensor(float(constant_depth)))
        tokens = self.grid**2
        # Image encoder + adapter (paper 3.3) on the object crop: stride 8 -> one token per 8x8 cell.
        self.rgb = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1), nn.GroupNorm(8, width), nn.GELU(),
            nn.Conv2d(width, width, 3, 2, 1), nn.GroupNorm(8, width), nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.GroupNorm(8, 2 * width), nn.GELU(),
            nn.Conv2d(2 * width, dim, 1))
        self.rgb_pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        if use_depth:
            # Depth tokens: the cropped depth features, the depth layout inside the cell and a prior channel.
            self.depth_proj = nn.Sequential(nn.Linear(depth_channels + _DEPTH_CELL, dim), nn.GELU(),
                                            nn.Linear(dim, dim))
            self.depth_pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.box = nn.Sequential(nn.Linear(_BOX_FEATURES, dim), nn.GELU(), nn.Linear(dim, dim))
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True),
            layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True), layers)
        # Two separate heads for the 3D centre and the dimensions (paper 3.3), and one for the yaw's outputs;
        # each also sees the box features, which the crop has lost (where the box is, how large it looks).
        def head(outputs: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(dim + _BOX_FEATURES, 128), nn.GELU(), nn.Linear(128, outputs))
        self.centre_head = head(3)
        self.dims_head = head(3)
        self.yaw_head = head(_YAW_OUTPUTS[yaw_mode])

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Inputs from :func:`prepare_inputs` -> raw head outputs (see :func:`decode`)."""
        rgb = self.rgb(inputs["rgb"]).flatten(2).transpose(1, 2) + self.rgb_pos
        box = inputs["box"]
        queries = torch.cat([self.box(box)[:, None], rgb], dim=1)  # the object token first, then the image tokens
        if self.use_depth:
            memory = self.encoder(self.depth_proj(inputs["depth"]) + self.depth_pos)  # self-attention: depth
        else:
            memory = self.encoder(queries)  # D1: the image tokens are all there is
        # Self-attention among the object's tokens, cross-attention from them to the depth tokens.
        fused = self.decoder(queries, memory)[:, 0]
        vector = torch.cat([fused, box], dim=1)
        centre = self.centre_head(vector)
        result = {"centre": centre[:, 0:2], "depth": centre[:, 2], "dims": self.dims_head(vector)}
        rest = self.yaw_head(vector)
        if self.yaw_mode == "keypoints":
            result.update({"kp_uv": rest[:, 0:4], "kp_dz": rest[:, 4:6], "facing": rest[:, 6]})
        elif self.yaw_mode == "regression":
            result["alpha"] = rest
        else:
            result["bins"] = rest
        return result


def prepare_inputs(model: GeometryNet, images: torch.Tensor, depth_maps: torch.Tensor | None,
                   depth_feats: torch.Tensor | None, boxes: torch.Tensor, K: torch.Tensor,
                   cls_index: torch.Tensor, *, image_size: tuple[int, int] | None = None,
                   crop_boxes: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-row network inputs and reference depths.

    ``images`` (N, 3, H, W) normalised float (one row per box, frames repeated), ``depth_maps``
    (N, 1, H, W) and ``depth_feats`` (N, Cd, H/8, W/8) or None, ``boxes`` (N, 4) px, ``K`` (N, 3, 3),
    ``cls_index`` (N,) into CLASSES (-1 unknown). Returns (inputs, reference depth (N,) in metres).
    Training passes pre-cut patches instead of whole frames: then ``crop_boxes`` are the boxes in
    the patches' pixel coordinates and ``image_size`` the native (width, height).
    """
    n = len(boxes)
    h, w = images.shape[-2:]
    size = (int(w), int(h))
    if crop_boxes is None:
        crop_boxes = boxes
    elif image_size is None:
        raise ValueError("crop_boxes needs the native image_size")
    else:
        w, h = image_size
    fx, fy, cx, cy = K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]
    bw = (boxes[:, 2] - boxes[:, 0]).clamp(min=1.0)
    bh = (boxes[:, 3] - boxes[:, 1]).clamp(min=1.0)
    bcx, bcy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    onehot = torch.zeros(n, _NUM_CLASSES, dtype=boxes.dtype)
    known = cls_index >= 0
    onehot[known, cls_index[known]] = 1.0
    # Where the box is in the camera's view (ray angles, angular size) and whether it touches a border
    # (a truncated object's 2D box centre is not its projected centre).
    box = torch.stack([(bcx - cx) / fx, (bcy - cy) / fy, bw / fx, bh / fy, torch.log(bh / fy),
                       torch.log(bw / bh), boxes[:, 0] / w, boxes[:, 2] / w,
                       (boxes[:, 0] < 2).to(boxes.dtype), (boxes[:, 2] > w - 2).to(boxes.dtype),
                       (boxes[:, 3] > h - 2).to(boxes.dtype)], dim=1)
    inputs = {"rgb": crop(images, crop_boxes, size, model.crop_size, model.context),
              "box": torch.cat([box, onehot], dim=1)}
    mean_h = model.class_means[torch.where(known, cls_index, _NUM_CLASSES)]
    pinhole = (fy * mean_h[:, 0] / bh).clamp(min=0.5)  # depth guess from the box height and the class's mean height
    if model.depth_prior == "pinhole":
        ref = pinhole
    else:  # "depth"; without a depth net (D1) a constant: the network then reads depth off the crop and the box
        ref = model.constant_depth.to(boxes.dtype).expand(n)
    if model.use_depth:
        if depth_maps is None or depth_feats is None:
            raise ValueError("this GeometryNet was trained with depth: pass the DepthNet's outputs")
        g = model.grid
        dcrop = crop(depth_maps, crop_boxes, size, 2 * g, model.context)  # (N, 1, 2g, 2g)
        centre = crop(depth_maps, crop_boxes, size, 8, 0.5).flatten(1)  # the inner half of the box
        median = centre.median(dim=1).values.clamp(min=0.5)
        logd = torch.log(dcrop.clamp(min=1e-3) / median[:, None, None, None])
        # 2x2 sub-cells of each token cell as 4 channels: the depth layout inside the cell.
        logd = F.pixel_unshuffle(logd, 2)  # (N, 4, g, g)
        if model.depth_prior == "pinhole":
            ref_channel = torch.log(median / pinhole)  # how far the depth net is from the guess, to weigh the two
        else:
            ref = median
            ref_channel = torch.log(median / 10.0)  # the prior's own range: its error grows with distance
        fcrop = crop(depth_feats, crop_boxes, size, g, model.context)
        inputs["depth"] = torch.cat([fcrop, logd, ref_channel[:, None, None, None].expand(-1, 1, g, g)],
                                    dim=1).flatten(2).transpose(1, 2)
    return inputs, ref


def _bin_targets(alpha: np.ndarray) -> np.ndarray:
    """(N, 6): in-bin flags of bins 0 and 1, then (sin, cos) of the residual to each bin's centre."""
    out = np.zeros((len(alpha), 6))
    for b, centre in enumerate(_BIN_CENTRES):
        residual = wrap_angle(alpha - centre)
        out[:, b] = (np.abs(residual) < 2 * np.pi / 3).astype(np.float64)  # inside the 4pi/3-wide bin
        out[:, 2 + 2 * b] = np.sin(residual)
        out[:, 3 + 2 * b] = np.cos(residual)
    return out


def make_targets(boxes2d: np.ndarray, boxes3d: np.ndarray, K: np.ndarray, ref: np.ndarray,
                 cls_index: np.ndarray, class_means: np.ndarray) -> dict[str, np.ndarray]:
    """Regression targets of the heads for 2D boxes (N, 4), 3D boxes (N, 7), intrinsics (N, 3, 3)."""
    kp = keypoints_from_boxes(boxes3d, K)
    bw = np.maximum(boxes2d[:, 2] - boxes2d[:, 0], 1.0)
    bh = np.maximum(boxes2d[:, 3] - boxes2d[:, 1], 1.0)
    bc = np.stack([(boxes2d[:, 0] + boxes2d[:, 2]) / 2, (boxes2d[:, 1] + boxes2d[:, 3]) / 2], axis=1)
    bs = np.stack([bw, bh], axis=1)
    means = class_means[np.where(cls_index >= 0, cls_index, _NUM_CLASSES)]
    half_l = means[:, 2] / 2
    alpha = observation_angle(boxes3d)
    return {
        "centre": (kp["centre_uv"] - bc) / bs,
        "depth": np.log(kp["centre_depth"] / ref),
        "dims": np.log(boxes3d[:, 3:6] / means),
        "kp_uv": np.concatenate([(kp["front_uv"] - bc) / bs, (kp["back_uv"] - bc) / bs], axis=1),
        "kp_dz": np.stack([kp["front_depth"] - kp["centre_depth"], kp["back_depth"] - kp["centre_depth"]], 1)
        / half_l[:, None],
        "facing": kp["facing"],
        "alpha": np.stack([np.sin(alpha), np.cos(alpha)], axis=1),
        "bins": _bin_targets(alpha),
    }


def geometry_loss(model: GeometryNet, out: dict[str, torch.Tensor],
                  targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-term losses (L1 for centre, depth, dimensions, keypoints; BCE facing; CE + L1 for bins)."""
    terms = {"centre": F.l1_loss(out["centre"], targets["centre"]),
             "depth": F.l1_loss(out["depth"], targets["depth"]),
             "dims": F.l1_loss(out["dims"], targets["dims"])}
    if model.yaw_mode == "keypoints":
        terms["keypoints"] = F.l1_loss(out["kp_uv"], targets["kp_uv"])
        terms["keypoint_depth"] = F.l1_loss(out["kp_dz"], targets["kp_dz"])
        terms["facing"] = F.binary_cross_entropy_with_logits(out["facing"], targets["facing"])
    elif model.yaw_mode == "regression":
        terms["yaw"] = F.l1_loss(out["alpha"], targets["alpha"])
    else:
        t = targets["bins"]
        logits = out["bins"]
        cls = sum(F.cross_entropy(logits[:, 2 * b:2 * b + 2], t[:, b].long()) for b in range(2))
        res = 0.0
        for b in range(2):
            inside = t[:, b]
            err = (logits[:, 4 + 2 * b:6 + 2 * b] - t[:, 2 + 2 * b:4 + 2 * b]).abs().sum(1)
            res = res + (err * inside).sum() / inside.sum().clamp(min=1.0)
        terms["yaw_bins"] = cls
        terms["yaw_residual"] = res
    return terms


def decode(model: GeometryNet, out: dict[str, torch.Tensor], boxes: np.ndarray, K: np.ndarray, ref: np.ndarray,
           cls_index: np.ndarray) -> np.ndarray:
    """Raw head outputs -> KITTI boxes (N, 7): bottom centre x, y, z, then h, w, l, yaw."""
    o = {k: v.detach().double().cpu().numpy() for k, v in out.items()}
    bw = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    bh = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    bc = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    bs = np.stack([bw, bh], axis=1)
    means = model.class_means.double().cpu().numpy()[np.where(cls_index >= 0, cls_index, _NUM_CLASSES)]
    dims = means * np.exp(np.clip(o["dims"], -3, 3))
    depth = ref * np.exp(np.clip(o["depth"], -5, 5))
    centre = lift(bc + o["centre"] * bs, depth, K)
    if model.yaw_mode == "keypoints":
        front_uv = bc + o["kp_uv"][:, 0:2] * bs
        back_uv = bc + o["kp_uv"][:, 2:4] * bs
        half_l = means[:, 2] / 2
        facing = 1.0 / (1.0 + np.exp(-o["facing"]))
        yaw = yaw_from_keypoints(front_uv, depth + o["kp_dz"][:, 0] * half_l,
                                 back_uv, depth + o["kp_dz"][:, 1] * half_l, facing, K)
    else:
        if model.yaw_mode == "regression":
            alpha = np.arctan2(o["alpha"][:, 0], o["alpha"][:, 1])
        else:
            b = o["bins"]
            inside = np.stack([b[:, 1] - b[:, 0], b[:, 3] - b[:, 2]], axis=1)  # logit(in) - logit(out)
            pick = inside.argmax(axis=1)
            rows = np.arange(len(b))
            alpha = np.array(_BIN_CENTRES)[pick] + np.arctan2(b[rows, 4 + 2 * pick], b[rows, 5 + 2 * pick])
        yaw = alpha_to_yaw(alpha, centre[:, 0], centre[:, 2])
    bottom = centre + np.stack([np.zeros(len(dims)), dims[:, 0] / 2, np.zeros(len(dims))], axis=1)
    return np.concatenate([bottom, dims, wrap_angle(yaw)[:, None]], axis=1)


def class_means_from_labels(labels: pd.DataFrame) -> np.ndarray:
    """Mean (h, w, l) per CLASSES entry from the labelled rows (overall mean where a class is absent), + overall."""
    dims = labels[["h", "w", "l"]].to_numpy(np.float64)
    overall = dims.mean(axis=0) if len(dims) else np.array([1.5, 1.6, 3.9])
    means = np.tile(overall, (_NUM_CLASSES + 1, 1))
    for i, name in enumerate(CLASSES):
        rows = dims[(labels["cls"] == name).to_numpy()]
        if len(rows):
            means[i] = rows.mean(axis=0)
    return means


def _labelled_rows(labels: pd.DataFrame, sequences: dict[str, Sequence]) -> pd.DataFrame:
    rows = labels[(labels["cls"] != DONTCARE) & labels["seq"].isin(list(sequences))]
    finite = np.isfinite(rows[list(BOX2D_COLUMNS) + list(BOX3D_COLUMNS)].to_numpy(np.float64)).all(axis=1)
    rows = rows[finite & (rows["z"].to_numpy() > 0.5) & (rows["x2"] > rows["x1"]) & (rows["y2"] > rows["y1"])]
    return rows.reset_index(drop=True)


def _frame_bank(sequences: dict[str, Sequence], keys: list[tuple[str, int]], depth: DepthNet | None,
                device: str, chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Normalised images, depth maps and depth features of the frames ``keys`` = [(seq, index)]."""
    images, depths, feats = [], [], []
    for start in range(0, len(keys), chunk):
        part = keys[start:start + chunk]
        batch = torch.from_numpy(np.stack([sequences[s].image(i) for s, i in part])).permute(0, 3, 1, 2).to(device)
        images.append(normalise(batch))
        if depth is not None:
            with torch.no_grad():
                d, f = depth(batch)
            depths.append(d)
            feats.append(f)
    if depth is None:
        return torch.cat(images), None, None
    return torch.cat(images), torch.cat(depths), torch.cat(feats)


PATCH = 64  # training patch side (px); crops of crop_size <= 48 are taken from it
PATCH_CONTEXT = 2.0  # a patch covers the box enlarged this much, room for the jitter and the crop context


def _enlarge(boxes: np.ndarray, factor: float) -> np.ndarray:
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0) / 2 * factor
    return np.concatenate([centre - half, centre + half], axis=1)


def mirror(boxes2d: np.ndarray, boxes3d: np.ndarray, K: np.ndarray,
           width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The left-right mirror image of labelled boxes in an image ``width`` px wide: 2D (N, 4), 3D (N, 7), K (N, 3, 3).

    Mirroring the image about its vertical centre line is mirroring the camera frame (x -> -x) with
    the principal point moved to width - cx; a heading (cos yaw, 0, -sin yaw) becomes yaw' = pi - yaw.
    """
    b2d = np.stack([width - boxes2d[:, 2], boxes2d[:, 1], width - boxes2d[:, 0], boxes2d[:, 3]], axis=1)
    b3d = boxes3d.copy()
    b3d[:, 0] = -b3d[:, 0]
    b3d[:, 6] = wrap_angle(np.pi - b3d[:, 6])
    Kn = K.copy()
    Kn[:, 0, 2] = width - Kn[:, 0, 2]
    return b2d, b3d, Kn


def _take(bank: torch.Tensor | None, rows: torch.Tensor, flip: torch.Tensor) -> torch.Tensor | None:
    """Patches ``rows`` of a bank, mirrored left-right where ``flip``."""
    if bank is None:
        return None
    patches = bank[rows]
    return torch.where(flip[:, None, None, None], patches.flip(-1), patches)


def _jitter(boxes: np.ndarray, amount: float, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Shift and rescale 2D boxes like a propagated box's error; keep them inside the image."""
    if amount <= 0:
        return boxes
    w, h = size
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + rng.normal(0, amount, len(boxes)) * bw
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + rng.normal(0, amount, len(boxes)) * bh
    bw = bw * np.exp(rng.normal(0, amount, len(boxes)))
    bh = bh * np.exp(rng.normal(0, amount, len(boxes)))
    out = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    bad = (out[:, 2] - out[:, 0] < 2) | (out[:, 3] - out[:, 1] < 2)
    out[bad] = boxes[bad]
    return out


def train_geometry(sequences: dict[str, Sequence], labels: pd.DataFrame, depth: DepthNet | None, cfg: dict, *,
                   yaw_mode: str = "keypoints", device: str = "cpu", seed: int = 0,
                   progress: Callable[[int, int, str], None] | None = None) -> tuple[GeometryNet, list[dict]]:
    """Train a :class:`GeometryNet` on the labelled rows with 3D boxes; ``depth`` None = the no-depth ablation (D1)."""
    cfg = {**DEFAULTS, **cfg}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown geometry settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    if yaw_mode not in YAW_MODES:
        raise ValueError(f"yaw_mode must be one of {YAW_MODES}, got {yaw_mode!r}")
    rows = _labelled_rows(labels, sequences)
    if rows.empty:
        raise ValueError("train_geometry needs labelled rows with 2D and 3D boxes (none outside DontCare)")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()  # for the history's "seconds" only: no clock decides what is computed
    if depth is not None:
        depth = depth.to(device).eval()
    model = GeometryNet(class_means_from_labels(rows), yaw_mode, depth is not None,
                        depth.feat_channels if depth is not None else 0, cfg["crop_size"], cfg["context"],
                        cfg["dim"], cfg["heads"], cfg["layers"], cfg["width"], cfg["depth_prior"],
                        float(np.median(rows["z"].to_numpy(np.float64)))).to(device)
    index = [(s, sequences[s].index_of(int(f))) for s, f in zip(rows["seq"], rows["frame"], strict=True)]
    keys = sorted(set(index))
    position = {k: i for i, k in enumerate(keys)}
    frame_of_row = np.array([position[k] for k in index])
    images, depth_maps, depth_feats = _frame_bank(sequences, keys, depth, device)
    size = (int(images.shape[-1]), int(images.shape[-2]))
    boxes2d = rows[list(BOX2D_COLUMNS)].to_numpy(np.float64)
    # Cut each labelled box's surroundings once (patch = box enlarged PATCH_CONTEXT times, PATCH px
    # square): a step then crops its jittered boxes from small patches instead of gathering frames.
    patch_boxes = _enlarge(boxes2d, PATCH_CONTEXT)
    pb = torch.from_numpy(patch_boxes).float().to(device)
    patches: dict[str, list[torch.Tensor]] = {"rgb": [], "depth": [], "feats": []}
    for b in range(0, len(rows), 64):
        fr = torch.from_numpy(frame_of_row[b:b + 64]).to(device)
        patches["rgb"].append(crop(images[fr], pb[b:b + 64], size, PATCH, 1.0))
        if depth_maps is not None and depth_feats is not None:
            patches["depth"].append(crop(depth_maps[fr], pb[b:b + 64], size, PATCH, 1.0))
            patches["feats"].append(crop(depth_feats[fr], pb[b:b + 64], size, PATCH // 4, 1.0))
    rgb_p = torch.cat(patches["rgb"])
    depth_p = torch.cat(patches["depth"]) if patches["depth"] else None
    feats_p = torch.cat(patches["feats"]) if patches["feats"] else None
    del images, depth_maps, depth_feats
    boxes3d = rows[list(BOX3D_COLUMNS)].to_numpy(np.float64)
    K_all = np.stack([sequences[s].intrinsics[i] for s, i in index])
    cls_all = _class_index(rows["cls"].to_numpy())
    means = model.class_means.double().cpu().numpy()
    if cfg["optimizer"] == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                                                     weight_decay=cfg["weight_decay"])
    elif cfg["optimizer"] == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    else:
        raise ValueError(f"geometry optimizer must be 'adamw' or 'sgd', got {cfg['optimizer']!r}")
    steps = int(cfg["steps"])
    drops = sorted(int(f * steps) for f in cfg["lr_drops"])
    history: list[dict] = []
    model.train()
    for step in range(steps):
        if step in drops:
            for group in opt.param_groups:
                group["lr"] *= 0.1
        pick = rng.choice(len(rows), size=min(cfg["batch_size"], len(rows)), replace=len(rows) < cfg["batch_size"])
        b2d = _jitter(boxes2d[pick], cfg["jitter"], rng, size)
        b3d, Kn, pbox = boxes3d[pick].copy(), K_all[pick].copy(), patch_boxes[pick].copy()
        # Horizontal flips (paper 4.2): the mirror image of a labelled scene is a valid scene with
        # x -> -x, yaw -> pi - yaw and the principal point mirrored; the patch tensor is flipped with it.
        flip = rng.random(len(pick)) < cfg["flip"]
        b2d[flip], b3d[flip], Kn[flip] = mirror(b2d[flip], b3d[flip], Kn[flip], size[0])
        pbox[flip] = mirror(pbox[flip], b3d[flip], Kn[flip], size[0])[0]
        p = torch.from_numpy(pick).to(device)
        f = torch.from_numpy(flip).to(device)
        K = torch.from_numpy(Kn).float().to(device)
        cls = torch.from_numpy(cls_all[pick]).to(device)
        in_patch = (b2d - pbox[:, [0, 1, 0, 1]]) / np.tile(pbox[:, 2:] - pbox[:, :2], 2) * PATCH
        inputs, ref = prepare_inputs(model, _take(rgb_p, p, f), _take(depth_p, p, f), _take(feats_p, p, f),
                                     torch.from_numpy(b2d).float().to(device), K, cls, image_size=size,
                                     crop_boxes=torch.from_numpy(in_patch).float().to(device))
        targets = make_targets(b2d, b3d, Kn, ref.double().cpu().numpy(), cls_all[pick], means)
        out = model(inputs)
        terms = geometry_loss(model, out, {k: torch.from_numpy(v).float().to(device) for k, v in targets.items()})
        total = sum(terms.values())
        assert isinstance(total, torch.Tensor)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append({"total": total.item(), **{k: v.item() for k, v in terms.items()},
                        "seconds": time.perf_counter() - start})
        if progress is not None:
            progress(step + 1, steps, f"geometry loss {total.item():.4f}")
    return model.eval(), history


def lift_boxes(model: GeometryNet, depth: DepthNet | None, sequences: dict[str, Sequence], boxes: pd.DataFrame,
               *, device: str = "cpu", batch_size: int = 256) -> pd.DataFrame:
    """Fill x, y, z, h, w, l, yaw of every row with a finite 2D box (DontCare rows stay NaN).

    The rows come back in the same order with the same index; only the seven 3D columns change.
    """
    if model.use_depth and depth is None:
        raise ValueError("this GeometryNet was trained with depth features: pass its DepthNet")
    missing = sorted(set(boxes["seq"]) - set(sequences))
    if missing:
        raise ValueError(f"lift_boxes: no sequences for {missing[:5]}")
    out = boxes.copy()
    for column in BOX3D_COLUMNS:
        out[column] = out[column].astype(np.float64)
    b2d_all = boxes[list(BOX2D_COLUMNS)].to_numpy(np.float64)
    todo = np.flatnonzero((boxes["cls"].to_numpy() != DONTCARE) & np.isfinite(b2d_all).all(axis=1)
                          & (b2d_all[:, 2] > b2d_all[:, 0]) & (b2d_all[:, 3] > b2d_all[:, 1]))
    if len(todo) == 0:
        return out
    model = model.to(device).eval()
    if depth is not None and model.use_depth:
        depth = depth.to(device).eval()
    else:
        depth = None
    result = np.full((len(boxes), 7), np.nan)
    seqs = boxes["seq"].to_numpy()
    frames = boxes["frame"].to_numpy()
    cls_all = _class_index(boxes["cls"].to_numpy())
    for name in sorted(set(seqs[todo])):
        seq = sequences[name]
        rows_seq = todo[seqs[todo] == name]
        frame_index = np.array([seq.index_of(int(f)) for f in frames[rows_seq]])
        unique = np.unique(frame_index)
        # Frames in chunks so that images, depth maps and features of a whole video never sit in memory.
        for start in range(0, len(unique), 16):
            chunk = unique[start:start + 16]
            images, depth_maps, depth_feats = _frame_bank(sequences, [(name, int(i)) for i in chunk], depth, device)
            sel = np.isin(frame_index, chunk)
            rows = rows_seq[sel]
            local = np.searchsorted(chunk, frame_index[sel])
            for b in range(0, len(rows), batch_size):
                r, loc = rows[b:b + batch_size], torch.from_numpy(local[b:b + batch_size]).to(device)
                K = seq.intrinsics[frame_index[sel][b:b + batch_size]]
                with torch.no_grad():
                    inputs, ref = prepare_inputs(
                        model, images[loc], None if depth_maps is None else depth_maps[loc],
                        None if depth_feats is None else depth_feats[loc],
                        torch.from_numpy(b2d_all[r]).float().to(device), torch.from_numpy(K).float().to(device),
                        torch.from_numpy(cls_all[r]).to(device))
                    raw = model(inputs)
                result[r] = decode(model, raw, b2d_all[r], K, ref.double().cpu().numpy(), cls_all[r])
    done = np.zeros(len(boxes), dtype=bool)
    done[todo] = True
    for j, column in enumerate(BOX3D_COLUMNS):
        values = out[column].to_numpy(np.float64).copy()
        values[done] = result[done, j]
        out[column] = values
    return out
