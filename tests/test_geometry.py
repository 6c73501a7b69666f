import numpy as np
import pytest

from bench.data import geometry as g


def test_corners_of_axis_aligned_box():
    corners = g.box_corners(np.array([1.0, 2.0, 10.0, 1.5, 1.8, 4.0, 0.0]))[0]
    assert corners[:, 0].min() == pytest.approx(-1.0) and corners[:, 0].max() == pytest.approx(3.0)
    assert corners[:, 1].min() == pytest.approx(0.5) and corners[:, 1].max() == pytest.approx(2.0)
    assert corners[:, 2].min() == pytest.approx(9.1) and corners[:, 2].max() == pytest.approx(10.9)


def test_yaw_quarter_turn_swaps_length_to_depth():
    corners = g.box_corners(np.array([0.0, 0.0, 20.0, 1.5, 2.0, 4.0, np.pi / 2]))[0]
    assert np.ptp(corners[:, 2]) == pytest.approx(4.0)
    assert np.ptp(corners[:, 0]) == pytest.approx(2.0)


def test_projected_box_of_box_ahead_is_centred():
    k = np.array([[700.0, 0, 400], [0, 700.0, 150], [0, 0, 1]])
    box2d = g.project_boxes_2d(np.array([[0.0, 1.65, 20.0, 1.5, 1.8, 4.0, 0.0]]), k)[0]
    assert (box2d[0] + box2d[2]) / 2 == pytest.approx(400.0)
    assert box2d[3] == pytest.approx(150 + 700 * 1.65 / 19.1)  # near bottom edge: yaw 0 puts the width (1.8) along z


def test_box_behind_camera_projects_to_nan():
    k = np.eye(3)
    assert np.isnan(g.project_boxes_2d(np.array([[0, 0, -10.0, 1, 1, 1, 0]]), k)).all()


def _camera_pose(heading: float, position=(5.0, -3.0, 1.65)) -> np.ndarray:
    # Camera looking along world heading, level: cam z = forward, cam x = right, cam y = down.
    fwd = np.array([np.cos(heading), np.sin(heading), 0.0])
    right = np.array([np.sin(heading), -np.cos(heading), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    m = np.eye(4)
    m[:3, :3] = np.stack([right, down, fwd], axis=1)
    m[:3, 3] = position
    return m


@pytest.mark.parametrize("heading", [0.0, 0.7, -2.5, 3.0])
def test_camera_world_round_trip(heading):
    pose = _camera_pose(heading)
    boxes = np.array([[1.0, 1.6, 15.0, 1.5, 1.8, 4.2, 0.3], [-4.0, 1.7, 30.0, 3.0, 2.5, 9.0, -2.0]])
    centres, headings = g.boxes_to_world(boxes, pose)
    back = g.boxes_from_world(centres, headings, boxes[:, 3:6], pose)
    np.testing.assert_allclose(back, boxes, atol=1e-9)


def test_yaw_zero_points_right_of_camera_in_world():
    pose = _camera_pose(0.0)  # camera looks along world +x, so camera +x is world -y
    assert g.yaw_to_heading(np.array([0.0]), pose)[0] == pytest.approx(-np.pi / 2)


def test_quaternion_round_trip():
    headings = np.array([-3.0, -1.0, 0.0, 0.5, 2.9])
    np.testing.assert_allclose(g.quaternion_to_heading(g.heading_to_quaternion(headings)), headings, atol=1e-12)


def test_observation_angle_wraps():
    alpha = g.observation_angle(np.array([[10.0, 1.0, 10.0, 1, 1, 1, np.pi]]))
    assert -np.pi <= alpha[0] < np.pi
