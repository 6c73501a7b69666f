"""Pictures: boxes are drawn where the labels say, in a stable colour per id; PNG and GIF files come out."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from bench.data import DONTCARE, Sequence, make_tracks
from bench.data.viz import draw_frame, id_colour, save_clip, save_png


@pytest.fixture()
def scene():
    # A grey 3-frame sequence with one car 10 m ahead, in KITTI-like intrinsics.
    w, h = 200, 100
    K = np.array([[100.0, 0, w / 2], [0, 100.0, h / 2], [0, 0, 1]])
    seq = Sequence("0000", np.full((3, h, w, 3), 90, np.uint8), K, np.tile(np.eye(4), (3, 1, 1)),
                   np.arange(3) * 0.1, (w, h))
    tracks = make_tracks([
        {"seq": "0000", "frame": f, "track_id": 7, "cls": "Car", "x1": 60.0 - 5 * f, "y1": 40.0,
         "x2": 140.0, "y2": 80.0,
         "x": 0.0, "y": 1.5, "z": 10.0, "h": 1.5, "w": 1.6, "l": 3.9, "yaw": 0.0} for f in range(3)
    ] + [{"seq": "0000", "frame": 0, "track_id": -1, "cls": DONTCARE, "x1": 5.0, "y1": 5.0, "x2": 15.0, "y2": 12.0}])
    return seq, tracks


def test_draw_frame_draws_2d_box_edges_in_the_id_colour(scene):
    seq, tracks = scene
    img = draw_frame(seq, tracks, 0, show_3d=False, show_ids=False)
    assert img.shape == (100, 200, 3) and img.dtype == np.uint8
    colour = np.array(id_colour(7))
    assert (img[40, 60:141] == colour).all(axis=1).mean() > 0.9  # top edge
    assert (img[60, 100] == 90).all()  # inside untouched
    assert (img[5, 5:16] == (128, 128, 128)).all()  # DontCare region in grey


def test_draw_frame_projects_the_3d_box(scene):
    seq, tracks = scene
    img = draw_frame(seq, tracks, 1, show_2d=False, show_ids=False)
    changed = np.argwhere((img != 90).any(-1))
    # Bottom-centre at (0, 1.5, 10) -> pixel (100, 65); the box spans x in [0.8 * 100 / 11.95 .. ] etc.
    assert 60 <= changed[:, 1].min() < 85 and 115 < changed[:, 1].max() <= 140
    assert changed[:, 0].max() == pytest.approx(100 * 1.5 / 9.2 + 50, abs=2)
    assert changed[:, 0].min() == pytest.approx(50, abs=2)  # the roof at y = 0 is on the horizon


def test_scale_enlarges_and_colours_are_stable():
    assert id_colour(3) == id_colour(3) and id_colour(3) != id_colour(4)
    assert id_colour(-1) == (160, 160, 160)


def test_save_png_and_clip_round_trip(scene, tmp_path):
    seq, tracks = scene
    img = draw_frame(seq, tracks, 2, scale=2)
    assert img.shape == (200, 400, 3)
    path = save_png(img, tmp_path / "a" / "frame.png")
    np.testing.assert_array_equal(iio.imread(path)[..., :3], img)
    clip = save_clip(seq, tracks, tmp_path / "clip.gif", fps=5)
    frames = iio.imread(clip, index=None)
    assert frames.shape[0] == 3 and frames.shape[1:3] == (100, 200)  # (identical frames would be merged)
