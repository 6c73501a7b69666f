"""BA²-Det's parts on constructed data: orientation search, box fit, DoubleClustering, self-training labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from methods.ba2det.bev_box import edge_distance, fit_box, search_orientation
from methods.ba2det.clustering import ClusterConfig, components, double_clustering, lpc
from methods.ba2det.reconstruct import SceneReconstruction
from methods.ba2det.selftrain import self_training_labels


def car_surface(centre=(0.0, 0.0), heading=0.0, length=4.5, width=1.8, height=1.5, step=0.1, sides=("all",)):
    """Points on the faces of a box (all four sides, or an L of two: the 'front' and 'right' faces)."""
    u = np.arange(-length / 2, length / 2 + 1e-9, step)
    v = np.arange(-width / 2, width / 2 + 1e-9, step)
    z = np.arange(0.0, height + 1e-9, step * 2)
    faces = {"front": [(length / 2, vv) for vv in v], "back": [(-length / 2, vv) for vv in v],
             "right": [(uu, -width / 2) for uu in u], "left": [(uu, width / 2) for uu in u]}
    names = list(faces) if sides == ("all",) else list(sides)
    bev = np.array([p for n in names for p in faces[n]])
    c, s = np.cos(heading), np.sin(heading)
    xy = bev @ np.array([[c, s], [-s, c]]) + np.asarray(centre)
    return np.array([[x, y, zz] for x, y in xy for zz in z])


@pytest.mark.parametrize("yaw", [0.0, 0.3, 0.9, 1.2, 2.0, 2.8])
def test_orientation_search_is_exact_on_l_shapes(yaw):
    points = car_surface(heading=yaw, sides=("front", "right"))[:, :2]
    found = search_orientation(points, steps=180)
    # A box has a half-turn symmetry and its BEV rectangle a quarter-turn one for the edge cost: compare mod pi/2.
    err = (found - yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
    assert abs(err) < 1e-9 + np.pi / 360  # within half a search step (0.5 deg)
    assert edge_distance(points - points.mean(0), found)[0] < edge_distance(points - points.mean(0), yaw + 0.2)[0]


def test_fit_box_recovers_a_complete_car():
    points = car_surface(centre=(10.0, -3.0), heading=0.6, length=4.4, width=1.8, height=1.6)
    box = fit_box(points)
    assert box.length == pytest.approx(4.4, abs=0.11) and box.width == pytest.approx(1.8, abs=0.11)
    assert box.height == pytest.approx(1.6, abs=0.21)
    assert np.allclose(box.centre[:2], (10.0, -3.0), atol=0.06)
    assert abs((box.heading - 0.6 + np.pi / 2) % np.pi - np.pi / 2) < np.radians(1)  # heading modulo pi


def test_components_split_at_the_threshold():
    line = np.array([[0.0, 0, 0], [0.4, 0, 0], [0.8, 0, 0], [2.0, 0, 0]])
    assert len(set(components(line, 0.5))) == 2
    assert len(set(components(line, 1.3))) == 1


def _scene(objects: list[np.ndarray], frames: int, boxes: list[np.ndarray], clutter: np.ndarray | None = None):
    """A reconstruction where every frame observes every point; each object's 2D box covers exactly its points
    (pixel u = the point index), plus background points that fall in every box."""
    points = np.concatenate(objects + ([clutter] if clutter is not None else []))
    idx = np.arange(len(points))
    obs = [(idx, np.stack([idx.astype(float), np.zeros(len(idx))], axis=1)) for _ in range(frames)]
    return SceneReconstruction(points=points, errors=np.zeros(len(points)), obs=obs)


def test_two_nearby_cars_stay_two_clusters():
    a = car_surface(centre=(0.0, 0.0), step=0.15)
    b = car_surface(centre=(0.0, 1.8 + 1.0), step=0.15)  # a 1.0 m gap, wider than delta_2 = 0.7
    recon = _scene([a, b], 1, [])
    boxes = pd.DataFrame({"frame": [0, 0], "track_id": [1, 2], "x1": [0, len(a)], "y1": [-1, -1],
                          "x2": [len(a) - 1, len(a) + len(b) - 1], "y2": [1, 1]})
    clusters = double_clustering(recon, boxes, {0: 0}, ClusterConfig(0.5, 0.7, 10))
    assert sorted(clusters) == [1, 2]
    assert set(clusters[1]) == set(range(len(a))) and set(clusters[2]) == set(range(len(a), len(a) + len(b)))


def test_a_car_seen_in_ten_frames_becomes_one_cluster():
    # The faces a passing camera sees (an L: right side and front), heading 0 at the origin; each frame sees the
    # next stretch of that L (ten overlapping-in-space, disjoint-in-points pieces); LPC finds one piece per frame.
    car = car_surface(centre=(0.0, 0.0), step=0.15, sides=("right", "front"))
    points = car
    n = len(car)
    along = np.where(np.isclose(car[:, 1], -0.9), car[:, 0] + 2.25, 4.5 + car[:, 1] + 0.9)  # distance along the L
    slices = np.array_split(np.argsort(along, kind="stable"), 10)
    obs = [(s, np.stack([s.astype(float), np.zeros(len(s))], axis=1)) for s in slices]
    recon = SceneReconstruction(points=points, errors=np.zeros(n), obs=obs)
    boxes = pd.DataFrame({"frame": np.arange(10), "track_id": 7, "x1": -1.0, "y1": -1.0, "x2": float(n), "y2": 1.0})
    clusters = double_clustering(recon, boxes, {t: t for t in range(10)}, ClusterConfig(0.5, 0.7, 10))
    assert list(clusters) == [7] and len(clusters[7]) == n  # every frame's piece joined into one object


def test_lpc_drops_background_and_min_points_drops_noise():
    car = car_surface(centre=(10.0, 0.0), step=0.15)
    wall = np.array([[25.0, y, z] for y in np.arange(-3, 3, 0.3) for z in (0.5, 1.0)])  # 15 m behind the car
    recon = _scene([car, wall], 1, [])
    box = np.array([-1, -1, len(car) + len(wall), 1])
    assert set(lpc(recon, 0, box, 0.5)) == set(range(len(car)))
    boxes = pd.DataFrame({"frame": [0], "track_id": [3], "x1": [box[0]], "y1": [-1], "x2": [box[2]], "y2": [1]})
    assert double_clustering(recon, boxes, {0: 0}, ClusterConfig(0.5, 0.7, len(car) + 1)) == {}


def test_self_training_fills_only_missing_boxes_on_consistent_tracks():
    cols = dict(cls="Car", score=1.0, occlusion=0, truncation=0, visibility=0, conf=1.0)
    box3d = {"x": 1.0, "y": 1.5, "z": 20.0, "h": 1.5, "w": 1.8, "l": 4.0, "yaw": 0.0}
    nan3d = {k: np.nan for k in box3d}
    rows = [dict(seq="a", frame=f, track_id=1, x1=10, y1=10, x2=30, y2=30, **cols, **box3d) for f in range(3)]
    rows += [dict(seq="a", frame=f, track_id=2, x1=50, y1=10, x2=70, y2=30, **cols, **nan3d) for f in range(3)]
    rows += [dict(seq="a", frame=0, track_id=3, x1=80, y1=10, x2=90, y2=30, **cols, **nan3d)]
    initial = pd.DataFrame(rows)
    pred = [dict(seq="a", frame=f, track_id=9, x1=51, y1=10, x2=70, y2=31, **cols,
                 **{**box3d, "x": 5.0, "l": 4.0 + f}) for f in range(3)]
    pred += [dict(seq="a", frame=0, track_id=8, x1=80, y1=10, x2=90, y2=30, **cols, **box3d)]  # one frame only
    pred += [dict(seq="a", frame=f, track_id=7, x1=10, y1=10, x2=30, y2=30, **cols, **{**box3d, "z": 99.0})
             for f in range(3)]
    out = self_training_labels(initial, pd.DataFrame(pred), {}, match_iou=0.5, min_hits=2)
    t1, t2, t3 = (out[out["track_id"] == t] for t in (1, 2, 3))
    assert (t1["z"] == 20.0).all()  # a reconstruction box is kept
    assert (t2["x"] == 5.0).all() and (t2["l"] == 5.0).all()  # filled; size = the track's median
    assert t3["z"].isna().all()  # matched on one frame only: under min_hits


def test_ba2det_trains_with_the_flip_orientation_loss_and_its_sfm_baseline_does_not():
    from methods.ba2det.method import BA2Det, BA2DetSfM

    assert BA2Det()._new_detector().learner.params["orientation_loss"] == "multibin-flip"
    assert BA2DetSfM()._new_detector().learner.params["orientation_loss"] == "multibin"
    with pytest.raises(ValueError, match="flip_orientation_loss"):
        BA2Det(detector={"orientation_loss": "multibin"})
