"""2D query matching (paper 3.2): find a query object from a source image in a target image.

Template (paper 3.2: "crop and mask the source image using the query box and query object mask"): the
encoder's stride-8 features cropped around the query box (``grid_sample`` onto a fixed ``template_size``
grid over the box enlarged by ``context``) plus the query *object mask* as a channel (the labelled row's
instance mask, or the mask the matcher predicted when the template comes from a propagated box; the box
itself where a dataset has no masks), projected to tokens and refined by self-attention. Target: every
stride-8 location of the target feature map cross-attends to the template tokens; the cosine similarity
between each location and a pooled object embedding is the similarity map (trained with infoNCE, positives =
locations on the target object, negatives = the most confident wrong locations, which on driving scenes are
mostly the other cars). The target features weighted by the similarity, the similarity map and the correlation of each
location with every template token feed CenterNet-style heads: centre heatmap (focal loss on a
gaussian target; the centre token's correlation enters its logits with a learned gain), offset and
log box size (L1, regressed at the peak cell and its 8 neighbours, the size relative to the query
box's) and the object mask, CenterMask-style (Wang et al., CVPR 2020, the paper's [cit:track_centermask]):
a *local shape* head predicts at every cell a ``mask_size`` x ``mask_size`` shape of the object centred
there, a *saliency* head a per-cell foreground map; the mask is sigmoid(shape at the centre) x
sigmoid(saliency over the box), trained with BCE against the labelled instance mask (masks live on a
box-aligned ``mask_size`` grid everywhere here).

``locate`` takes the heatmap peak over the whole target map (the paper's path: appearance decides where
the object is). Only with prior boxes (the ``motion`` variant, our extension) is the peak searched in a
window around them, blended with a cosine window (SiamFC-style preference for small displacements).

Training uses only the budget's labels through :mod:`mining` pairs; cycle and step pairs run the
matcher twice, the (detached) box predicted at the unlabeled waypoint becoming the next template.
Training views are stride-aligned crops around the objects (cheaper than whole frames on a CPU).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from bench.data.masks import MaskKey, RowMask
from bench.data.sequence import Sequence
from methods.sparse3dtrack.encoder import STRIDE, ImageEncoder
from methods.sparse3dtrack.masks import label_box_masks
from methods.sparse3dtrack.mining import MINING, Pair, check_strategies, mine_pairs
from methods.sparse3dtrack.propagate import motion_scale

DEFAULTS: dict = {
    # model
    "channels": 64,  # C of the adapted features and tokens
    "width": 24,  # CNN width (stages width, 2*width, 4*width)
    "encoder": "cnn",  # "cnn" (from scratch) or "vit" (local DINOv2-style weights)
    "weights": None,  # local ViT state dict for encoder="vit"
    "template_size": 7,  # template tokens = template_size**2
    "context": 2.0,  # template crop = query box scaled by this around its centre
    "heads": 4,
    "tau": 0.1,  # cosine-similarity temperature of the similarity map / infoNCE
    "mask_size": 16,  # box-aligned mask grid (local shape S x S); CenterMask uses 32 on 4x larger objects
    # locate: the prior window below is used only by the "motion" variant (config.VARIANTS); its values were
    # set on synth-kitti quick training-split pseudo tracks before issue 15 and are kept as that variant's.
    "window": 3.0,  # prior window half-size in multiples of the prior box half-size ...
    "window_margin": 24.0,  # ... plus this many pixels (objects move little between frames)
    "window_influence": 0.5,  # peak score = (1 - this) * heatmap + this * cosine window (SiamFC-style motion prior)
    # training
    "steps": 300,
    "batch_size": 8,
    "lr": 2e-3,
    "optimizer": "adamw",
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "lr_drops": (0.8,),  # fractions of the steps where the LR drops 10x
    "max_gap": 8,  # waypoints at most this many frames from the template's label, at reference_interval:
    # a video with frame interval dt uses round(max_gap * reference_interval / dt) frames (the same 0.8 s),
    # and its waypoints' search margin is window_margin * dt / reference_interval (None: per-frame as given)
    "reference_interval": 0.1,  # s; the frame interval (10 Hz, synth-kitti) these settings were tuned at
    "waypoint_start": 0.3,  # cycle/step pairs join after this fraction of training (their waypoint
    "waypoint_min_conf": 0.3,  # boxes come from the matcher itself) and only where it is this confident
    # How a waypoint is found during training: "free" (the paper's path: the peak anywhere on the training view)
    # or "window" (the motion variant: near the label). Set by config.VARIANTS.
    "waypoint_search": "free",
    "hard_negatives": 16,
    "loss_weights": {"heatmap": 1.0, "offset": 1.0, "size": 1.0, "mask": 1.0, "nce": 0.5},
    # augmentation (paper 4.2: flips + colour jitter; shifts/scales make self pairs differ)
    "flip": 0.5,
    "color": 0.2,
    "shift": 12.0,  # px
    "scale": 0.1,
    # Training views are crops of this size (h, w) px around the object (None: whole frames). The encoder's
    # per-pixel normalisation makes crop features equal whole-frame ones away from the crop border; at
    # 416x128 a 128x192 crop halves the encoder's cost, so twice the steps fit the CPU budget.
    "train_crop": (128, 192),
}

MODEL_KEYS = ("channels", "width", "encoder", "weights", "template_size", "context", "heads", "tau", "window",
              "window_margin", "window_influence", "mask_size")
# (head outputs, cell index (N,)) -> local shape logits (N, S, S): QueryMatcher.shape_logits
ShapeLogits = Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]


class QueryMatcher(nn.Module):
    """Encoder + template tokens + similarity module + CenterNet-style heads (see the module docstring)."""

    def __init__(self, channels: int = 64, width: int = 24, encoder: str = "cnn", weights: str | None = None,
                 template_size: int = 7, context: float = 2.0, heads: int = 4, tau: float = 0.1,
                 window: float = 3.0, window_margin: float = 24.0, window_influence: float = 0.5,
                 mask_size: int = 16) -> None:
        super().__init__()
        if template_size < 1 or template_size % 2 == 0:
            raise ValueError(f"template_size must be odd (a centre token), got {template_size}")
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        c = channels
        self.encoder = ImageEncoder(c, width, encoder, weights)
        self.template_size, self.context, self.tau = int(template_size), float(context), float(tau)
        self.window, self.window_margin = float(window), float(window_margin)
        if not 0 <= window_influence < 1:
            raise ValueError(f"window_influence must be in [0, 1), got {window_influence}")
        self.window_influence = float(window_influence)
        self.mask_size = int(mask_size)
        # Tokens start as the cropped features themselves (zero-initialised residual), so that the target-template
        # correlation in forward() is meaningful from the first step.
        self.token_in = nn.Linear(c + 1, c)
        nn.init.zeros_(self.token_in.weight)
        nn.init.zeros_(self.token_in.bias)
        self.token_pos = nn.Parameter(torch.randn(1, self.template_size**2, c) * 0.02)
        self.query_self = nn.TransformerEncoderLayer(c, heads, 2 * c, dropout=0.0, batch_first=True, norm_first=True)
        for layer in (self.query_self.self_attn.out_proj, self.query_self.linear2):  # residual branches start at 0
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.norm_target = nn.LayerNorm(c)
        self.norm_query = nn.LayerNorm(c)
        self.cross = nn.MultiheadAttention(c, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, 2 * c), nn.GELU(), nn.Linear(2 * c, c))
        self.pool = nn.Linear(c, 1)  # attention pooling of the template tokens into one object embedding
        self.sim_target = nn.Linear(c, c)
        self.sim_query = nn.Linear(c, c)
        q = self.template_size**2
        self.trunk = nn.Sequential(nn.Conv2d(c + 1 + q, c, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True))

        def head(cout: int, bias: float = 0.0) -> nn.Conv2d:
            # 1x1 on the shared trunk: the trunk's two 3x3 convs already see the neighbourhood, and on one
            # CPU core four 3x3 heads would cost more than the encoder.
            layer = nn.Conv2d(c, cout, 1)
            nn.init.constant_(layer.bias, bias)
            return layer

        # CenterNet's prior: start with every location at probability ~0.1.
        self.heatmap_head = head(1, -2.19)
        # The centre token's correlation map enters the heatmap logits directly (learned gain): the peak starts
        # where the query's centre looks alike, and training refines it instead of discovering it.
        self.corr_gain = nn.Parameter(torch.tensor(0.5))
        self.offset_head = head(2)
        self.size_head = head(2)
        nn.init.zeros_(self.size_head.weight)  # sizes start at the query's size: objects change size slowly
        self.mask_head = head(1)  # CenterMask's global saliency (one map: the query object's)
        self.shape_head = head(self.mask_size**2)  # CenterMask's local shape, S x S per cell

    def features(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> (B, C, ceil(H/8), ceil(W/8))."""
        return self.encoder(images_uint8)

    def _crop_grid(self, boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Normalised sampling grid (N, S, S, 2) over each box scaled by ``context`` (feature map h x w)."""
        s = self.template_size
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        bw = (boxes[:, 2] - boxes[:, 0]).clamp(min=1.0) * self.context
        bh = (boxes[:, 3] - boxes[:, 1]).clamp(min=1.0) * self.context
        steps = (torch.arange(s, device=boxes.device, dtype=boxes.dtype) + 0.5) / s - 0.5  # cell centres in [-.5, .5]
        xs = cx[:, None] + steps[None] * bw[:, None]  # (N, S) pixels
        ys = cy[:, None] + steps[None] * bh[:, None]
        # Pixel -> normalised coordinates of a stride-8 map (align_corners=False: the map spans 8*w pixels).
        gx = xs / (STRIDE * w) * 2 - 1
        gy = ys / (STRIDE * h) * 2 - 1
        return torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)

    def template(self, feats: torch.Tensor, boxes: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Template tokens (N, Q, C), Q = template_size**2, from features (N, C, h, w) and query boxes (N, 4) px.

        ``masks`` (N, S, S) in [0, 1], S = ``mask_size``: the query object's mask on the box-aligned grid (None:
        the whole box, for data without masks).

        The last two channels of every token carry the query box's log size (log(w / 8), log(h / 8)): the
        size head predicts the change from it (tokens are opaque to callers; forward() reads them back).
        """
        if feats.ndim != 4 or boxes.shape != (feats.shape[0], 4):
            raise ValueError(f"template needs feats (N, C, h, w) and boxes (N, 4), got {tuple(feats.shape)} "
                             f"and {tuple(boxes.shape)}")
        boxes = boxes.to(feats.dtype)
        grid = self._crop_grid(boxes, feats.shape[2], feats.shape[3])
        crop = F.grid_sample(feats, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        s = self.template_size
        steps = (torch.arange(s, device=feats.device, dtype=feats.dtype) + 0.5) / s - 0.5
        n = feats.shape[0]
        if masks is None:
            masks = torch.ones(n, self.mask_size, self.mask_size, device=feats.device, dtype=feats.dtype)
        # Template cells in box-relative coordinates (0..1 across the box); the object mask read there, 0 outside.
        u = steps * self.context + 0.5
        inside = ((u >= 0) & (u <= 1)).to(feats.dtype)
        g = (u * 2 - 1)
        grid = torch.stack(torch.broadcast_tensors(g[None, :], g[:, None]), dim=-1)[None].expand(n, s, s, 2)
        sampled = F.grid_sample(masks.to(feats.dtype)[:, None], grid, mode="bilinear", padding_mode="border",
                                align_corners=False)
        mask = sampled * (inside[:, None] * inside[None, :])  # (N, 1, s, s): the object within the crop
        crop = crop.flatten(2).transpose(1, 2)  # (N, Q, C)
        tokens = crop + self.token_in(torch.cat([crop, mask.flatten(2).transpose(1, 2)], dim=2)) + self.token_pos
        tokens = self.query_self(tokens)
        log_size = torch.log((boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0) / STRIDE)
        return torch.cat([tokens[..., :-2], log_size[:, None, :].expand(-1, tokens.shape[1], 2)], dim=2)

    def forward(self, template_tokens: torch.Tensor, target_feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs on the target grid: heatmap/mask logits (N, 1, h, w), offset (N, 2, h, w) in cells,
        size (N, 2, h, w) as log(box size / 8), similarity (N, 1, h, w) cosine / tau."""
        n, c, h, w = target_feats.shape
        if template_tokens.shape[0] != n or template_tokens.shape[2] != c:
            raise ValueError(f"template tokens {tuple(template_tokens.shape)} do not fit target features "
                             f"{tuple(target_feats.shape)}")
        query_log_size = template_tokens[:, 0, -2:]  # see template()
        template_tokens = F.pad(template_tokens[..., :-2], (0, 2))
        f = target_feats.flatten(2).transpose(1, 2)  # (N, hw, C)
        t = self.norm_query(template_tokens)
        attended, _ = self.cross(self.norm_target(f), t, t, need_weights=False)
        f = f + attended
        f = f + self.ffn(f)
        weights = torch.softmax(self.pool(template_tokens), dim=1)
        query = (weights * template_tokens).sum(dim=1)  # (N, C)
        sim = F.cosine_similarity(self.sim_target(f), self.sim_query(query)[:, None, :], dim=-1) / self.tau
        sim_map = sim.view(n, 1, h, w)
        fmap = f.transpose(1, 2).reshape(n, c, h, w)
        # Correlation of every target location with every template token (which part of the query it looks
        # like): the trunk's convolutions read the spatial arrangement of these parts, as Siamese trackers do.
        corr = torch.einsum("nlc,nqc->nql", F.normalize(target_feats.flatten(2).transpose(1, 2), dim=-1),
                            F.normalize(template_tokens, dim=-1)).reshape(n, -1, h, w)
        # Similarity-aware features: locations unlike the query are damped before the heads see them.
        x = self.trunk(torch.cat([fmap * torch.sigmoid(sim_map), sim_map, corr / self.tau], dim=1))
        centre = corr[:, self.template_size**2 // 2: self.template_size**2 // 2 + 1]
        heatmap = self.heatmap_head(x) + self.corr_gain * (centre - 1) / self.tau
        size = self.size_head(x) + query_log_size[:, :, None, None]
        # The local shape head (S x S channels per cell) is not applied here: it is read at one cell per sample
        # (the peak, or the true centre in training), so shape_logits() applies it there; over the whole map it
        # cost a fifth of free search.
        return {"heatmap": heatmap, "offset": self.offset_head(x), "size": size,
                "mask": self.mask_head(x), "trunk": x, "similarity": sim_map}

    def shape_logits(self, out: dict[str, torch.Tensor], index: torch.Tensor) -> torch.Tensor:
        """CenterMask's local shape logits (N, S, S) at cell ``index`` (N,) of each flattened map: the 1x1 shape head
        applied to the trunk's features at that cell only."""
        trunk = out["trunk"]
        n, c = trunk.shape[:2]
        s = self.mask_size
        at = trunk.flatten(2)[torch.arange(n, device=index.device), :, index]  # (N, C)
        return F.linear(at, self.shape_head.weight.view(s * s, c), self.shape_head.bias).view(n, s, s)

    def object_mask(self, out: dict[str, torch.Tensor], index: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """CenterMask's mask probability (N, S, S) on each box's grid: sigmoid(local shape at cell
        ``index`` (N,) of the flattened map) x sigmoid(saliency sampled over ``boxes`` (N, 4) px)."""
        h, w = out["mask"].shape[-2:]
        s = self.mask_size
        shape = self.shape_logits(out, index)
        saliency = F.grid_sample(out["mask"], box_grid(boxes.to(out["mask"].dtype), s, h, w), mode="bilinear",
                                 padding_mode="border", align_corners=False)[:, 0]
        return torch.sigmoid(shape) * torch.sigmoid(saliency)

    def _window(self, prior_boxes: torch.Tensor, h: int, w: int, margin: torch.Tensor | float | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each cell centre's offset from the prior box centre in units of the search radius: (N, w), (N, h).

        ``margin`` (a float or (N,) px) replaces ``window_margin``: callers that know how far objects can
        move between their frames (the frame interval) widen or narrow the window per prior.
        """
        prior = prior_boxes.to(torch.float32)
        m = torch.as_tensor(self.window_margin if margin is None else margin, dtype=torch.float32, device=prior.device)
        cx, cy = (prior[:, 0] + prior[:, 2]) / 2, (prior[:, 1] + prior[:, 3]) / 2
        rx = (prior[:, 2] - prior[:, 0]).clamp(min=1) / 2 * self.window + m
        ry = (prior[:, 3] - prior[:, 1]).clamp(min=1) / 2 * self.window + m
        xs = (torch.arange(w, device=prior.device, dtype=torch.float32) + 0.5) * STRIDE
        ys = (torch.arange(h, device=prior.device, dtype=torch.float32) + 0.5) * STRIDE
        return (xs[None] - cx[:, None]) / rx[:, None], (ys[None] - cy[:, None]) / ry[:, None]

    def window_weights(self, prior_boxes: torch.Tensor, h: int, w: int,
                       margin: torch.Tensor | float | None = None) -> torch.Tensor:
        """(N, 1, h, w) in [0, 1]: a cosine (Hann) window over the search window around each prior box, 0 outside."""
        ux, uy = self._window(prior_boxes, h, w, margin)
        hx = 0.5 * (1 + torch.cos(torch.pi * ux.clamp(-1, 1)))
        hy = 0.5 * (1 + torch.cos(torch.pi * uy.clamp(-1, 1)))
        return (hy[:, :, None] * hx[:, None, :])[:, None]

    def window_mask(self, prior_boxes: torch.Tensor, h: int, w: int,
                    margin: torch.Tensor | float | None = None) -> torch.Tensor:
        """(N, 1, h, w) bool: cells whose centre lies in the search window around each prior box."""
        ux, uy = self._window(prior_boxes, h, w, margin)
        return ((uy.abs() <= 1)[:, :, None] & (ux.abs() <= 1)[:, None, :])[:, None]

    def decode(self, out: dict[str, torch.Tensor], allowed: torch.Tensor | None = None,
               window: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Best box (N, 4) px, confidence (N,) and object mask (N, S, S) on the box's grid from head outputs.

        ``allowed`` (N, 1, h, w) bool gates the peak; ``window`` (N, 1, h, w) in [0, 1] is blended into the
        peak score with weight ``window_influence``. The confidence is the heatmap probability at the peak.
        """
        logits = out["heatmap"]
        n, _, h, w = logits.shape
        score = torch.sigmoid(logits)
        if window is not None:
            score = (1 - self.window_influence) * score + self.window_influence * window
        if allowed is not None:
            # An empty window (prior far outside the image) falls back to the whole image.
            allowed = allowed | ~allowed.flatten(1).any(1).view(n, 1, 1, 1)
            score = score.masked_fill(~allowed, -1.0)
        index = score.flatten(1).argmax(dim=1)
        peak = logits.flatten(1).gather(1, index[:, None])[:, 0]
        iy, ix = index // w, index % w
        rows = torch.arange(n, device=logits.device)
        off = out["offset"].flatten(2)[rows, :, index]  # (N, 2)
        size = out["size"].flatten(2)[rows, :, index].clamp(-4.0, 6.0).exp() * STRIDE
        cx = (ix.to(off.dtype) + 0.5 + off[:, 0]) * STRIDE
        cy = (iy.to(off.dtype) + 0.5 + off[:, 1]) * STRIDE
        boxes = torch.stack([cx - size[:, 0] / 2, cy - size[:, 1] / 2, cx + size[:, 0] / 2, cy + size[:, 1] / 2], 1)
        limit = torch.tensor([w * STRIDE, h * STRIDE] * 2, device=boxes.device, dtype=boxes.dtype)
        boxes = torch.minimum(boxes.clamp(min=0), limit)
        return boxes, torch.sigmoid(peak), self.object_mask(out, index, boxes)

    @torch.no_grad()
    def locate(self, template_tokens: torch.Tensor, target_feats: torch.Tensor,
               prior_boxes: torch.Tensor | None = None,
               margin: torch.Tensor | float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Best box (N, 4) px, confidence (N,) in [0, 1] (sigmoid of the heatmap peak), object mask (N, S, S).

        Without ``prior_boxes`` (the paper's path) the peak is the best match anywhere on the target map.
        With ``prior_boxes`` (N, 4) (the previous position) the peak is searched only in a window of
        ``window`` x the prior's half-size + ``window_margin`` px around it: objects move little between
        neighbouring frames, and look-alikes elsewhere in the image cannot steal the track. Inside it a
        cosine window (weight ``window_influence``) prefers small displacements, as SiamFC-style trackers do.
        ``margin`` (float or (N,) px) replaces ``window_margin`` (e.g. scaled to the video's frame interval).
        """
        out = self(template_tokens, target_feats)
        if prior_boxes is None:
            return self.decode(out)
        if prior_boxes.shape != (target_feats.shape[0], 4):
            raise ValueError(f"prior_boxes must be (N, 4), got {tuple(prior_boxes.shape)}")
        prior = prior_boxes.to(target_feats.device)
        h, w = target_feats.shape[-2:]
        return self.decode(out, self.window_mask(prior, h, w, margin), self.window_weights(prior, h, w, margin))


def box_grid(boxes: torch.Tensor, size: int, h: int, w: int) -> torch.Tensor:
    """Normalised sampling grid (N, size, size, 2) of each box's cell centres on a stride-8 map of h x w cells."""
    steps = (torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 0.5) / size
    xs = boxes[:, 0:1] + steps[None] * (boxes[:, 2:3] - boxes[:, 0:1])
    ys = boxes[:, 1:2] + steps[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    gx, gy = xs / (STRIDE * w) * 2 - 1, ys / (STRIDE * h) * 2 - 1
    return torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)


# ----------------------------------------------------------------------------------------------- losses


def _targets(boxes: torch.Tensor, h: int, w: int, masks: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-pair targets on an h x w stride-8 grid for one target box each (N, 4) px and its object mask (N, S, S)
    on the box grid (None: the whole box)."""
    n = boxes.shape[0]
    dev, dt = boxes.device, boxes.dtype
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    bw, bh = (boxes[:, 2] - boxes[:, 0]).clamp(min=1.0), (boxes[:, 3] - boxes[:, 1]).clamp(min=1.0)
    u, v = cx / STRIDE - 0.5, cy / STRIDE - 0.5  # continuous cell coordinates (cell j centred at j)
    ix, iy = (u + 0.5).floor().clamp(0, w - 1).long(), (v + 0.5).floor().clamp(0, h - 1).long()
    # CenterNet's gaussian: radius from the box size in cells, sigma = (2r + 1) / 6.
    radius = gaussian_radius(bh / STRIDE, bw / STRIDE).floor().clamp(min=0)
    sigma = (2 * radius + 1) / 6
    xs = torch.arange(w, device=dev, dtype=dt)
    ys = torch.arange(h, device=dev, dtype=dt)
    gx = ((xs[None] - ix[:, None].to(dt)) ** 2)[:, None, :]
    gy = ((ys[None] - iy[:, None].to(dt)) ** 2)[:, :, None]
    heat = torch.exp(-(gx + gy) / (2 * sigma[:, None, None] ** 2))
    heat = torch.where(heat < 1e-4, torch.zeros_like(heat), heat)
    cell_x, cell_y = (xs + 0.5) * STRIDE, (ys + 0.5) * STRIDE
    in_x = (cell_x[None] >= boxes[:, 0:1]) & (cell_x[None] <= boxes[:, 2:3])
    in_y = (cell_y[None] >= boxes[:, 1:2]) & (cell_y[None] <= boxes[:, 3:4])
    mask = (in_y[:, :, None] & in_x[:, None, :]).to(dt)
    if masks is not None:  # cells inside the box whose centre is on the object (the box grid read at the cell)
        gx = (cell_x[None] - boxes[:, 0:1]) / (boxes[:, 2:3] - boxes[:, 0:1]).clamp(min=1e-6) * 2 - 1
        gy = (cell_y[None] - boxes[:, 1:2]) / (boxes[:, 3:4] - boxes[:, 1:2]).clamp(min=1e-6) * 2 - 1
        grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
        on = F.grid_sample(masks.to(dt)[:, None], grid, mode="bilinear", padding_mode="border", align_corners=False)
        mask = mask * (on[:, 0] >= 0.5).to(dt)
    rows = torch.arange(n, device=dev)
    mask[rows, iy, ix] = 1.0  # a box smaller than a cell still owns its centre cell
    # Offsets and sizes are regressed at the peak cell and its 8 neighbours (offsets up to 1.5 cells), so a
    # peak picked one cell off (a small object, a cosine window pulling towards the prior) still lands right.
    near = (((xs[None] - ix[:, None].to(dt)).abs() <= 1)[:, None, :]
            & ((ys[None] - iy[:, None].to(dt)).abs() <= 1)[:, :, None])
    offset = torch.stack([(u[:, None, None] - xs[None, None, :]).expand(n, h, w),
                          (v[:, None, None] - ys[None, :, None]).expand(n, h, w)], 1)
    size = torch.stack([torch.log(bw / STRIDE), torch.log(bh / STRIDE)], 1)[:, :, None, None].expand(n, 2, h, w)
    return {"heatmap": heat[:, None], "mask": mask[:, None], "index": iy * w + ix, "near": near[:, None].to(dt),
            "offset": offset, "size": size}


def gaussian_radius(height: torch.Tensor, width: torch.Tensor, min_overlap: float = 0.7) -> torch.Tensor:
    """CenterNet's radius: the largest centre shift keeping IoU >= min_overlap (the smallest of three cases)."""
    a1, b1 = 1.0, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2 = 4.0, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + torch.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + torch.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def focal_loss(logits: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, one object per map, averaged over the maps."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).to(p.dtype)
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = -(torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - pos)).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1.0)


def _shape_loss(out: dict[str, torch.Tensor], boxes: torch.Tensor, t: dict[str, torch.Tensor],
                masks: torch.Tensor | None, shape_logits: ShapeLogits) -> torch.Tensor:
    shape = shape_logits(out, t["index"])  # (N, S, S) at the true centre
    n, s = shape.shape[:2]
    if masks is None:
        masks = torch.ones(n, s, s, device=boxes.device, dtype=boxes.dtype)
    h, w = out["mask"].shape[-2:]
    saliency = F.grid_sample(out["mask"], box_grid(boxes, s, h, w), mode="bilinear", padding_mode="border",
                             align_corners=False)[:, 0]
    prob = (torch.sigmoid(shape) * torch.sigmoid(saliency)).clamp(1e-4, 1 - 1e-4)
    return F.binary_cross_entropy(prob, masks.to(prob.dtype).clamp(0.0, 1.0))


def info_nce(similarity: torch.Tensor, positive: torch.Tensor, ignore: torch.Tensor, hard: int) -> torch.Tensor:
    """Multi-positive infoNCE over target locations against the ``hard`` most similar wrong locations.

    ``similarity`` (N, L) logits, ``positive`` (N, L) bool (inside the target box), ``ignore`` (N, L) bool
    (near the object: neither positive nor negative).
    """
    neg = similarity.masked_fill(positive | ignore, float("-inf"))
    k = min(hard, neg.shape[1])
    hard_neg = neg.topk(k, dim=1).values  # confident wrong predictions: look-alikes, other objects
    pos = similarity.masked_fill(~positive, float("-inf"))
    pos_term = torch.logsumexp(pos, dim=1)
    all_term = torch.logsumexp(torch.cat([pos, hard_neg], dim=1), dim=1)
    return (all_term - pos_term).mean()


def matching_losses(out: dict[str, torch.Tensor], boxes: torch.Tensor, cfg: dict, shape_logits: ShapeLogits,
                    masks: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Loss terms and their weighted total for head outputs ``out``, target boxes (N, 4) px and their object masks
    (N, S, S) on the box grid (None: whole boxes). ``shape_logits(out, index)``: the local shape logits at one
    cell per sample (:meth:`QueryMatcher.shape_logits`).

    The mask term is CenterMask's: BCE of the saliency map against the object's cells plus BCE of the combined
    mask (local shape at the true centre x saliency over the true box) against the object mask."""
    h, w = out["heatmap"].shape[-2:]
    dt = out["heatmap"].dtype
    t = _targets(boxes.to(dt), h, w, masks)
    near = t["near"]
    per_pair = near.sum(dim=(1, 2, 3))

    def near_l1(key: str) -> torch.Tensor:
        return ((out[key] - t[key]).abs() * near).sum(dim=(1, 2, 3)).div(2 * per_pair).mean()

    losses = {
        "heatmap": focal_loss(out["heatmap"], t["heatmap"]),
        "offset": near_l1("offset"),
        "size": near_l1("size"),
        "mask": (F.binary_cross_entropy_with_logits(out["mask"], t["mask"])
                 + _shape_loss(out, boxes.to(dt), t, masks, shape_logits)),
        "nce": info_nce(out["similarity"].flatten(1), t["mask"].flatten(1) > 0,
                        (t["heatmap"].flatten(1) > 0.1) & (t["mask"].flatten(1) == 0), int(cfg["hard_negatives"])),
    }
    weights = cfg["loss_weights"]
    losses["total"] = sum(weights[k] * v for k, v in losses.items())  # type: ignore[assignment]
    return losses


# ----------------------------------------------------------------------------------------------- training


def _augment(image: torch.Tensor, box: np.ndarray, flip: bool, rng: np.random.Generator, cfg: dict
             ) -> tuple[torch.Tensor, np.ndarray]:
    """One uint8 (3, H, W) view: optional flip, colour jitter, random scale + shift (box moved along)."""
    _, h, w = image.shape
    x = image.float()
    box = box.astype(np.float64).copy()
    if flip:
        x = x.flip(-1)
        box = np.array([w - box[2], box[1], w - box[0], box[3]])
    j = cfg["color"]
    if j > 0:
        gain = torch.from_numpy(rng.uniform(1 - j, 1 + j, size=(3, 1, 1))).float()  # brightness per channel
        contrast = float(rng.uniform(1 - j, 1 + j))
        mean = x.mean()
        x = ((x - mean) * contrast + mean) * gain
    s = float(rng.uniform(1 - cfg["scale"], 1 + cfg["scale"])) if cfg["scale"] > 0 else 1.0
    tx, ty = (rng.uniform(-cfg["shift"], cfg["shift"], size=2) if cfg["shift"] > 0 else (0.0, 0.0))
    if s != 1.0 or tx or ty:
        # Output pixel p samples input (p - centre - t) / s + centre; boxes map the other way.
        theta = torch.tensor([[1 / s, 0, -2 * tx / (w * s)], [0, 1 / s, -2 * ty / (h * s)]], dtype=torch.float32)
        grid = F.affine_grid(theta[None], [1, 3, h, w], align_corners=False)
        x = F.grid_sample(x[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        c = np.array([w / 2, h / 2, w / 2, h / 2])
        box = (box - c) * s + c + np.array([tx, ty, tx, ty])
        box = np.clip(box, 0, [w, h, w, h])
    return x.clamp(0, 255).to(torch.uint8), box


def _crop(image: torch.Tensor, box: np.ndarray, size: tuple[int, int] | None, context: float, where: float,
          rng: np.random.Generator | None) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """A crop of ``size`` (grown to hold the box with its template context) around ``box``.

    The box centre lands at fraction ``where`` of the crop (plus up to +-1/4 jitter when ``rng`` is
    given). Crop origins are multiples of the stride, so crop features sit on the whole frame's grid.
    Returns the crop, the box in crop pixels, and the (x, y, x, y) origin to add back.
    """
    _, h, w = image.shape
    if size is None:
        return image, box, np.zeros(4)
    bw, bh = box[2] - box[0], box[3] - box[1]
    ch = int(min(h, max(size[0], STRIDE * np.ceil((bh * context + 2 * STRIDE) / STRIDE))))
    cw = int(min(w, max(size[1], STRIDE * np.ceil((bw * context + 2 * STRIDE) / STRIDE))))
    fx = fy = where
    if rng is not None:
        fx, fy = np.clip(where + rng.uniform(-0.25, 0.25, size=2), 0.1, 0.9)
    x0 = int(np.clip((box[0] + box[2]) / 2 - fx * cw, 0, w - cw)) // STRIDE * STRIDE
    y0 = int(np.clip((box[1] + box[3]) / 2 - fy * ch, 0, h - ch)) // STRIDE * STRIDE
    origin = np.array([x0, y0, x0, y0], dtype=np.float64)
    return image[:, y0:y0 + ch, x0:x0 + cw], box - origin, origin


def _stack(images: list[torch.Tensor]) -> torch.Tensor:
    """Stack uint8 (3, H, W) images, zero-padding right/bottom where sizes differ (boxes stay valid)."""
    h = max(i.shape[1] for i in images)
    w = max(i.shape[2] for i in images)
    return torch.stack([F.pad(i, (0, w - i.shape[2], 0, h - i.shape[1])) for i in images])


def build_matcher(cfg: dict) -> QueryMatcher:
    """A fresh QueryMatcher from a (complete) config dict."""
    return QueryMatcher(**{k: cfg[k] for k in MODEL_KEYS})


def _check_cfg(cfg: dict) -> dict:
    cfg = {**DEFAULTS, **cfg}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown matcher settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg["loss_weights"] = {**DEFAULTS["loss_weights"], **cfg["loss_weights"]}
    return cfg


def train_matcher(sequences: dict[str, Sequence], labels: pd.DataFrame, cfg: dict, *,
                  mining: Iterable[str] = MINING, device: str = "cpu", seed: int = 0,
                  progress: Callable[[int, int, str], None] | None = None,
                  masks: dict[MaskKey, RowMask] | None = None) -> tuple[QueryMatcher, list[dict]]:
    """Train a :class:`QueryMatcher` on pairs mined from ``labels`` (the budget's rows) and the videos.

    ``masks`` are the label rows' instance masks (``TrainView.masks``): they mask the templates and supervise the
    mask head; rows without one use their box.

    Each step draws ``batch_size`` pairs; waypoint pairs (cycle/step) first localise the object at the
    unlabeled frame without gradients, then train on (waypoint, predicted box) -> labelled target.
    Returns the model in eval mode and a per-step history of loss terms ("total", "seconds", ...).
    """
    cfg = _check_cfg(cfg)
    strategies = check_strategies(mining)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    supervised = [s for s in strategies if s in ("self", "support")]
    waypoint = [s for s in strategies if s in ("cycle", "step")]
    probe = mine_pairs(labels, sequences, strategies, np.random.default_rng(seed), cfg["max_gap"],
                       cfg["reference_interval"])
    if not probe:
        raise ValueError(f"no training pairs: the labels give nothing to mine with {strategies}")
    needed = sorted({p.seq for p in probe})
    frames = {name: torch.from_numpy(np.array(sequences[name].load_images())).permute(0, 3, 1, 2)
              for name in needed}
    # Waypoints one frame away move dt / reference_interval times as far as at 10 Hz: their search margin too.
    scales = {name: motion_scale(sequences[name], cfg["reference_interval"]) for name in needed}
    size = int(cfg["mask_size"])
    box_masks = label_box_masks(labels, sequences, masks, size)
    whole = np.ones((size, size), np.float32)
    model = build_matcher(cfg).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg["optimizer"] == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"],
                                                     weight_decay=cfg["weight_decay"])
    elif cfg["optimizer"] == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    else:
        raise ValueError(f"matcher optimizer must be 'adamw' or 'sgd', got {cfg['optimizer']!r}")
    steps = int(cfg["steps"])
    drops = sorted(float(f) for f in cfg["lr_drops"])
    pools: dict[bool, list[Pair]] = {False: [], True: []}
    history: list[dict] = []
    start = time.perf_counter()  # for the history's "seconds" only: no clock decides what is computed
    for step in range(steps):
        # How far training is, in steps only: a CPU-second budget here made the result depend on the
        # machine's load (the same seed scored kitti-2d MOTA 0.374 alone and 0.258 beside other jobs).
        done = step / steps
        while drops and done >= drops[0]:
            drops.pop(0)
            for group in opt.param_groups:
                group["lr"] *= 0.1
        use_waypoints = bool(waypoint) and (done >= cfg["waypoint_start"] or not supervised)
        batch = _draw(pools, use_waypoints, labels, sequences, supervised, waypoint, rng, cfg)
        model.train()
        batch, via_boxes, via_masks = _waypoint_boxes(model, batch, frames, cfg, device, scales, box_masks)
        if not batch:
            continue
        t_imgs, t_boxes, g_imgs, g_boxes, t_masks, g_masks = [], [], [], [], [], []
        for pair, via_box, via_mask in zip(batch, via_boxes, via_masks, strict=True):
            flip = bool(rng.random() < cfg["flip"])
            if pair.via_frame is None:
                source, box = frames[pair.seq][pair.template_frame], np.array(pair.template_box)
                t_mask = box_masks.get((pair.seq, pair.track_id, pair.template_frame), whole)
            else:
                source, box = frames[pair.seq][pair.via_frame], via_box
                t_mask = whole if via_mask is None else via_mask
            g_mask = box_masks.get((pair.seq, pair.track_id, pair.target_frame), whole)
            # A flip mirrors the box grid too (scales and shifts move the box with the image: its grid is unchanged).
            t_masks.append(t_mask[:, ::-1] if flip else t_mask)
            g_masks.append(g_mask[:, ::-1] if flip else g_mask)
            img, box = _augment(source, box, flip, rng, cfg)
            img, box, _ = _crop(img, box, cfg["train_crop"], cfg["context"], 0.5, rng)
            t_imgs.append(img)
            t_boxes.append(box)
            img, box = _augment(frames[pair.seq][pair.target_frame], np.array(pair.target_box), flip, rng, cfg)
            img, box, _ = _crop(img, box, cfg["train_crop"], cfg["context"], 0.5, rng)
            g_imgs.append(img)
            g_boxes.append(box)
        n = len(batch)
        feats = model.features(_stack(t_imgs + g_imgs).to(device))
        tokens = model.template(feats[:n], torch.tensor(np.stack(t_boxes), dtype=torch.float32, device=device),
                                torch.tensor(np.stack(t_masks), dtype=torch.float32, device=device))
        out = model(tokens, feats[n:])
        g_box_t = torch.tensor(np.stack(g_boxes), dtype=torch.float32, device=device)
        g_mask_t = torch.tensor(np.stack(g_masks), dtype=torch.float32, device=device)
        losses = matching_losses(out, g_box_t, cfg, model.shape_logits, g_mask_t)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        record = {k: float(v.detach()) for k, v in losses.items()}
        record.update({f"n_{kind}": sum(p.kind == kind for p in batch) for kind in MINING})
        record.update(pairs=n, seconds=time.perf_counter() - start)
        history.append(record)
        if progress is not None:
            progress(step + 1, steps, f"matcher loss {record['total']:.4f}")
    model.eval()
    return model, history


def _draw(pools: dict[bool, list[Pair]], use_waypoints: bool, labels: pd.DataFrame, sequences: dict[str, Sequence],
          supervised: list[str], waypoint: list[str], rng: np.random.Generator, cfg: dict) -> list[Pair]:
    """The next batch of pairs; pools are re-mined (fresh waypoints, fresh order) whenever they run dry."""
    key = use_waypoints
    pool = pools[key]
    if len(pool) < cfg["batch_size"]:
        chosen = supervised + (waypoint if use_waypoints else [])
        mined = mine_pairs(labels, sequences, chosen or waypoint, rng, cfg["max_gap"], cfg["reference_interval"])
        # Balance strategies: support/step pairs grow quadratically with the labels per track, self/cycle
        # linearly, so each strategy gets an equal share of the batches (sampling with replacement).
        by_kind: dict[str, list[Pair]] = {}
        for p in mined:
            by_kind.setdefault(p.kind, []).append(p)
        kinds = sorted(by_kind)
        size = max(len(v) for v in by_kind.values()) if by_kind else 0
        fresh: list[Pair] = []
        for kind in kinds:
            items = by_kind[kind]
            fresh += [items[i] for i in rng.permutation(len(items))] + \
                [items[i] for i in rng.integers(0, len(items), size=size - len(items))]
        pool[:] = pool + [fresh[i] for i in rng.permutation(len(fresh))]
    if not pool:
        return []
    batch, pool[:] = pool[: cfg["batch_size"]], pool[cfg["batch_size"]:]
    return batch


@torch.no_grad()
def _waypoint_boxes(model: QueryMatcher, batch: list[Pair], frames: dict[str, torch.Tensor], cfg: dict,
                    device: str, scales: dict[str, float] | None = None,
                    box_masks: dict[tuple[str, int, int], np.ndarray] | None = None
                    ) -> tuple[list[Pair], list[np.ndarray | None], list[np.ndarray | None]]:
    """Localise waypoint pairs' objects (box and mask) at their unlabeled frame; drop those the matcher is unsure of.

    The search covers the training view around the label (``waypoint_search`` "free", the paper's path) or only
    a window around the label's box ("window", the motion variant)."""
    ways = [p for p in batch if p.via_frame is not None]
    if not ways:
        return batch, [None] * len(batch), [None] * len(batch)
    # The same window of the labelled frame and of the waypoint, centred on the label (objects move little).
    crops = [_crop(frames[p.seq][p.template_frame], np.array(p.template_box), cfg["train_crop"], cfg["context"],
                   0.5, None) for p in ways]
    origins = np.stack([origin for _, _, origin in crops])
    src = _stack([image for image, _, _ in crops]).to(device)
    dst = _stack([frames[p.seq][p.via_frame][:, int(o[1]):int(o[1]) + image.shape[1],  # type: ignore[index]
                  int(o[0]):int(o[0]) + image.shape[2]] for p, (image, _, o) in zip(ways, crops, strict=True)])
    feats = model.features(torch.cat([src, dst.to(device)]))
    prior = torch.tensor(np.stack([box for _, box, _ in crops]), dtype=torch.float32, device=device)
    size = model.mask_size
    label_masks = torch.tensor(np.stack([(box_masks or {}).get((p.seq, p.track_id, p.template_frame),
                                                                 np.ones((size, size), np.float32)) for p in ways]),
                               dtype=torch.float32, device=device)
    tokens = model.template(feats[: len(ways)], prior, label_masks)
    if cfg["waypoint_search"] == "window":
        margin = torch.tensor([model.window_margin * (scales or {}).get(p.seq, 1.0) for p in ways], device=device)
        boxes, conf, masks = model.locate(tokens, feats[len(ways):], prior_boxes=prior, margin=margin)
    elif cfg["waypoint_search"] == "free":
        boxes, conf, masks = model.locate(tokens, feats[len(ways):])
    else:
        raise ValueError(f"waypoint_search must be 'free' or 'window', got {cfg['waypoint_search']!r}")
    boxes_px = boxes.cpu().numpy() + origins
    found = {id(p): (b, c, m) for p, b, c, m in zip(ways, boxes_px, conf.cpu().numpy(), masks.cpu().numpy(),
                                                     strict=True)}
    keep: list[Pair] = []
    via: list[np.ndarray | None] = []
    via_masks: list[np.ndarray | None] = []
    for p in batch:
        if p.via_frame is None:
            keep.append(p)
            via.append(None)
            via_masks.append(None)
        elif found[id(p)][1] >= cfg["waypoint_min_conf"] and (found[id(p)][0][2:] - found[id(p)][0][:2] > 1).all():
            keep.append(p)
            via.append(found[id(p)][0].astype(np.float64))
            via_masks.append(found[id(p)][2].astype(np.float32))
    return keep, via, via_masks


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two (N, 4) box arrays."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)

