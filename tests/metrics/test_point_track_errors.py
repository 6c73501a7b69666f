"""benchmarks/point_track_errors.py: exact predictions score zero, the still guess scores the motion, depth is
relative."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def errors(load_script):
    return load_script("point_track_errors").video_errors


def test_exact_and_still_predictions(errors) -> None:
    k = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    t, n = 6, 5
    start = np.column_stack([np.linspace(-1, 1, n), np.zeros(n), np.full(n, 10.0)])
    truth = np.stack([start + [0.1 * i, 0, 0] for i in range(t)])  # 1 px per frame to the right at 10 m
    visible = np.ones((t, n), dtype=bool)
    exact = errors(truth, truth, visible, k, [1, 4, 9])
    assert list(exact) == [1, 4]  # offset 9 is past the end
    assert exact[4]["px"] == 0 and exact[4]["depth_rel"] == 0 and exact[4]["still_px"] == pytest.approx(4.0)
    still = errors(np.broadcast_to(truth[:1], truth.shape) * 2.0, truth, visible, k, [4])  # twice as far, same ray
    assert still[4]["px"] == pytest.approx(4.0) and still[4]["depth_rel"] == pytest.approx(1.0)
    visible[4, :3] = False
    assert errors(truth, truth, visible, k, [4])[4]["points"] == 2
