"""FCOS3D: direction-bin targets, centre sampling and decoding through the camera, rotated NMS, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.centertrack.targets import Objects
from baselines.fcos3d.decode import bev_iou, boxes_at, rotated_nms
from baselines.fcos3d.losses import fcos3d_loss, sin_difference
from baselines.fcos3d.model import STRIDES
from baselines.fcos3d.targets import decode_direction, direction_target, level_ranges, points, render_targets
from baselines.fcos3d.train import train
from bench.data.datasets import load_dataset
from bench.data.geometry import box_center, observation_angle, project_points, wrap_angle

SIZE = (160, 96)
K = np.array([[120.0, 0, 83.0], [0, 118.0, 45.0], [0, 0, 1]])


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_direction_targets_are_exact_half_turns_from_the_offset():
    # dir_offset pi/4: class 0 for yaw in [pi/4, 5pi/4), class 1 for [5pi/4, 9pi/4) (mod 2pi).
    yaw = np.array([np.pi / 4, np.pi / 4 - 1e-6, np.pi, 5 * np.pi / 4 - 1e-6, 5 * np.pi / 4, -np.pi / 2, 0.0, -3.0])
    np.testing.assert_array_equal(direction_target(yaw), [0, 1, 0, 0, 1, 1, 1, 0])
    # The sine loss cannot tell yaw from yaw + pi; the class picks the half turn back, for either regressed value.
    grid = np.linspace(-np.pi, np.pi, 361, endpoint=False)
    for shift in (0.0, np.pi, -np.pi, 2 * np.pi):
        np.testing.assert_allclose(wrap_angle(decode_direction(grid + shift, direction_target(grid)) - grid), 0,
                                   atol=1e-9)


def test_sin_difference_is_the_sine_of_the_error():
    p, t = torch.tensor([0.3, 2.0, -1.0]), torch.tensor([0.3 + np.pi, 1.5, -1.0])
    a, b = sin_difference(p, t)
    torch.testing.assert_close(a - b, torch.sin(p - t))


def scene() -> Objects:
    boxes3d = np.array([[-3.1, 1.6, 14.0, 1.5, 1.7, 4.1, 0.4], [2.4, 1.5, 22.5, 1.6, 1.8, 4.3, -2.8]])
    uv = project_points(box_center(boxes3d), K)
    half = np.array([[18, 12], [9, 7]], dtype=float)
    # 2D boxes a little off the projected centre: FCOS3D samples around the projected 3D centre, not the 2D centre.
    boxes = np.concatenate([uv - half + 2, uv + half + 2], axis=1)
    return Objects(boxes, boxes3d, np.zeros(2, np.int64), np.arange(2), np.array([1.0, 0.5]))


def test_targets_decode_back_through_the_camera():
    objects = scene()
    ranges = level_ranges(STRIDES, (8.0, 16.0))
    t = render_targets(objects, K, SIZE, STRIDES, ranges, radius=1.5)
    pos = np.flatnonzero(t["cls"] >= 0)
    assert len(pos) > 0
    xy, stride = points(SIZE, STRIDES)
    # Every positive is near its object's projected centre, on the level its size belongs to.
    uv = project_points(box_center(objects.boxes3d), K)
    flat = {
        "offset": torch.from_numpy(t["offset"])[None], "depth": torch.from_numpy(t["depth"])[None, :, None],
        "size": torch.from_numpy(t["size"])[None],
        # A regressed yaw off by a half turn: the direction class must bring it back.
        "yaw": torch.from_numpy(t["yaw"] + np.float32(np.pi))[None, :, None],
        "dir": torch.nn.functional.one_hot(torch.from_numpy(t["dir"]), 2).float()[None],
    }
    boxes = boxes_at(flat, 0, pos, xy, stride, K)
    which = np.array([np.argmin(np.hypot(*(uv - xy[p]).T)) for p in pos])
    assert set(which) == {0, 1}
    assert (np.abs(uv[which] - xy[pos]) < 1.5 * stride[pos, None]).all()
    np.testing.assert_allclose(boxes[:, :6], objects.boxes3d[which, :6], atol=1e-3)
    np.testing.assert_allclose(wrap_angle(boxes[:, 6] - objects.boxes3d[which, 6]), 0, atol=1e-4)
    np.testing.assert_allclose(t["weight"][pos], objects.conf[which])
    assert (t["centerness"][pos] > 0).all() and (t["centerness"][pos] <= 1).all()
    np.testing.assert_allclose(t["yaw"][pos], observation_angle(objects.boxes3d)[which], atol=1e-6)


def brute_force_bev_iou(a: np.ndarray, b: np.ndarray, n: int = 400) -> float:
    """Area overlap of two BEV footprints by counting grid points (a reference that shares no code)."""
    def inside(box: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        c, s = np.cos(box[6]), np.sin(box[6])
        dx, dz = x - box[0], z - box[2]
        along = dx * c - dz * s  # KITTI yaw: the length axis points along (cos yaw, -sin yaw) in x-z
        across = dx * s + dz * c
        return (np.abs(along) <= box[5] / 2) & (np.abs(across) <= box[4] / 2)

    r = max(a[4], a[5], b[4], b[5])
    xs = np.linspace(min(a[0], b[0]) - r, max(a[0], b[0]) + r, n)
    zs = np.linspace(min(a[2], b[2]) - r, max(a[2], b[2]) + r, n)
    x, z = np.meshgrid(xs, zs)
    ia, ib = inside(a, x, z), inside(b, x, z)
    return float((ia & ib).sum() / max((ia | ib).sum(), 1))


def test_rotated_nms_matches_a_brute_force_reference():
    rng = np.random.default_rng(0)
    n = 14
    boxes = np.column_stack([rng.uniform(-3, 3, n), np.full(n, 1.5), rng.uniform(15, 21, n), np.full(n, 1.5),
                             rng.uniform(1.5, 2.0, n), rng.uniform(3.5, 4.5, n), rng.uniform(-np.pi, np.pi, n)])
    scores = rng.uniform(0, 1, n)
    iou = bev_iou(boxes, boxes)
    ref = np.array([[brute_force_bev_iou(a, b) for b in boxes] for a in boxes])
    np.testing.assert_allclose(iou, ref, atol=0.02)
    for threshold in (0.1, 0.3, 0.5):
        keep = rotated_nms(boxes, scores, threshold)
        # Reference greedy NMS on the brute-force IoU.
        expected, alive = [], list(np.argsort(-scores))
        while alive:
            i = alive.pop(0)
            expected.append(i)
            alive = [j for j in alive if ref[i, j] <= threshold]
        assert list(keep) == expected


def test_training_on_sparse_labels_lowers_the_loss():
    data = load_dataset("synth-kitti", scale="smoke", seed=0)
    labels = data.train.tracks
    labels = labels[labels["frame"] % 3 == 0]
    cfg = {"input_size": (128, 64), "width": 8, "fpn_channels": 16, "depth": (1, 1, 1, 1), "stem_kernel": 3,
           "head_convs": 2, "batch_size": 4, "lr": 2e-3, "steps": 40, "lr_step": 0.9, "flip": 0.5,
           "regress_ranges": (8, 16), "center_radius": 1.5}
    _, log = train(data.train.sequences, labels, ("Car",), cfg, seed=0)
    first = np.mean([h["total"] for h in log[:5]])
    last = np.mean([h["total"] for h in log[-5:]])
    assert last < 0.7 * first


def test_conf_scales_each_positive_points_terms():
    from baselines.fcos3d.model import FCOS3DConfig, FCOS3DNet, flatten

    t = render_targets(scene(), K, SIZE, STRIDES, level_ranges(STRIDES, (8.0, 16.0)))
    batch = {k: torch.from_numpy(v)[None] for k, v in t.items()}
    torch.manual_seed(0)
    out = flatten(FCOS3DNet(FCOS3DConfig(width=8, fpn_channels=8))(torch.zeros(1, 3, SIZE[1], SIZE[0])))
    full = fcos3d_loss(out, batch)[1]
    batch["weight"] = torch.zeros_like(batch["weight"])
    none = fcos3d_loss(out, batch)[1]
    for part in ("reg", "dir", "centerness"):
        assert full[part] > 0 and none[part] == 0
