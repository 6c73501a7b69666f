"""Instance masks of labelled boxes: what an annotator draws beside a box (KITTI-MOTS style).

A mask is stored per label row as a crop: the boolean pixels of the row's 2D box rounded outwards to
whole pixels and clipped to the image (:class:`RowMask`: origin + (h, w) array). That is compact (a
few hundred bytes a row), needs no pickle, and carries nothing outside the labelled box.

Where they come from:

- the synthetic world renders an instance buffer (``Split.layers["instance"]``: the track id of the
  object seen at each pixel, -1 elsewhere), so every labelled row's mask is the buffer's pixels of
  that track inside its box (:func:`masks_from_instance`);
- for real KITTI tracking, a user who has KITTI-MOTS annotations points ``BENCH_KITTI_MOTS_ROOT`` at
  their ``instances_txt`` folder (:func:`read_kitti_mots`); without them no masks exist and a labeler
  falls back to box masks (and says so in its log).

Only the firewall hands masks to a method, and only for the budget's label rows
(:func:`bench.firewall.train_view`): masks of hidden frames never leave the split.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.sequence import DataError, Sequence
from bench.data.tracks import DONTCARE

MaskKey = tuple[str, int, int]  # (seq, frame id, track_id)


@dataclass(frozen=True)
class RowMask:
    """One label row's mask: ``mask[i, j]`` is pixel (x0 + j, y0 + i) of the frame."""

    x0: int
    y0: int
    mask: np.ndarray  # (h, w) bool

    def full(self, size: tuple[int, int]) -> np.ndarray:
        """The mask pasted into an empty (H, W) frame of ``size`` = (W, H)."""
        out = np.zeros((size[1], size[0]), dtype=bool)
        h, w = self.mask.shape
        out[self.y0:self.y0 + h, self.x0:self.x0 + w] = self.mask
        return out


def box_window(box: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) whole pixels covering ``box`` (x1, y1, x2, y2), clipped to an image of ``size`` = (W, H)."""
    w, h = size
    x0 = int(np.clip(np.floor(box[0]), 0, w))
    y0 = int(np.clip(np.floor(box[1]), 0, h))
    x1 = int(np.clip(np.ceil(box[2]), x0, w))
    y1 = int(np.clip(np.ceil(box[3]), y0, h))
    return x0, y0, x1, y1


def _label_rows(labels: pd.DataFrame) -> pd.DataFrame:
    keep = (labels["cls"] != DONTCARE).to_numpy() & (labels["track_id"] >= 0).to_numpy()
    return labels[keep]


def masks_from_instance(labels: pd.DataFrame, sequences: Mapping[str, Sequence],
                        instance: Mapping[str, np.ndarray]) -> dict[MaskKey, RowMask]:
    """Each label row's mask cut from a rendered instance buffer ``{seq: (T, H, W) track id or -1}``.

    Rows of sequences without a buffer get none. The arrays are fresh, read-only copies (the buffer may be
    memory-mapped from the dataset folder, which a method must not reach).
    """
    out: dict[MaskKey, RowMask] = {}
    rows = _label_rows(labels)
    for seq, group in rows.groupby("seq", sort=True):
        buffer = instance.get(str(seq))
        if buffer is None:
            continue
        sequence = sequences[str(seq)]
        boxes = group[["x1", "y1", "x2", "y2"]].to_numpy(float)
        for frame, track_id, box in zip(group["frame"].to_numpy(), group["track_id"].to_numpy(), boxes, strict=True):
            x0, y0, x1, y1 = box_window(box, sequence.image_size)
            crop = np.array(buffer[sequence.index_of(int(frame)), y0:y1, x0:x1] == int(track_id), copy=True)
            crop.flags.writeable = False
            out[(str(seq), int(frame), int(track_id))] = RowMask(x0, y0, crop)
    return out


def decode_coco_rle(counts: str, height: int, width: int) -> np.ndarray:
    """A COCO compressed RLE string (KITTI-MOTS, pycocotools' ``frString``) -> (height, width) bool mask.

    Runs alternate background/foreground, column-major; each run length is a 5-bit-chunked, delta-coded
    integer written as characters offset by 48 (as pycocotools encodes it).
    """
    runs: list[int] = []
    i = 0
    while i < len(counts):
        value, shift, more = 0, 0, True
        while more:
            c = ord(counts[i]) - 48
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            i += 1
            shift += 1
            if not more and c & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    flat = np.zeros(height * width, dtype=bool)
    position = 0
    for k, run in enumerate(runs):
        if run < 0 or position + run > flat.size:
            raise DataError(f"RLE run {k} ({run}) runs past a {height}x{width} mask")
        if k % 2:
            flat[position:position + run] = True
        position += run
    return flat.reshape(width, height).T


def read_kitti_mots(root: Path | str, labels: pd.DataFrame, sequences: Mapping[str, Sequence],
                    min_iou: float = 0.5) -> dict[MaskKey, RowMask]:
    """Masks of the label rows from KITTI-MOTS ``instances_txt/<seq>.txt`` files under ``root``.

    Each line: ``frame obj_id class_id img_height img_width rle``. MOTS object ids are not KITTI tracking
    ids, so a label row takes the mask of the same frame whose bounding box overlaps its box best (IoU >=
    ``min_iou``); a row without one gets none (its labeler then uses the box).
    """
    root = Path(root)
    out: dict[MaskKey, RowMask] = {}
    rows = _label_rows(labels)
    for seq, group in rows.groupby("seq", sort=True):
        path = root / f"{seq}.txt"
        if not path.is_file():
            continue
        wanted = set(int(f) for f in group["frame"])
        per_frame: dict[int, list[np.ndarray]] = {}
        for number, line in enumerate(path.read_text().splitlines(), 1):
            parts = line.split(" ")
            if len(parts) != 6:
                raise DataError(f"{path}:{number}: expected 6 fields (frame obj_id class_id h w rle), got {len(parts)}")
            frame, obj_id = int(parts[0]), int(parts[1])
            if frame in wanted and obj_id != 10000:  # 10000: KITTI-MOTS "ignore" region
                per_frame.setdefault(frame, []).append(decode_coco_rle(parts[5], int(parts[3]), int(parts[4])))
        sequence = sequences[str(seq)]
        for frame, track_id, box in zip(group["frame"].to_numpy(), group["track_id"].to_numpy(),
                                        group[["x1", "y1", "x2", "y2"]].to_numpy(float), strict=True):
            best, best_iou = None, min_iou
            for mask in per_frame.get(int(frame), []):
                ys, xs = np.nonzero(mask)
                if not len(xs):
                    continue
                mbox = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)
                inter = max(0.0, min(box[2], mbox[2]) - max(box[0], mbox[0])) * \
                    max(0.0, min(box[3], mbox[3]) - max(box[1], mbox[1]))
                union = (box[2] - box[0]) * (box[3] - box[1]) + (mbox[2] - mbox[0]) * (mbox[3] - mbox[1]) - inter
                if inter / max(union, 1e-9) >= best_iou:
                    best, best_iou = mask, inter / max(union, 1e-9)
            if best is not None:
                x0, y0, x1, y1 = box_window(box, sequence.image_size)
                crop = np.array(best[y0:y1, x0:x1], copy=True)
                crop.flags.writeable = False
                out[(str(seq), int(frame), int(track_id))] = RowMask(x0, y0, crop)
    return out


def label_masks(dataset_name: str, split_layers: Mapping[str, Mapping[str, np.ndarray]], labels: pd.DataFrame,
                sequences: Mapping[str, Sequence]) -> tuple[dict[MaskKey, RowMask], str]:
    """The masks of ``labels``'s rows that this dataset has, and where they came from ("" when none).

    Synthetic worlds: their rendered instance buffer. Real KITTI: KITTI-MOTS files where the user set
    ``BENCH_KITTI_MOTS_ROOT`` (the folder of ``<seq>.txt`` instance files). Anything else: none.
    """
    instance = {name: layers["instance"] for name, layers in split_layers.items() if "instance" in layers}
    if instance:
        return masks_from_instance(labels, sequences, instance), "rendered instance buffer"
    root = os.environ.get("BENCH_KITTI_MOTS_ROOT")
    if dataset_name == "kitti" and root:
        return read_kitti_mots(root, labels, sequences), f"KITTI-MOTS files ({root})"
    return {}, ""
