"""FNComp: weight maps are 1 on pseudolabel boxes, max(floor, 1 - p) elsewhere, at image / out_stride."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bench.data.sequence import Sequence
from methods.sparse3dtrack import fncomp


def _sequence(name: str = "s", frames: int = 3, size: tuple[int, int] = (64, 32)) -> Sequence:
    w, h = size
    rng = np.random.default_rng(0)
    return Sequence(name, rng.integers(0, 255, (frames, h, w, 3), dtype=np.uint8), np.eye(3),
                    np.repeat(np.eye(4)[None], frames, 0), np.arange(frames) / 10.0, size)


def _pseudo(rows):
    return pd.DataFrame(rows, columns=["seq", "frame", "track_id", "cls", "x1", "y1", "x2", "y2", "conf"])


def test_weight_maps_shape_range_and_boxes_kept():
    seqs = {"s": _sequence()}
    pseudo = _pseudo([("s", 0, 1, "Car", 8.0, 8.0, 24.0, 20.0, 0.4), ("s", 0, -1, "DontCare", 40, 0, 60, 10, 1.0)])
    prob = np.zeros((4, 8), np.float32)
    prob[:, 5:] = 0.95  # a confident unlabelled object on the right
    prob[1, 1:3] = 0.9  # under the pseudolabel box
    maps = fncomp.weight_maps({("s", 0): prob, ("s", 1): np.zeros((4, 8))}, pseudo, seqs, {"floor": 0.1})
    assert set(maps) == {("s", 0), ("s", 1)}
    m = maps[("s", 0)]
    assert m.shape == (8, 16) and m.dtype == np.float32  # 32x64 image / out_stride 4
    assert m.min() >= 0.1 - 1e-6 and m.max() <= 1.0
    assert np.all(m[2:5, 2:6] == 1.0)  # cells inside the pseudolabel box (x 8..24, y 8..20 px)
    assert m[:, 13:].max() == pytest.approx(0.1)  # 1 - 0.95 clipped to the floor: unlabelled object down-weighted
    assert np.all(maps[("s", 1)] == 1.0)  # nothing likely there: negatives keep full weight


def test_box_masks_marks_tiny_boxes_and_max_conf():
    conf, covered = fncomp.box_masks(np.array([[10, 10, 30, 20], [12, 12, 14, 13], [1, 1, 1.5, 1.5]]),
                                     np.array([0.3, 0.8, 0.5]), (64, 32), 8)
    assert conf.shape == (4, 8)
    assert covered[0, 0] and conf[0, 0] == pytest.approx(0.5)  # sub-cell box still marks its cell
    assert conf[1, 1] == pytest.approx(0.8)  # the more confident of two overlapping boxes
    assert not covered[3].any()


def test_head_learns_objects_and_keeps_confident_unlabelled_regions():
    """Features where a pattern marks objects: the head learns it, and an unlabelled one keeps a low weight."""
    torch.manual_seed(0)
    seq = _sequence(frames=6)
    feats = torch.randn(6, 4, 4, 8) * 0.1
    feats[:, 0, 1:3, 1:3] += 3.0  # labelled object (cells x 1-2, y 1-2 -> px 8..24, 8..24)
    feats[:, 0, 1:3, 5:7] += 3.0  # the same kind of object, never labelled
    pseudo = _pseudo([("s", f, 1, "Car", 8.0, 8.0, 24.0, 24.0, 1.0) for f in range(6)])
    maps = fncomp.fn_heatmaps({"s": feats}, {"s": seq}, pseudo, {"steps": 150, "lr": 1e-2})
    m = maps[("s", 0)]
    assert m.shape == (8, 16)
    assert np.all(m[2:6, 2:6] == 1.0)
    assert m[2:6, 10:14].mean() < 0.5  # the unlabelled object: negatives there count less
    assert m[:, 0].mean() > 0.8  # plain background stays trusted


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown fncomp settings"):
        fncomp.resolve({"flor": 0.1})
    with pytest.raises(ValueError, match="floor"):
        fncomp.resolve({"floor": 2})
