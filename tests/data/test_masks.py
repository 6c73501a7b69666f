"""Instance masks of labelled rows: cut from the synthetic world's instance buffer, handed out by the firewall only
for the budget's rows, and KITTI-MOTS RLE strings decoded as pycocotools writes them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import firewall
from bench.data.datasets import load_dataset
from bench.data.masks import box_window, decode_coco_rle, label_masks
from bench.labels import sample_budget

KEYS = ["seq", "frame", "track_id"]


@pytest.fixture(scope="module")
def smoke():
    return load_dataset("synth-kitti", scale="smoke", seed=0)


def test_label_masks_are_the_instance_pixels_of_each_labelled_box(smoke):
    labels = sample_budget(smoke.train.tracks, 2, seed=0)
    masks, source = label_masks(smoke.name, smoke.train.layers, labels, smoke.train.sequences)
    assert source == "rendered instance buffer"
    real = labels[(labels["cls"] != "DontCare") & (labels["track_id"] >= 0)]
    assert set(masks) == set(zip(real["seq"], real["frame"], real["track_id"], strict=True))
    filled = []
    for row in real.itertuples():
        mask = masks[(row.seq, row.frame, row.track_id)]
        seq = smoke.train.sequences[row.seq]
        x0, y0, x1, y1 = box_window(np.array([row.x1, row.y1, row.x2, row.y2]), seq.image_size)
        assert (mask.x0, mask.y0, mask.mask.shape) == (x0, y0, (y1 - y0, x1 - x0))
        instance = smoke.train.layers[row.seq]["instance"][seq.index_of(row.frame)]
        # Every mask pixel is this object's, and none of its pixels inside the box is missing.
        assert np.array_equal(mask.full(seq.image_size)[y0:y1, x0:x1], instance[y0:y1, x0:x1] == row.track_id)
        filled.append(mask.mask.mean())
    # Labels come from frames where the object is not heavily occluded: their masks fill much of the box.
    assert np.median(filled) > 0.4


def test_firewall_hands_out_masks_of_the_budget_rows_only(smoke):
    labels = sample_budget(smoke.train.tracks, 2, seed=0)
    everything, source = label_masks(smoke.name, smoke.train.layers, smoke.train.tracks, smoke.train.sequences)
    # Even when offered every frame's masks, the view keeps those of its label rows alone.
    view = firewall.train_view(smoke.train, labels, smoke.frame_rate, budget=2, masks=everything, mask_source=source)
    budget_keys = set(zip(view.labels["seq"], view.labels["frame"], view.labels["track_id"], strict=True))
    assert view.masks and set(view.masks) <= budget_keys
    hidden = set(everything) - budget_keys
    assert hidden and not hidden & set(view.masks)
    assert view.mask_source == source
    for key, mask in view.masks.items():
        assert not mask.mask.flags.writeable and mask.mask is not everything[key].mask
        assert np.array_equal(mask.mask, everything[key].mask)
    # A method without identities gets no masks (their keys would name the tracks).
    blind = firewall.train_view(smoke.train, labels, smoke.frame_rate, budget=2, identities=False, masks=everything)
    assert blind.masks == {} and blind.mask_source == ""


def _encode(mask: np.ndarray) -> str:
    """pycocotools' rleToString, written out here to test the decoder on known masks."""
    flat = mask.T.reshape(-1)
    runs, value, count = [], False, 0
    for pixel in flat:
        if pixel != value:
            runs.append(count)
            value, count = pixel, 0
        count += 1
    runs.append(count)
    out = []
    for i, x in enumerate(runs):
        x = int(x) - (runs[i - 2] if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = not ((c & 0x10 == 0 and x == 0) or (c & 0x10 and x == -1))
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def test_coco_rle_round_trip():
    rng = np.random.default_rng(0)
    for shape in [(5, 7), (30, 41), (1, 1)]:
        mask = rng.random(shape) < 0.3
        mask[: shape[0] // 2, : shape[1] // 2] = True  # long runs exercise the multi-chunk and delta codes
        assert np.array_equal(decode_coco_rle(_encode(mask), *shape), mask)


def test_kitti_mots_files_give_each_label_row_its_best_overlapping_mask(tmp_path, monkeypatch, smoke):
    """A KITTI-MOTS instances_txt file is read for real KITTI only; each label row takes the mask whose box fits it."""
    seq_name = sorted(smoke.train.sequences)[0]
    seq = smoke.train.sequences[seq_name]
    w, h = seq.image_size
    car = np.zeros((h, w), bool)
    car[20:40, 30:80] = True
    car[30:40, 30:40] = False  # not a rectangle
    other = np.zeros((h, w), bool)
    other[60:90, 200:260] = True
    frame = int(seq.frame_ids[3])
    lines = [f"{frame} 1002 1 {h} {w} {_encode(car)}", f"{frame} 1005 1 {h} {w} {_encode(other)}",
             f"{frame} 10000 10 {h} {w} {_encode(car)}"]  # an ignore region never counts
    (tmp_path / f"{seq_name}.txt").write_text("\n".join(lines) + "\n")
    labels = pd.DataFrame([{"seq": seq_name, "frame": frame, "track_id": 7, "cls": "Car", "x1": 29.5, "y1": 19.6,
                            "x2": 80.2, "y2": 40.0},
                           {"seq": seq_name, "frame": frame, "track_id": 8, "cls": "Car", "x1": 300.0, "y1": 10.0,
                            "x2": 320.0, "y2": 30.0}])
    monkeypatch.setenv("BENCH_KITTI_MOTS_ROOT", str(tmp_path))
    assert label_masks("synth-kitti", {}, labels, smoke.train.sequences) == ({}, "")  # only real KITTI reads them
    masks, source = label_masks("kitti", {}, labels, smoke.train.sequences)
    assert "KITTI-MOTS" in source and set(masks) == {(seq_name, frame, 7)}  # track 8 overlaps no mask
    assert np.array_equal(masks[(seq_name, frame, 7)].full(seq.image_size), car)
