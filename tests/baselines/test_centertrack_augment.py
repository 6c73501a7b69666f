"""CenterTrack's training-time mirror augmentation and weight averaging."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from centertrack_toy import SIZE, K, profile_config, toy_scene  # noqa: E402

from baselines.centertrack.targets import Objects, flip_intrinsics, flip_objects  # noqa: E402
from baselines.centertrack.train import _update_average, build_model, make_sample, prepare  # noqa: E402
from bench.data.geometry import observation_angle, project_boxes_2d  # noqa: E402


def test_mirrored_3d_boxes_project_onto_the_mirrored_2d_boxes():
    boxes3d = np.array([[3.0, 1.6, 15.0, 1.5, 1.7, 4.2, 0.7], [-5.0, 1.6, 25.0, 1.5, 1.7, 4.2, -2.5]])
    boxes = project_boxes_2d(boxes3d, K, SIZE)
    objects = Objects(boxes, boxes3d, np.zeros(2, np.int64), np.arange(2), np.ones(2))
    mirrored = flip_objects(objects, SIZE[0])
    # Left and right swap in the image; the 3D boxes with the mirrored camera land exactly there.
    np.testing.assert_allclose(mirrored.boxes[:, [0, 2]], SIZE[0] - boxes[:, [2, 0]])
    np.testing.assert_allclose(project_boxes_2d(mirrored.boxes3d, flip_intrinsics(K, SIZE[0]), SIZE),
                               mirrored.boxes, atol=1e-9)
    # A car seen from its left is seen from its right: the observation angle becomes pi - alpha.
    alpha, alpha_m = observation_angle(boxes3d), observation_angle(mirrored.boxes3d)
    np.testing.assert_allclose(np.cos(alpha_m), -np.cos(alpha), atol=1e-9)
    np.testing.assert_allclose(np.sin(alpha_m), np.sin(alpha), atol=1e-9)
    np.testing.assert_allclose(flip_objects(mirrored, SIZE[0]).boxes3d[:, :6], boxes3d[:, :6])


def test_a_mirrored_sample_has_the_mirrored_targets():
    seq, tracks = toy_scene()
    data = prepare({"toy": seq}, tracks, ("Car",), profile_config("smoke", {"input_size": SIZE}))[0]
    plain = make_sample(data, 2, profile_config("smoke", {"input_size": SIZE, "flip": 0.0}), 1,
                        np.random.default_rng(0))
    mirrored = make_sample(data, 2, profile_config("smoke", {"input_size": SIZE, "flip": 1.0}), 1,
                           np.random.default_rng(0))
    assert mirrored["flip"] and not plain["flip"]
    np.testing.assert_allclose(mirrored["hm"], plain["hm"][..., ::-1])
    np.testing.assert_allclose(mirrored["wh"], plain["wh"])
    np.testing.assert_allclose(mirrored["dep"], plain["dep"])
    mask = plain["mask"] > 0
    assert mask.sum() == 3
    # Sub-cell offsets mirror about the cell: x -> 1 - x; so do the 3D centres' offsets from the peak cell.
    np.testing.assert_allclose(mirrored["reg"][mask, 0], 1 - plain["reg"][mask, 0], atol=1e-5)
    np.testing.assert_allclose(mirrored["reg"][mask, 1], plain["reg"][mask, 1], atol=1e-5)
    np.testing.assert_allclose(mirrored["amodal"][mask, 0], 1 - plain["amodal"][mask, 0], atol=1e-4)


def test_weight_average_blends_floats_and_copies_counters():
    cfg = profile_config("smoke", {"input_size": SIZE})
    average, model = build_model(cfg, 1), build_model(cfg, 1)
    for p in model.parameters():
        torch.nn.init.normal_(p)
    before = {k: v.clone() for k, v in average.state_dict().items()}
    model.state_dict()["levels.0.0.conv1.1.num_batches_tracked"].fill_(7)
    _update_average(average, model, 0.9)
    after, cur = average.state_dict(), model.state_dict()
    name = "heads.hm.weight"
    torch.testing.assert_close(after[name], 0.9 * before[name] + 0.1 * cur[name])
    assert int(after["levels.0.0.conv1.1.num_batches_tracked"]) == 7
