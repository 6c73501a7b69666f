"""CenterNet "ddd": targets <-> decoding through the camera, BinRot bins, its losses, and training that learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.centernet.decode import decode, decode_alpha, heads_at
from baselines.centernet.losses import bin_rot_loss, centernet_loss
from baselines.centernet.model import CenterNetConfig, CenterNetDDD
from baselines.centernet.targets import encode_rot, render_targets
from baselines.centernet.train import train
from baselines.centertrack.targets import DOWN, Objects
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


def scene() -> Objects:
    """Three cars whose 2D boxes are centred on their projected 3D centres (what CenterNet's decode assumes)."""
    boxes3d = np.array([[-3.1, 1.6, 14.0, 1.5, 1.7, 4.1, 0.4],
                        [2.4, 1.5, 22.5, 1.6, 1.8, 4.3, -2.8],
                        [0.6, 1.7, 9.0, 1.4, 1.6, 3.9, 1.7]])
    uv = project_points(box_center(boxes3d), K)
    half = np.array([[14, 10], [9, 7], [20, 13]], dtype=float)
    boxes = np.concatenate([uv - half, uv + half], axis=1)
    return Objects(boxes, boxes3d, np.zeros(3, np.int64), np.arange(3), np.array([1.0, 0.6, 0.9]))


def outputs_from_targets(t: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Dense raw maps that hold, at each object's cell, exactly what the targets ask of the network."""
    c, ho, wo = t["hm"].shape
    maps = {name: np.zeros((ch, ho * wo), np.float32) for name, ch in
            {"hm": c, "dep": 1, "rot": 8, "dim": 3, "wh": 2, "reg": 2}.items()}
    for k in np.flatnonzero(t["mask"]):
        i = t["ind"][k]
        maps["dep"][0, i] = -np.log(t["dep"][k, 0])  # 1/sigmoid(-log z) - 1 = z
        maps["dim"][:, i] = t["dim"][k]
        maps["wh"][:, i] = t["wh"][k]
        maps["reg"][:, i] = t["reg"][k]
        rot = np.zeros(8, np.float32)
        for b in range(2):
            rot[4 * b + 1] = 5.0 if t["rot_bin"][k, b] else -5.0  # in-bin logit
            rot[4 * b + 2:4 * b + 4] = np.sin(t["rot_res"][k, b]), np.cos(t["rot_res"][k, b])
        maps["rot"][:, i] = rot
    return {n: torch.from_numpy(m.reshape(1, -1, ho, wo)) for n, m in maps.items()}


def test_encode_decode_round_trip_through_the_camera():
    objects = scene()
    t = render_targets(objects, SIZE, num_classes=1)
    assert t["mask"].sum() == 3
    dets = decode(outputs_from_targets(t), K, k=10, threshold=0.5, heatmap=torch.from_numpy(t["hm"][None]))[0]
    assert len(dets) == 3
    order = np.argsort(dets.boxes3d[:, 2])
    truth = objects.boxes3d[np.argsort(objects.boxes3d[:, 2])]
    np.testing.assert_allclose(dets.boxes3d[order, :6], truth[:, :6], atol=1e-3)
    np.testing.assert_allclose(wrap_angle(dets.boxes3d[order, 6] - truth[:, 6]), 0, atol=1e-4)
    np.testing.assert_allclose(dets.boxes[order], objects.boxes[np.argsort(objects.boxes3d[:, 2])], atol=1e-3)
    # rot_y = alpha + atan2(u - cx, fx), with u the decoded centre column.
    u = (dets.boxes[:, 0] + dets.boxes[:, 2]) / 2
    alpha = observation_angle(dets.boxes3d)
    np.testing.assert_allclose(wrap_angle(alpha + np.arctan2(u - K[0, 2], K[0, 0]) - dets.boxes3d[:, 6]), 0, atol=1e-6)


def test_heads_at_a_given_box_reads_the_maps_there():
    objects = scene()
    t = render_targets(objects, SIZE, num_classes=1)
    got = heads_at(outputs_from_targets(t), 0, objects.boxes, K)
    np.testing.assert_allclose(got[:, :6], objects.boxes3d[:, :6], atol=1e-3)


def test_bin_rot_targets_are_centernets_bins():
    alpha = np.array([0.0, np.pi / 2, -np.pi / 2, np.pi - 0.1, -np.pi + 0.1, np.pi / 6 + 0.01, -np.pi / 6 - 0.01])
    bins, res = encode_rot(alpha)
    # bin 0 (centre -pi/2): alpha < pi/6 or > 5pi/6; bin 1 (centre +pi/2): alpha > -pi/6 or < -5pi/6.
    np.testing.assert_array_equal(bins, [[1, 1], [0, 1], [1, 0], [1, 1], [1, 1], [0, 1], [1, 0]])
    np.testing.assert_allclose(res[3], [np.pi - 0.1 + np.pi / 2, np.pi - 0.1 - np.pi / 2], atol=1e-6)
    assert res[1, 0] == 0 and res[2, 1] == 0  # out-of-bin residuals are not targets
    # Every angle falls in at least one bin, and decoding the in-bin residual gives alpha back.
    grid = np.linspace(-np.pi, np.pi, 721, endpoint=False)
    b, r = encode_rot(grid)
    assert (b.sum(1) >= 1).all()
    rot = np.zeros((len(grid), 8))
    rot[:, 1], rot[:, 5] = np.where(b[:, 0] > 0, 2.0, -2.0), np.where(b[:, 0] > 0, -2.0, 2.0)
    rot[:, 2], rot[:, 3], rot[:, 6], rot[:, 7] = np.sin(r[:, 0]), np.cos(r[:, 0]), np.sin(r[:, 1]), np.cos(r[:, 1])
    np.testing.assert_allclose(wrap_angle(decode_alpha(rot) - grid), 0, atol=1e-5)


def test_bin_rot_loss_is_zero_only_for_the_right_bins_and_residuals():
    # alpha 2.0 lies in bin 1 only (not < pi/6, not > 5pi/6); alpha 0.3 in both.
    bins, res = (torch.from_numpy(a)[None] for a in encode_rot(np.array([0.3, 2.0])))
    assert bins[0, 1].tolist() == [0, 1]
    w, num = torch.ones(1, 2), torch.tensor(2.0)
    right = torch.zeros(1, 2, 8)
    for b in range(2):
        right[..., 4 * b] = torch.where(bins[..., b] > 0, -20.0, 20.0)
        right[..., 4 * b + 1] = -right[..., 4 * b]
        right[..., 4 * b + 2], right[..., 4 * b + 3] = torch.sin(res[..., b]), torch.cos(res[..., b])
    assert bin_rot_loss(right, bins, res, w, num) < 1e-6
    wrong_bin = right.clone()
    wrong_bin[..., [0, 1]] = wrong_bin[..., [1, 0]]
    assert bin_rot_loss(wrong_bin, bins, res, w, num) > 10
    # The residual of a bin the object is not in is no target: any value costs nothing ...
    other = right.clone()
    other[0, 1, 2:4] = 7.0
    assert bin_rot_loss(other, bins, res, w, num) < 1e-6
    # ... while an in-bin residual is trained.
    other[0, 1, 6:8] = 7.0
    assert bin_rot_loss(other, bins, res, w, num) > 1


def test_conf_scales_each_objects_terms():
    objects = scene()
    t = {k: torch.from_numpy(v)[None] for k, v in render_targets(objects, SIZE, num_classes=1).items()}
    torch.manual_seed(0)
    out = CenterNetDDD(CenterNetConfig(width=8, head_conv=8))(torch.zeros(1, 3, SIZE[1], SIZE[0]))
    full = centernet_loss(out, t)[1]
    t["weight"] = torch.zeros_like(t["weight"])
    none = centernet_loss(out, t)[1]
    for part in ("dep", "rot", "dim", "wh", "reg"):
        assert full[part] > 0 and none[part] == 0


def test_training_on_sparse_labels_lowers_the_loss():
    data = load_dataset("synth-kitti", scale="smoke", seed=0)
    labels = data.train.tracks
    labels = labels[labels["frame"] % 3 == 0]
    cfg = {"input_size": (128, 64), "width": 8, "head_conv": 16, "depth": (1, 1, 1, 1), "stem_kernel": 3,
           "batch_size": 4, "lr": 2e-3, "steps": 40, "lr_step": 0.9, "flip": 0.5, "max_objs": 32}
    _, log = train(data.train.sequences, labels, ("Car",), cfg, seed=0)
    first = np.mean([h["total"] for h in log[:5]])
    last = np.mean([h["total"] for h in log[-5:]])
    assert last < 0.7 * first
    assert DOWN == 4
