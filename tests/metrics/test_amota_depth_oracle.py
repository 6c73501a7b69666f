"""benchmarks/amota_depth_oracle.py: which predictions take the ground truth's 3D, and how each mode sets it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def oracle(load_script):
    return load_script("amota_depth_oracle")


def _rows(boxes: list[tuple]) -> pd.DataFrame:
    cols = ["seq", "frame", "cls", "x1", "y1", "x2", "y2", "x", "y", "z", "h", "w", "l", "yaw"]
    return pd.DataFrame(boxes, columns=cols)


GT = _rows([
    ("a", 0, "Car", 10, 10, 30, 30, 2.0, 1.0, 20.0, 1.5, 1.6, 4.0, 0.3),
    ("a", 0, "Car", 100, 10, 120, 30, -3.0, 1.0, 30.0, 1.5, 1.6, 4.0, 1.0),
    ("a", 0, "DontCare", 200, 10, 220, 30, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan),
])
PRED = _rows([
    ("a", 0, "Car", 11, 10, 31, 30, 2.5, 1.25, 25.0, 1.4, 1.7, 3.5, 0.1),  # IoU 0.9 with the first car
    ("a", 0, "Pedestrian", 100, 10, 120, 30, -1.0, 1.0, 10.0, 1.8, 0.6, 0.6, 0.0),  # right box, wrong class
    ("a", 0, "Car", 200, 10, 220, 30, 5.0, 1.0, 40.0, 1.5, 1.6, 4.0, 0.0),  # on the DontCare: never matched
    ("a", 1, "Car", 10, 10, 30, 30, 2.0, 1.0, 22.0, 1.5, 1.6, 4.0, 0.0),  # no ground truth on frame 1
])


def test_matches_one_to_one_by_class_and_iou():
    from bench.metrics.depth_error import match_2d

    gt_rows, pred_rows = match_2d(GT, PRED)
    assert gt_rows.tolist() == [0] and pred_rows.tolist() == [0]
    # The same frame number in another sequence is another frame.
    other = PRED.assign(seq="b")
    assert len(match_2d(GT, other)[0]) == 0


def test_modes_take_what_they_say_from_the_truth(oracle):
    as_run = oracle.with_truth(GT, PRED, "as run")
    pd.testing.assert_frame_equal(as_run, PRED)
    depth = oracle.with_truth(GT, PRED, "true depth")
    # slid along the ray to z = 20: x, y scale by 20 / 25, size and yaw stay the tracker's
    np.testing.assert_allclose(depth.loc[0, ["x", "y", "z"]].to_numpy(float), [2.0, 1.0, 20.0])
    np.testing.assert_allclose(depth.loc[0, ["h", "w", "l", "yaw"]].to_numpy(float), [1.4, 1.7, 3.5, 0.1])
    centre = oracle.with_truth(GT, PRED, "true centre")
    np.testing.assert_allclose(centre.loc[0, ["x", "y", "z", "yaw"]].to_numpy(float), [2.0, 1.0, 20.0, 0.1])
    box = oracle.with_truth(GT, PRED, "true box")
    np.testing.assert_allclose(box.loc[0, ["x", "y", "z", "h", "w", "l", "yaw"]].to_numpy(float),
                               [2.0, 1.0, 20.0, 1.5, 1.6, 4.0, 0.3])
    for mode in ("true depth", "true centre", "true box"):  # unmatched rows keep their own 3D
        out = oracle.with_truth(GT, PRED, mode)
        pd.testing.assert_frame_equal(out.iloc[1:], PRED.iloc[1:])
