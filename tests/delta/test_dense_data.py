"""synth-dense as dense 3D tracking needs it: every first-frame pixel tracked, the given (noisy) video depth as an
input that survives the TAPVid-3D export and reaches methods through the firewall, ground truth only for a method
that declares it sees it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import firewall
from bench.data.formats import tapvid3d
from bench.data.synth import generate
from bench.data.synth.labels import SKY_DEPTH, video_depth


@pytest.fixture(scope="module")
def dense():
    return generate("synth-dense", "smoke", seed=0)


def test_every_first_frame_surface_pixel_is_a_query(dense):
    name = next(iter(dense.val.points))
    points, depth = dense.val.points[name], dense.val.layers[name]["depth"]
    q = points.queries
    assert (q[:, 2] == 0).all()
    expected = np.isfinite(depth[0])  # sky has no 3D point
    got = np.zeros_like(expected)
    got[(q[:, 1] - 0.5).astype(int), (q[:, 0] - 0.5).astype(int)] = True
    np.testing.assert_array_equal(got, expected)
    # At frame 0 each point lies on its pixel's ray at the rendered depth.
    v, u = (q[:, 1] - 0.5).astype(int), (q[:, 0] - 0.5).astype(int)
    np.testing.assert_allclose(points.xyz[0, :, 2], depth[0, v, u], rtol=1e-4)


def test_video_depth_noise_model():
    rng = np.random.default_rng(0)
    depth = np.full((30, 8, 8), 10.0, dtype=np.float32)
    depth[:, 0, 0] = np.inf
    given = video_depth(depth, rng).astype(np.float64)
    assert given[:, 0, 0].max() <= SKY_DEPTH and (given > 0).all()
    log_ratio = np.log(given[:, 1:, 1:] / 10.0)
    np.testing.assert_allclose(log_ratio[0].mean(), 0.0, atol=0.02)  # frame 0 keeps the true scale
    per_frame = log_ratio.reshape(30, -1).mean(axis=1)
    assert 0.005 < np.abs(np.diff(per_frame)).mean() < 0.05  # scale drifts from frame to frame
    assert 0.01 < log_ratio.reshape(30, -1).std(axis=1).mean() < 0.04  # per-pixel noise ~2 %
    np.testing.assert_array_equal(video_depth(depth, np.random.default_rng(0)), given.astype(np.float16))


def test_given_depth_round_trips_and_reaches_methods_but_points_only_when_declared(dense, tmp_path):
    tapvid3d.write_dataset(dense, tmp_path)
    back = tapvid3d.read_dataset(tmp_path)
    for name, depth in dense.val.depth.items():
        np.testing.assert_array_equal(back.val.depth[name], depth.astype(np.float32))
    view = firewall.split_view(back.val, back.frame_rate)
    assert set(view.depth) == set(back.val.sequences) and not next(iter(view.depth.values())).flags.writeable
    labels = pd.DataFrame(columns=back.train.tracks.columns)
    hidden = firewall.train_view(back.train, labels, back.frame_rate, None)
    assert hidden.points == {} and set(hidden.depth) == set(back.train.sequences)
    seen = firewall.train_view(back.train, labels, back.frame_rate, None, points=True)
    name = next(iter(seen.points))
    np.testing.assert_array_equal(seen.points[name].xyz, back.train.points[name].xyz)
    assert seen.points[name].xyz is not back.train.points[name].xyz  # a private copy
