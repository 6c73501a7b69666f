"""Yaw from keypoints: exact on exact keypoints in every quadrant; facing resolves swapped front/back."""

import numpy as np
import pytest

from bench.data.geometry import box_center, project_points, wrap_angle
from methods.sparse3dtrack.yaw import FACING_MARGIN, keypoints_from_boxes, lift, yaw_from_keypoints

K = np.array([[721.5, 0.0, 609.6], [0.0, 721.5, 172.9], [0.0, 0.0, 1.0]])


def random_boxes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-15, 15, n)
    z = rng.uniform(4, 60, n)
    y = rng.uniform(1.0, 2.0, n)
    h, w, length = rng.uniform(1.2, 3.5, n), rng.uniform(0.5, 2.5, n), rng.uniform(0.6, 12.0, n)
    yaw = rng.uniform(-np.pi, np.pi, n)
    return np.stack([x, y, z, h, w, length, yaw], axis=1)


def test_keypoints_lie_on_the_heading_axis_and_centre_is_the_box_centre():
    boxes = random_boxes(50)
    kp = keypoints_from_boxes(boxes, K)
    np.testing.assert_allclose(kp["centre_xyz"], box_center(boxes), atol=1e-9)
    np.testing.assert_allclose((kp["front_xyz"] + kp["back_xyz"]) / 2, kp["centre_xyz"], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(kp["front_xyz"] - kp["back_xyz"], axis=1), boxes[:, 5], atol=1e-9)
    np.testing.assert_allclose(kp["front_uv"], project_points(kp["front_xyz"], K), atol=1e-9)
    np.testing.assert_allclose(kp["back_depth"], kp["back_xyz"][:, 2])
    np.testing.assert_allclose(lift(kp["front_uv"], kp["front_depth"], K), kp["front_xyz"], atol=1e-9)


def test_yaw_is_exact_on_exact_keypoints_in_all_quadrants():
    boxes = random_boxes(2000, seed=1)
    # Every quadrant and the axis-aligned headings, where arctan2 branches.
    boxes[:8, 6] = [0.0, np.pi / 2, -np.pi / 2, np.pi - 1e-9, -np.pi, 0.25, 2.0, -2.5]
    kp = keypoints_from_boxes(boxes, K)
    yaw = yaw_from_keypoints(kp["front_uv"], kp["front_depth"], kp["back_uv"], kp["back_depth"], kp["facing"], K)
    assert np.abs(wrap_angle(yaw - boxes[:, 6])).max() < 1e-6
    for lo in (-np.pi, -np.pi / 2, 0, np.pi / 2):
        assert ((boxes[:, 6] >= lo) & (boxes[:, 6] < lo + np.pi / 2)).sum() > 100


def test_per_row_intrinsics_are_accepted():
    boxes = random_boxes(20, seed=2)
    Ks = np.repeat(K[None], 20, axis=0)
    Ks[:, 0, 0] = np.linspace(200, 900, 20)
    kp = keypoints_from_boxes(boxes, Ks)
    yaw = yaw_from_keypoints(kp["front_uv"], kp["front_depth"], kp["back_uv"], kp["back_depth"], kp["facing"], Ks)
    assert np.abs(wrap_angle(yaw - boxes[:, 6])).max() < 1e-6


def test_facing_fixes_swapped_front_and_back_and_a_wrong_facing_flips_the_yaw():
    boxes = random_boxes(2000, seed=3)
    kp = keypoints_from_boxes(boxes, K)
    axis = kp["front_xyz"] - kp["back_xyz"]
    ray = kp["centre_xyz"].copy()
    axis[:, 1] = ray[:, 1] = 0
    cos = np.abs((axis * ray).sum(1)) / np.linalg.norm(axis, axis=1) / np.linalg.norm(ray, axis=1)
    decided = cos > FACING_MARGIN
    assert decided.sum() > 500 and (~decided).sum() > 200
    # Front and back swapped (what a confused network predicts): facing restores the heading ...
    swapped = yaw_from_keypoints(kp["back_uv"], kp["back_depth"], kp["front_uv"], kp["front_depth"], kp["facing"], K)
    assert np.abs(wrap_angle(swapped - boxes[:, 6]))[decided].max() < 1e-6
    # ... while near-crossing objects keep the keypoints' own order (pi off here, the 2D order decides).
    assert np.allclose(np.abs(wrap_angle(swapped - boxes[:, 6]))[~decided], np.pi, atol=1e-6)
    # A wrong facing bit on exact keypoints turns the decided ones around.
    flipped = yaw_from_keypoints(kp["front_uv"], kp["front_depth"], kp["back_uv"], kp["back_depth"],
                                 1 - kp["facing"], K)
    assert np.allclose(np.abs(wrap_angle(flipped - boxes[:, 6]))[decided], np.pi, atol=1e-6)
    assert np.abs(wrap_angle(flipped - boxes[:, 6]))[~decided].max() < 1e-6


def test_facing_is_one_for_an_oncoming_car_and_zero_for_one_driving_away():
    ahead = np.array([[0.0, 1.6, 20.0, 1.5, 1.7, 4.2, np.pi / 2], [0.0, 1.6, 20.0, 1.5, 1.7, 4.2, -np.pi / 2]])
    # yaw +pi/2 heads along -z (towards the camera), -pi/2 along +z (away).
    np.testing.assert_array_equal(keypoints_from_boxes(ahead, K)["facing"], [1.0, 0.0])


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match=r"\(N, 7\)"):
        keypoints_from_boxes(np.zeros((3, 6)), K)
    with pytest.raises(ValueError, match="intrinsics"):
        keypoints_from_boxes(np.zeros((3, 7)), np.eye(4))
    with pytest.raises(ValueError, match="facing"):
        yaw_from_keypoints(np.zeros((2, 2)), np.ones(2), np.ones((2, 2)), np.ones(2), np.ones(3), K)
