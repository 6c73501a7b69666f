"""Pseudolabel generation in 2D (paper 3.4): propagate every sparse label through the whole video.

Each label of a track starts two *runs*, one forwards and one backwards in time. A run asks the
query matcher, frame by frame, where its template object (box + object mask) is in the next frame.
On the paper's path (``search`` "free", the default) the matcher searches the whole frame and its
heatmap confidence alone decides (paper 3.4: "we discard predictions having confidence less than
[a threshold], and update the source image only when the match confidence is higher than [another]";
the paper searches the whole target image, 3.2: "we pass the target image through the same image
encoder"):

- a match with confidence below ``conf_drop`` is discarded (no row); after more than ``patience``
  consecutive discarded matches the run ends (the object is lost or occluded for good);
- the template (the paper's "source image") is re-cut from the new frame, with the mask the matcher
  predicted, only when the match is at least ``conf_update`` confident, so a doubtful match cannot
  drift the appearance model;
- a run stops at the track's next labelled frame in its direction (that label is ground truth),
  or when the box leaves the image.

The ``motion`` variant (our extension, :data:`methods.sparse3dtrack.config.VARIANTS`) adds motion
priors: ``search`` "window" (the peak only near a prior box, blended with a cosine window),
``goal_prior`` (the prior slides towards the next label), ``max_extrapolate`` and ``span_interval``
(linear interpolation between labels at low frame rates).

Confidence: the thresholds act on the raw heatmap peak (as the paper's do), but the ``conf`` written
out is calibrated (``calibration`` "isotonic"): it estimates the probability that the box is right
(IoU >= 0.5). The samples come from the labels alone: every run that has a next label in its
direction is asked, with its last template, where the object is at that labelled frame, and the
answer is scored against the label (:mod:`.calibration`).

Every frame is encoded once; all runs of a chunk of sequences advance in lock-step by *step count*
(step ``s`` of a run started at frame index ``i`` looks at ``i + s*direction``), so each step is one
batched ``locate`` call for every active run of every sequence and both directions.

Between two labels the forward estimate (from the earlier label) and the backward estimate (from
the later one) overlap; they are merged per frame by confidence (:func:`merge_directions`).
Labelled frames keep their human rows with ``conf`` 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from bench.data.masks import MaskKey, RowMask
from bench.data.sequence import Sequence
from bench.data.tracks import BOX2D_COLUMNS, DONTCARE
from methods.sparse3dtrack.calibration import fit_calibration
from methods.sparse3dtrack.masks import label_box_masks

DEFAULTS: dict = {
    # The paper's path. Provenance of each value: "paper" = the paper's rule (its numeric thresholds did not
    # survive in our copy of the text); "dev" = chosen on the development world (synth-kitti quick, data seed 1,
    # budget 4, matcher seed 0: 2D pseudo tracks against that world's ground truth; docs/methods/sparse3dtrack.md);
    # never on the benchmark's (data seed 0) training ground truth or validation split.
    "search": "free",  # paper 3.2: the matcher sees the whole target image ("window": motion variant)
    # dev: grid conf_drop 0.15 / 0.25 / 0.35 x patience 1 / 3 -> 2D MOTA -0.66 / 0.11 / 0.29 (IDF1 0.36 / 0.51 /
    # 0.48, precision 0.26 / 0.48 / 0.76); without a window, low peaks are mostly look-alikes. 0.35 is the grid's top.
    "conf_drop": 0.35,  # raw heatmap peak below this -> no row (paper 3.4: "discard ... less than")
    "conf_update": 0.5,  # not re-tuned (kept from before issue 15): re-cut the template only from matches this sure
    "patience": 1,  # dev: 3 scored the same at 0.35 (MOTA 0.296 vs 0.294) and cost 30 % more; 1 at 0.25 was better
    "calibration": "isotonic",  # conf out = P(IoU >= 0.5) fitted on the labels ("none": the raw peak)
    # Motion priors: off on the paper's path; the motion variant (config.VARIANTS) turns them on with the
    # values it was tuned with before issue 15 (synth-kitti quick training split, see docs/journal/2026-11.md).
    # Between two labels the prior slides towards the next label's box and the run never ends early there;
    # past a track's first/last label runs stop after max_extrapolate frames; bridge_conf > 0 outputs the
    # prior box for a dropped match inside a labelled span.
    "goal_prior": False,
    "bridge_conf": 0.0,
    "max_extrapolate": 0,  # >0: runs past a track's first/last label stop after this many frames (0: never)
    # The per-frame settings above and the matcher's window margin were tuned on 10 Hz video. They are
    # amounts of motion and time, so they are read as "per reference_interval" and scaled by each
    # sequence's frame interval dt (median timestamp step): the search window's margin grows with dt
    # (objects move dt/reference_interval times farther between frames) and max_extrapolate shrinks to
    # round(max_extrapolate * reference_interval / dt) frames (>= 1), i.e. the same 0.8 s. At 10 Hz
    # nothing changes; None: no scaling (per-frame values as given).
    "reference_interval": 0.1,  # s
    "window_margin": None,  # px of motion per reference_interval (None: the matcher's own window_margin)
    # Motion variant only: for sequences whose frame interval exceeds span_interval (s) the frames between two
    # labels get the linearly interpolated box at span_conf, and the matcher carries tracks only past their
    # first/last label (chosen on synth-nuscenes quick training ground truth before issue 15). None: always match.
    "span_interval": None,
    "span_conf": 0.5,
    # The values below were not tuned: 0.5 is the IoU at which the benchmark counts a box right, 0.7 the IoU
    # above which two boxes are one object, the two image-exit sizes are geometry.
    "agree_iou": 0.5,  # forward/backward estimates with this IoU are averaged, else the more confident wins
    "dedupe_iou": 0.7,  # two tracks' boxes overlapping this much in one frame: the less confident is dropped
    "min_size": 3.0,  # px: a clipped box narrower/lower than this has left the image
    "min_visible": 0.3,  # a box whose in-image part is below this fraction of its area has left the image
    # Window search only: run the matcher on a crop around each run's search window (same peak, far cheaper)
    "crop": True,
    "crop_margin": 2,  # cells of context beyond the search window and half the box, each side
    "stride": 8,  # the matcher's feature stride (px per cell)
    "encode_batch": 16,  # frames per matcher.features call
    "cache_mb": 1024.0,  # feature cache per chunk of sequences (float32 MB); larger datasets go in chunks
    # Runs per matcher.locate call in free search. The heads run over whole maps there, so one call over every
    # active run held 2.8 GiB on synth-nuscenes quick (384x224) and took its cell past the 6 GiB target. A run's
    # result does not depend on its batch (tests/sparse3dtrack/test_propagate.py checks it).
    "locate_batch": 64,
}


@dataclass
class _Run:
    seq: str
    track_id: int
    cls: str
    start: int  # frame index of the label the run starts from
    stop: int  # exclusive frame index in the run's direction (next label, or -1 / T)
    direction: int  # +1 forwards, -1 backwards
    box: np.ndarray  # last accepted box (x1, y1, x2, y2)
    goal: np.ndarray | None = None  # the label's box at ``stop`` when ``stop`` is a labelled frame
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # per-frame box motion, for the prior
    mask: np.ndarray | None = None  # the label's object mask on its box grid (None: the box)
    misses: int = 0
    # (frame index, box, conf, matched): matched rows carry the matcher's raw peak (calibrated later); others
    # (motion variant: interpolated or bridged boxes) a fixed confidence.
    rows: list[tuple[int, np.ndarray, float, bool]] = field(default_factory=list)


def resolve(cfg: dict | None) -> dict:
    cfg = {**DEFAULTS, **(cfg or {})}
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown propagation settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    if not 0.0 <= cfg["conf_drop"] <= cfg["conf_update"] <= 1.0:
        raise ValueError(f"need 0 <= conf_drop <= conf_update <= 1, got {cfg['conf_drop']}, {cfg['conf_update']}")
    if not 0.0 < float(cfg["span_conf"]) <= 1.0:
        raise ValueError(f"span_conf must be in (0, 1], got {cfg['span_conf']}")
    if int(cfg["patience"]) < 0:
        raise ValueError(f"patience must be >= 0, got {cfg['patience']}")
    if cfg["search"] not in ("free", "window"):
        raise ValueError(f"search must be 'free' or 'window', got {cfg['search']!r}")
    if cfg["calibration"] not in ("isotonic", "none"):
        raise ValueError(f"calibration must be 'isotonic' or 'none', got {cfg['calibration']!r}")
    return cfg


@torch.no_grad()
def encode_sequence(matcher: torch.nn.Module, sequence: Sequence, *, device: str = "cpu",
                    batch: int = 16) -> torch.Tensor:
    """The matcher's features of every frame of ``sequence``: (T, C, h, w) float32 on ``device``."""
    out = []
    for i in range(0, sequence.num_frames, batch):
        frames = np.stack([sequence.image(j) for j in range(i, min(i + batch, sequence.num_frames))])
        images = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).contiguous()
        out.append(matcher.features(images).float())
    return torch.cat(out)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) boxes -> (N, M)."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def merge_directions(estimates: pd.DataFrame, agree_iou: float = 0.5) -> pd.DataFrame:
    """One box per (seq, frame, track_id) from up to two directional estimates.

    ``estimates`` has columns seq, frame, track_id, cls, x1..y2, conf (several rows per key where
    the forward and backward runs both reached a frame). Where the two boxes agree (IoU >=
    ``agree_iou``) the result is their confidence-weighted average with the larger confidence;
    where they disagree the more confident estimate wins unchanged.
    """
    keys = ["seq", "frame", "track_id"]
    if estimates.empty:
        return estimates.copy()
    est = estimates.sort_values(keys + ["conf"], ascending=[True, True, True, False], kind="stable")
    dup = est.duplicated(keys, keep=False).to_numpy()
    single = est[~dup]
    pairs = est[dup]
    if pairs.empty:
        return single.reset_index(drop=True)
    best = pairs.drop_duplicates(keys, keep="first").reset_index(drop=True)
    other = pairs[pairs.duplicated(keys, keep="first")].drop_duplicates(keys, keep="first").reset_index(drop=True)
    # Both are sorted by key, and every key in ``pairs`` has >= 2 rows, so rows align one to one.
    b = best[list(BOX2D_COLUMNS)].to_numpy(float)
    o = other[list(BOX2D_COLUMNS)].to_numpy(float)
    cb, co = best["conf"].to_numpy(float), other["conf"].to_numpy(float)
    ix = np.clip(np.minimum(b[:, 2], o[:, 2]) - np.maximum(b[:, 0], o[:, 0]), 0, None)
    iy = np.clip(np.minimum(b[:, 3], o[:, 3]) - np.maximum(b[:, 1], o[:, 1]), 0, None)
    inter = ix * iy
    union = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) + (o[:, 2] - o[:, 0]) * (o[:, 3] - o[:, 1]) - inter
    agree = inter / np.maximum(union, 1e-9) >= agree_iou
    weights = np.stack([cb, co], 1) / np.maximum(cb + co, 1e-9)[:, None]
    averaged = weights[:, :1] * b + weights[:, 1:] * o
    best.loc[agree, list(BOX2D_COLUMNS)] = averaged[agree]
    return pd.concat([single, best], ignore_index=True).sort_values(keys, kind="stable").reset_index(drop=True)


def dedupe_tracks(table: pd.DataFrame, iou: float) -> pd.DataFrame:
    """Drop the less confident of two different tracks' boxes that cover one object in a frame.

    Two runs that slid onto the same object would otherwise give the base tracker a duplicate box
    (a false positive) in every such frame. Human-labelled rows (``labelled``) are never dropped.
    """
    if table.empty or iou >= 1.0:
        return table
    drop: list[int] = []
    for _, group in table.groupby(["seq", "frame"], sort=False):
        if len(group) < 2:
            continue
        order = group.sort_values(["labelled", "conf"], ascending=False, kind="stable")
        boxes = order[list(BOX2D_COLUMNS)].to_numpy(float)
        overlap = box_iou(boxes, boxes)
        kept: list[int] = []
        for j, index in enumerate(order.index):
            if kept and overlap[j, kept].max() >= iou and not order["labelled"].iat[j]:
                drop.append(index)
            else:
                kept.append(j)
    return table.drop(index=drop)


def frame_interval(sequence: Sequence) -> float:
    """The sequence's frame interval in seconds: the median step of its timestamps (nan for < 2 frames)."""
    steps = np.diff(np.asarray(sequence.timestamps, dtype=np.float64))
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else float("nan")


def motion_scale(sequence: Sequence, reference_interval: float | None) -> float:
    """How many times farther objects move between this sequence's frames than at ``reference_interval`` s.

    1.0 without a reference or usable timestamps. Rounded to 4 decimals: float timestamps give 10 Hz
    steps of 0.10000000000000009 s, and the scaled settings should then be exactly the tuned ones.
    """
    reference = reference_interval
    dt = frame_interval(sequence)
    if not reference or not np.isfinite(dt):
        return 1.0
    return round(dt / float(reference), 4)


def _left_image(box: np.ndarray, size: tuple[int, int], cfg: dict) -> tuple[bool, np.ndarray]:
    w, h = size
    clipped = np.array([np.clip(box[0], 0, w), np.clip(box[1], 0, h), np.clip(box[2], 0, w), np.clip(box[3], 0, h)])
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    visible = (clipped[2] - clipped[0]) * (clipped[3] - clipped[1]) / area
    gone = (clipped[2] - clipped[0] < cfg["min_size"] or clipped[3] - clipped[1] < cfg["min_size"]
            or visible < cfg["min_visible"])
    return bool(gone), clipped


def _runs_of(seq: Sequence, labels: pd.DataFrame, box_masks: dict[tuple[str, int, int], np.ndarray]) -> list[_Run]:
    runs = []
    for (track_id, cls), rows in labels.groupby(["track_id", "cls"], sort=True):
        index = np.array([seq.index_of(int(f)) for f in rows["frame"]])
        order = np.argsort(index)
        index = index[order]
        boxes = rows[list(BOX2D_COLUMNS)].to_numpy(float)[order]
        for j, (i, box) in enumerate(zip(index, boxes, strict=True)):
            after = int(index[j + 1]) if j + 1 < len(index) else seq.num_frames
            before = int(index[j - 1]) if j > 0 else -1
            for direction, stop in ((1, after), (-1, before)):
                if (stop - i) * direction > 1:  # at least one unlabelled frame to visit
                    goal_j = j + direction
                    goal = boxes[goal_j].copy() if 0 <= goal_j < len(index) else None
                    runs.append(_Run(seq.name, int(track_id), str(cls), int(i), stop, direction, box.copy(), goal,
                                     mask=box_masks.get((seq.name, int(track_id), int(i)))))
    return runs


def _bucket(cells: np.ndarray, limit: int, step: int = 4) -> np.ndarray:
    """Crop sizes rounded up to ``step`` cells (few distinct sizes: few locate calls), at most the map."""
    return np.minimum(limit, np.ceil(cells / step).astype(int) * step)


def _locate(matcher: torch.nn.Module, template: torch.Tensor, maps: list[torch.Tensor], prior: np.ndarray | None,
            cfg: dict, margins: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``matcher.locate`` for each run's target map (C, h, w); boxes (N, 4) px, raw conf (N,), masks (N, S, S).

    ``prior`` None (the paper's path): the whole map, batched by map size. With a prior (window search, the
    motion variant) the matcher only looks for the peak in a window around the prior box (``window`` x its
    half-size + ``window_margin`` px), so the heads need not run on the whole frame: each run's target map is
    cropped to that window plus half the box and ``crop_margin`` cells on each side (the similarity module and
    convolutions then see the object and its surroundings, as in training) and the result shifted back.
    ``margins`` (N,) px replace the matcher's ``window_margin`` per run (None: the matcher's own).
    """
    dev = maps[0].device
    n = len(maps)
    size = int(getattr(matcher, "mask_size", 16))
    boxes = np.zeros((n, 4))
    conf = np.zeros(n)
    masks = np.ones((n, size, size), np.float32)
    shapes = np.array([m.shape[-2:] for m in maps])  # (N, 2) cells (h, w)
    window = getattr(matcher, "window", None)
    if prior is not None and cfg["crop"] and window is not None:
        stride = float(cfg["stride"])
        margin = (np.full(n, float(getattr(matcher, "window_margin", 0.0))) if margins is None
                  else np.asarray(margins, float))
        bw = np.clip(prior[:, 2] - prior[:, 0], 1, None)
        bh = np.clip(prior[:, 3] - prior[:, 1], 1, None)
        need_w = 2 * ((bw / 2 * window + margin + bw / 2) / stride + cfg["crop_margin"])
        need_h = 2 * ((bh / 2 * window + margin + bh / 2) / stride + cfg["crop_margin"])
        cw = _bucket(need_w, 10**9)
        ch = _bucket(need_h, 10**9)
        cw, ch = np.minimum(cw, shapes[:, 1]), np.minimum(ch, shapes[:, 0])
        cx = (prior[:, 0] + prior[:, 2]) / 2 / stride
        cy = (prior[:, 1] + prior[:, 3]) / 2 / stride
        x0 = np.clip(np.round(cx - cw / 2), 0, shapes[:, 1] - cw).astype(int)
        y0 = np.clip(np.round(cy - ch / 2), 0, shapes[:, 0] - ch).astype(int)
    else:
        ch, cw = shapes[:, 0], shapes[:, 1]
        x0 = y0 = np.zeros(n, int)
    groups: dict[tuple[int, int], list[int]] = {}
    for j in range(n):
        groups.setdefault((int(ch[j]), int(cw[j])), []).append(j)
    # Window crops are small, so only free search is batched (batching crops moved their conf by ~1e-5).
    batch = int(cfg["locate_batch"] or n) if prior is None else n
    calls = [((gh, gw), group[i:i + batch]) for (gh, gw), group in groups.items() for i in range(0, len(group), batch)]
    for (gh, gw), members in calls:
        crops = torch.stack([maps[j][:, y0[j]:y0[j] + gh, x0[j]:x0[j] + gw] for j in members])
        shift = np.stack([x0[members], y0[members], x0[members], y0[members]], 1) * float(cfg["stride"])
        if prior is None:
            b, c, m = matcher.locate(template[members], crops)
        else:
            local = torch.tensor(prior[members] - shift, dtype=torch.float32, device=dev)
            margin_t = None if margins is None else torch.tensor(margins[members], dtype=torch.float32, device=dev)
            b, c, m = matcher.locate(template[members], crops, local, margin=margin_t)
        boxes[members] = b.float().cpu().numpy() + shift
        conf[members] = c.float().cpu().numpy()
        masks[members] = m.float().cpu().numpy()
    return boxes, conf, masks


@torch.no_grad()
def _prior(run: _Run, target: int, cfg: dict) -> np.ndarray:
    """Where to search at frame index ``target``: towards the next label when there is one, else by velocity."""
    if cfg["goal_prior"] and run.goal is not None:
        last = target - (run.misses + 1) * run.direction  # frame of the last accepted box
        fraction = (target - last) / (run.stop - last)
        return run.box + (run.goal - run.box) * fraction
    return run.box + run.velocity * (run.misses + 1)


def _templates(matcher: torch.nn.Module, feats: torch.Tensor, boxes: list[np.ndarray], masks: list[np.ndarray | None],
               dev: torch.device) -> torch.Tensor:
    size = int(getattr(matcher, "mask_size", 16))
    box_t = torch.tensor(np.stack(boxes), dtype=torch.float32, device=dev)
    mask_t = torch.tensor(np.stack([np.ones((size, size), np.float32) if m is None else m for m in masks]),
                          dtype=torch.float32, device=dev)
    return matcher.template(feats, box_t, mask_t)


def _propagate_chunk(matcher: torch.nn.Module, sequences: dict[str, Sequence], runs: list[_Run],
                     features: dict[str, torch.Tensor], cfg: dict) -> list[tuple[float, float]]:
    """Advance every run of these sequences step by step; fills each run's ``rows``.

    Returns calibration samples (raw conf, IoU with the label): each run with a next label, asked with its last
    template where the object is at that labelled frame."""
    if not runs:
        return []
    dev = next(iter(features.values())).device
    window = cfg["search"] == "window"
    # Frame-rate scaling (see DEFAULTS): the search margin and the extrapolation cap of every run.
    scale = {name: motion_scale(sequences[name], cfg["reference_interval"]) for name in {run.seq for run in runs}}
    base_margin = cfg["window_margin"]
    if base_margin is None:
        base_margin = getattr(matcher, "window_margin", 0.0)
    margins = np.array([float(base_margin) * scale[run.seq] for run in runs])
    cap = int(cfg["max_extrapolate"])
    extrapolate = np.array([max(1, round(cap / scale[run.seq])) if cap else 0 for run in runs])
    # Initial templates from the labelled frames (box + the label's object mask), one batched call per sequence.
    tokens: list[torch.Tensor | None] = [None] * len(runs)
    by_seq: dict[str, list[int]] = {}
    for r, run in enumerate(runs):
        by_seq.setdefault(run.seq, []).append(r)
    for name, members in by_seq.items():
        feats = features[name][[runs[r].start for r in members]]
        made = _templates(matcher, feats, [runs[r].box for r in members], [runs[r].mask for r in members], dev)
        for r, t in zip(members, made, strict=True):
            tokens[r] = t
    active = list(range(len(runs)))
    if cfg["span_interval"] is not None:
        interpolated = {r for r, run in enumerate(runs)
                        if run.goal is not None and frame_interval(sequences[run.seq]) > cfg["span_interval"]}
        for r in interpolated:
            run = runs[r]
            length = abs(run.stop - run.start)
            run.rows = [(run.start + k * run.direction, run.box + (run.goal - run.box) * k / length,
                         float(cfg["span_conf"]), False) for k in range(1, length)]
        active = [r for r in active if r not in interpolated]
    matched = set(active)
    step = 0
    while active:
        step += 1
        # Runs that reached the next label (or the video's end) in their direction are done.
        active = [r for r in active
                  if (runs[r].stop - (runs[r].start + step * runs[r].direction)) * runs[r].direction > 0
                  and (runs[r].goal is not None or not extrapolate[r] or step <= extrapolate[r])]
        if not active:
            break
        targets = [runs[r].start + step * runs[r].direction for r in active]
        template = torch.stack([tokens[r] for r in active])  # type: ignore[misc]
        prior = np.stack([_prior(runs[r], t, cfg) for r, t in zip(active, targets, strict=True)])
        maps = [features[runs[r].seq][t] for r, t in zip(active, targets, strict=True)]
        boxes_np, conf_np, masks_np = _locate(matcher, template, maps, prior if window else None, cfg,
                                              margins[active])
        still, update = [], []
        for j, r in enumerate(active):
            run = runs[r]
            if conf_np[j] < cfg["conf_drop"] or not np.isfinite(boxes_np[j]).all():
                run.misses += 1
                bridged = cfg["goal_prior"] and run.goal is not None
                if bridged and cfg["bridge_conf"] > 0:
                    run.rows.append((targets[j], prior[j], float(cfg["bridge_conf"]), False))
                if bridged or run.misses <= cfg["patience"]:
                    still.append(r)
                continue
            gone, clipped = _left_image(boxes_np[j], sequences[run.seq].image_size, cfg)
            if gone:
                continue
            # Smoothed per-frame motion: it moves the search prior across dropped frames (window search only).
            run.velocity = 0.5 * run.velocity + 0.5 * (clipped - run.box) / (run.misses + 1)
            run.box, run.misses = clipped, 0
            run.rows.append((targets[j], clipped, float(conf_np[j]), True))
            if conf_np[j] >= cfg["conf_update"]:
                update.append(j)
            still.append(r)
        if update:
            feats = torch.stack([maps[j] for j in update])
            made = _templates(matcher, feats, [runs[active[j]].box for j in update], [masks_np[j] for j in update],
                              dev)
            for j, t in zip(update, made, strict=True):
                tokens[active[j]] = t
        active = still
    # Calibration samples: the runs the matcher carried that end at a label, asked once more at that label.
    ends = [r for r in sorted(matched) if runs[r].goal is not None and 0 <= runs[r].stop < len(features[runs[r].seq])]
    if not ends:
        return []
    template = torch.stack([tokens[r] for r in ends])  # type: ignore[misc]
    maps = [features[runs[r].seq][runs[r].stop] for r in ends]
    prior = np.stack([runs[r].box for r in ends]) if window else None
    boxes_np, conf_np, _ = _locate(matcher, template, maps, prior, cfg, margins[ends])
    ious = [float(box_iou(boxes_np[j], runs[r].goal)[0, 0]) for j, r in enumerate(ends)]  # type: ignore[arg-type]
    return list(zip(conf_np.tolist(), ious, strict=True))


def propagate(matcher: torch.nn.Module, sequences: dict[str, Sequence], labels: pd.DataFrame, cfg: dict | None = None,
              *, device: str = "cpu", progress: Callable[[int, int, str], None] | None = None,
              features: dict[str, torch.Tensor] | None = None,
              masks: dict[MaskKey, RowMask] | None = None) -> pd.DataFrame:
    """Dense 2D pseudo tracks from sparse labels.

    Returns one row per (seq, frame, track_id) with columns seq, frame (id), track_id, cls,
    x1, y1, x2, y2, conf, labelled (True on the human-labelled frames, whose rows are the labels'
    own 2D boxes with conf 1). Only track ids present in ``labels`` appear. ``features`` may hold
    precomputed :func:`encode_sequence` outputs per sequence (then nothing is re-encoded); ``masks`` the label
    rows' instance masks (``TrainView.masks``; rows without one start from their box).
    ``attrs["calibration"]`` holds the fitted :class:`.calibration.Calibration` (None without samples or with
    ``calibration`` "none"), ``attrs["calibration_samples"]`` its (raw conf, IoU) samples.
    """
    cfg = resolve(cfg)
    missing = sorted(set(labels["seq"]) - set(sequences)) if len(labels) else []
    if missing:
        raise ValueError(f"labels name sequences {missing} that are not in the training videos")
    labels = labels[(labels["cls"] != DONTCARE).to_numpy() & (labels["track_id"] >= 0).to_numpy()]
    names = [n for n in sorted(sequences) if n in set(labels["seq"])]
    box_masks = label_box_masks(labels, sequences, masks, int(getattr(matcher, "mask_size", 16)))
    matcher.eval()
    start = time.perf_counter()
    estimates: list[dict] = []
    samples: list[tuple[float, float]] = []
    # Chunks of sequences whose cached features fit the memory cap.
    chunks: list[list[str]] = []
    budget = 0.0
    for name in names:
        seq = sequences[name]
        mb = seq.num_frames * 4.0 * 64 * (seq.image_size[0] // 8) * (seq.image_size[1] // 8) / 2**20  # rough, C=64
        if not chunks or budget + mb > cfg["cache_mb"]:
            chunks.append([])
            budget = 0.0
        chunks[-1].append(name)
        budget += mb
    done = 0
    for chunk in chunks:
        feats = {n: features[n] if features is not None and n in features
                 else encode_sequence(matcher, sequences[n], device=device, batch=int(cfg["encode_batch"]))
                 for n in chunk}
        runs = [run for n in chunk for run in _runs_of(sequences[n], labels[labels["seq"] == n], box_masks)]
        samples += _propagate_chunk(matcher, sequences, runs, feats, cfg)
        for run in runs:
            frame_ids = sequences[run.seq].frame_ids
            for index, box, conf, is_match in run.rows:
                estimates.append({"seq": run.seq, "frame": int(frame_ids[index]), "track_id": run.track_id,
                                  "cls": run.cls, "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3],
                                  "conf": conf, "matched": is_match})
        del feats
        done += len(chunk)
        if progress is not None:
            progress(done, len(names), "propagate")
    columns = ["seq", "frame", "track_id", "cls", *BOX2D_COLUMNS, "conf"]
    raw = pd.DataFrame(estimates, columns=[*columns, "matched"])
    calibration = None
    if cfg["calibration"] == "isotonic" and samples:
        calibration = fit_calibration(np.array([c for c, _ in samples]), np.array([i >= 0.5 for _, i in samples]))
        is_match = raw["matched"].to_numpy(bool)
        raw.loc[is_match, "conf"] = calibration(raw.loc[is_match, "conf"].to_numpy(float))
    merged = merge_directions(raw.drop(columns="matched"), float(cfg["agree_iou"]))
    merged["labelled"] = False
    human = labels[columns[:-1]].copy()
    human["conf"], human["labelled"] = 1.0, True
    # A run never visits a labelled frame of its own track, so no key is in both tables.
    table = pd.concat([human, merged], ignore_index=True)
    table = dedupe_tracks(table, float(cfg["dedupe_iou"]))
    table = table.sort_values(["seq", "frame", "track_id"], kind="stable").reset_index(drop=True)
    table.attrs["seconds"] = time.perf_counter() - start
    table.attrs["frames"] = int(sum(sequences[n].num_frames for n in names))
    table.attrs["calibration"] = calibration
    table.attrs["calibration_samples"] = np.array(samples, dtype=np.float64).reshape(-1, 2)
    return table
