"""3D geometry network: shapes, training lowers the loss, every yaw mode trains, lift_boxes fills only 3D columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bench.data.tracks import BOX3D_COLUMNS, DONTCARE
from bench.labels import sample_budget
from methods.sparse3dtrack.config import module_profile
from methods.sparse3dtrack.depth import train_depth
from methods.sparse3dtrack.geometry import (
    GeometryNet,
    _class_index,
    _frame_bank,
    _labelled_rows,
    class_means_from_labels,
    crop,
    decode,
    geometry_loss,
    lift_boxes,
    make_targets,
    prepare_inputs,
    train_geometry,
)
from methods.sparse3dtrack.yaw import YAW_MODES

SMOKE = module_profile("geometry", "smoke")


@pytest.fixture(scope="module")
def labels(smoke):
    return sample_budget(smoke.train.tracks, 4, seed=0)


@pytest.fixture(scope="module")
def depth(smoke):
    return train_depth(smoke.train.sequences, module_profile("depth", "smoke"), seed=0)[0]


def test_crop_samples_inside_the_box():
    # A horizontal ramp image: the crop's columns must read the box's x range.
    w, h = 100, 40
    ramp = torch.arange(w, dtype=torch.float32).add(0.5).expand(1, 1, h, w).clone()
    out = crop(ramp, torch.tensor([[20.0, 10.0, 60.0, 30.0]]), (w, h), 8)
    np.testing.assert_allclose(out[0, 0, 0].numpy(), 20 + (np.arange(8) + 0.5) * 5, atol=1e-4)
    # Features at stride 4 of the same image sample the same places.
    coarse = torch.nn.functional.avg_pool2d(ramp, 4)
    assert torch.allclose(crop(coarse, torch.tensor([[20.0, 10.0, 60.0, 30.0]]), (w, h), 8)[0, 0, 0],
                          out[0, 0, 0], atol=2.0)


def _fixed_loss(model, depth, smoke, labels) -> float:
    """The loss on every labelled row with its true 2D box (no jitter): a fixed yardstick."""
    rows = _labelled_rows(labels, smoke.train.sequences)
    keys = [(s, smoke.train.sequences[s].index_of(int(f))) for s, f in zip(rows["seq"], rows["frame"], strict=True)]
    images, dmaps, dfeats = _frame_bank(smoke.train.sequences, keys, depth if model.use_depth else None, "cpu")
    b2d = rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    K = np.stack([smoke.train.sequences[s].intrinsics[i] for s, i in keys])
    cls = _class_index(rows["cls"].to_numpy())
    with torch.no_grad():
        inputs, ref = prepare_inputs(model, images, dmaps, dfeats, torch.from_numpy(b2d).float(),
                                     torch.from_numpy(K).float(), torch.from_numpy(cls))
        targets = make_targets(b2d, rows[list(BOX3D_COLUMNS)].to_numpy(np.float64), K, ref.double().numpy(), cls,
                               model.class_means.double().numpy())
        terms = geometry_loss(model, model(inputs), {k: torch.from_numpy(v).float() for k, v in targets.items()})
    return float(sum(terms.values()))


def test_geometry_training_lowers_the_loss(smoke, labels, depth):
    cfg = {**SMOKE, "steps": 60, "jitter": 0.0}
    torch.manual_seed(0)
    rows = _labelled_rows(labels, smoke.train.sequences)
    untrained = GeometryNet(class_means_from_labels(rows), "keypoints", True, depth.feat_channels, 32, 1.15,
                            cfg["dim"], 4, 1, cfg["width"]).eval()
    model, history = train_geometry(smoke.train.sequences, labels, depth, cfg, yaw_mode="keypoints", seed=0)
    assert len(history) == 60
    assert {"total", "centre", "depth", "dims", "keypoints", "facing", "seconds"} <= set(history[0])
    assert not model.training
    assert _fixed_loss(model, depth, smoke, labels) < 0.8 * _fixed_loss(untrained, depth, smoke, labels)


@pytest.mark.parametrize("yaw_mode", YAW_MODES)
@pytest.mark.parametrize("use_depth", [True, False])
def test_every_yaw_mode_trains_and_lifts(smoke, labels, depth, yaw_mode, use_depth):
    net = depth if use_depth else None
    model, history = train_geometry(smoke.train.sequences, labels, net, SMOKE, yaw_mode=yaw_mode, seed=1)
    assert np.isfinite([h["total"] for h in history]).all()
    assert model.yaw_mode == yaw_mode and model.use_depth == use_depth
    boxes = smoke.val.tracks.head(40)
    out = lift_boxes(model, net, smoke.val.sequences, boxes, batch_size=16)
    real = (boxes["cls"] != DONTCARE).to_numpy()
    values = out[list(BOX3D_COLUMNS)].to_numpy(np.float64)
    assert np.isfinite(values[real]).all() and np.isnan(values[~real]).all()
    assert (values[real, 2] > 0).all() and (values[real, 3:6] > 0).all()
    assert (np.abs(values[real, 6]) <= np.pi).all()


def test_lift_boxes_changes_only_the_3d_columns(smoke, labels, depth):
    model, _ = train_geometry(smoke.train.sequences, labels, depth, SMOKE, seed=0)
    gt = smoke.val.tracks
    boxes = gt.sample(frac=1.0, random_state=0)  # shuffled, with a non-trivial index
    boxes = boxes.assign(**{c: np.nan for c in BOX3D_COLUMNS})
    out = lift_boxes(model, depth, smoke.val.sequences, boxes, batch_size=7)
    assert out.index.equals(boxes.index) and list(out.columns) == list(boxes.columns)
    others = [c for c in boxes.columns if c not in BOX3D_COLUMNS]
    pd.testing.assert_frame_equal(out[others], boxes[others])
    # Batching and row order do not change the answer.
    again = lift_boxes(model, depth, smoke.val.sequences, boxes.sort_index(), batch_size=256)
    np.testing.assert_allclose(again.loc[out.index, list(BOX3D_COLUMNS)].to_numpy(np.float64),
                               out[list(BOX3D_COLUMNS)].to_numpy(np.float64), rtol=1e-4, atol=1e-4)


def test_decode_inverts_make_targets(smoke, labels):
    """Heads that output exactly the targets give back the labelled 3D boxes (keypoint yaw exact)."""
    rows = _labelled_rows(labels, smoke.train.sequences)
    means = class_means_from_labels(rows)
    b2d = rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    b3d = rows[list(BOX3D_COLUMNS)].to_numpy(np.float64)
    K = np.stack([smoke.train.sequences[s].intrinsics[smoke.train.sequences[s].index_of(int(f))]
                  for s, f in zip(rows["seq"], rows["frame"], strict=True)])
    cls = _class_index(rows["cls"].to_numpy())
    ref = np.full(len(rows), 12.0)
    t = make_targets(b2d, b3d, K, ref, cls, means)
    for mode in YAW_MODES:
        model = GeometryNet(means, mode, use_depth=False)
        out = {"centre": t["centre"], "depth": t["depth"], "dims": t["dims"]}
        if mode == "keypoints":
            out.update(kp_uv=t["kp_uv"], kp_dz=t["kp_dz"], facing=(t["facing"] * 2 - 1) * 20)
        elif mode == "regression":
            out["alpha"] = t["alpha"]
        else:  # logits saying "in" for the bins the target is in, and the residuals
            inside = t["bins"][:, :2]
            out["bins"] = np.concatenate([np.stack([-inside[:, 0], inside[:, 0]], 1) * 5,
                                          np.stack([-inside[:, 1], inside[:, 1]], 1) * 5, t["bins"][:, 2:]], axis=1)
        got = decode(model, {k: torch.from_numpy(np.asarray(v)) for k, v in out.items()}, b2d, K, ref, cls)
        np.testing.assert_allclose(got[:, :6], b3d[:, :6], atol=1e-6)
        assert np.abs((got[:, 6] - b3d[:, 6] + np.pi) % (2 * np.pi) - np.pi).max() < 1e-6, mode


def _inputs_of(model, depth, smoke, rows):
    keys = [(s, smoke.train.sequences[s].index_of(int(f))) for s, f in zip(rows["seq"], rows["frame"], strict=True)]
    images, dmaps, dfeats = _frame_bank(smoke.train.sequences, keys, depth if model.use_depth else None, "cpu")
    b2d = torch.from_numpy(rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float64, copy=True)).float()
    K = torch.from_numpy(np.stack([smoke.train.sequences[s].intrinsics[i] for s, i in keys])).float()
    cls = torch.from_numpy(_class_index(rows["cls"].to_numpy()))
    with torch.no_grad():
        return prepare_inputs(model, images, dmaps, dfeats, b2d, K, cls), (images, dmaps, dfeats, b2d, K, cls)


def test_depth_prior_is_the_self_supervised_depth_and_d1_sees_no_depth(smoke, labels, depth):
    """The paper's design is the default: the depth head corrects the depth net's median depth in the box; the
    pinhole guess is a named variant; without depth (D1) the network gets no depth token and no depth prior."""
    rows = _labelled_rows(labels, smoke.train.sequences).head(12)
    means = class_means_from_labels(rows)
    d2 = GeometryNet(means, use_depth=True, depth_channels=depth.feat_channels, constant_depth=17.0).eval()
    (inputs, ref), (images, dmaps, dfeats, b2d, K, cls) = _inputs_of(d2, depth, smoke, rows)
    assert d2.depth_prior == "depth" and "depth" in inputs
    # The reference is the depth map's median over the inner half of each box (here: the net's own maps).
    boxes = b2d.numpy()
    for j in range(len(rows)):
        cx, cy = (boxes[j, 0] + boxes[j, 2]) / 2, (boxes[j, 1] + boxes[j, 3]) / 2
        inner = dmaps[j, 0, int(cy):int(cy) + 1, int(cx):int(cx) + 1]
        assert abs(float(ref[j]) - float(inner.mean())) < 0.35 * float(inner.mean())
    # Changing the depth maps changes what D2 sees and what it predicts.
    with torch.no_grad():
        far, ref_far = prepare_inputs(d2, images, dmaps * 2, dfeats, b2d, K, cls)
        assert torch.allclose(ref_far, 2 * ref, rtol=1e-5)
        assert not torch.allclose(d2(far)["depth"], d2(inputs)["depth"])
    pinhole = GeometryNet(means, use_depth=True, depth_channels=depth.feat_channels, depth_prior="pinhole").eval()
    (_, ref_p), _ = _inputs_of(pinhole, depth, smoke, rows)
    mean_h = torch.from_numpy(means[cls.numpy(), 0]).float()
    np.testing.assert_allclose(ref_p.numpy(), (K[:, 1, 1] * mean_h / (b2d[:, 3] - b2d[:, 1])).clamp(min=0.5).numpy(),
                               rtol=1e-5)
    d1 = GeometryNet(means, use_depth=False, constant_depth=17.0).eval()
    (inputs1, ref1), _ = _inputs_of(d1, None, smoke, rows)
    assert "depth" not in inputs1 and torch.all(ref1 == 17.0)
    # D1 trained: its constant reference is the labels' median depth.
    model, _ = train_geometry(smoke.train.sequences, labels, None, SMOKE, seed=0)
    assert float(model.constant_depth) == pytest.approx(float(np.median(_labelled_rows(labels, smoke.train.sequences)
                                                                           ["z"])))
    with pytest.raises(ValueError, match="depth_prior"):
        GeometryNet(means, depth_prior="lidar")


def test_clear_errors(smoke, labels, depth):
    with pytest.raises(ValueError, match="yaw_mode"):
        train_geometry(smoke.train.sequences, labels, None, SMOKE, yaw_mode="angles")
    with pytest.raises(ValueError, match="labelled rows"):
        train_geometry(smoke.train.sequences, labels[labels["cls"] == DONTCARE], None, SMOKE)
    model, _ = train_geometry(smoke.train.sequences, labels, depth, SMOKE)
    with pytest.raises(ValueError, match="DepthNet"):
        lift_boxes(model, None, smoke.val.sequences, smoke.val.tracks)


def test_mirror_gives_the_mirror_image_of_the_projected_box():
    from bench.data.geometry import project_boxes_2d
    from methods.sparse3dtrack.geometry import mirror

    rng = np.random.default_rng(0)
    n, width = 30, 416.0
    b3d = np.stack([rng.uniform(-8, 8, n), rng.uniform(1, 2, n), rng.uniform(6, 40, n), rng.uniform(1.4, 3, n),
                    rng.uniform(1.5, 2, n), rng.uniform(3, 6, n), rng.uniform(-np.pi, np.pi, n)], axis=1)
    K = np.repeat(np.array([[240.0, 0, 200.0], [0, 240, 64], [0, 0, 1]])[None], n, axis=0)
    b2d = np.stack([project_boxes_2d(b3d[i:i + 1], K[i])[0] for i in range(n)])
    m2d, m3d, mK = mirror(b2d, b3d, K, width)
    np.testing.assert_allclose(np.stack([project_boxes_2d(m3d[i:i + 1], mK[i])[0] for i in range(n)]), m2d, atol=1e-6)
    means = np.ones((6, 3))
    cls = np.zeros(n, dtype=np.int64)
    t = make_targets(b2d, b3d, K, np.full(n, 10.0), cls, means)
    tm = make_targets(m2d, m3d, mK, np.full(n, 10.0), cls, means)
    np.testing.assert_allclose(tm["centre"][:, 0], -t["centre"][:, 0], atol=1e-9)
    np.testing.assert_allclose(tm["kp_uv"][:, [0, 2]], -t["kp_uv"][:, [0, 2]], atol=1e-9)  # front/back u mirrored
    np.testing.assert_allclose(tm["kp_dz"], t["kp_dz"], atol=1e-9)
    np.testing.assert_array_equal(tm["facing"], t["facing"])
