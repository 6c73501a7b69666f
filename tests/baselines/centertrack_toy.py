"""A tiny hand-made driving scene for the CenterTrack tests: cars as flat-shaded boxes on a grey road."""

from __future__ import annotations

import numpy as np

from bench.data.geometry import project_boxes_2d
from bench.data.sequence import Sequence
from bench.data.tracks import make_tracks

K = np.array([[120.0, 0.0, 80.0], [0.0, 120.0, 30.0], [0.0, 0.0, 1.0]])
SIZE = (160, 64)  # width, height


def toy_scene(num_frames: int = 6, seed: int = 0, name: str = "toy") -> tuple[Sequence, object]:
    """Three cars (one moving across, two at other depths) rendered as filled 2D boxes, far to near."""
    rng = np.random.default_rng(seed)
    w, h = SIZE
    starts = np.array([[-3.0, 1.6, 12.0], [2.5, 1.6, 18.0], [0.5, 1.6, 9.0]])
    velocity = np.array([[0.6, 0, 0], [-0.3, 0, 0.2], [0.0, 0, -0.3]])
    dims = np.array([[1.5, 1.6, 3.9], [1.6, 1.7, 4.2], [1.4, 1.6, 3.7]])
    yaws = np.array([0.0, np.pi / 2, -0.4])
    colours = rng.integers(40, 255, (3, 3))
    images = np.full((num_frames, h, w, 3), 110, np.uint8)
    images[:, : h // 2] = 170  # sky
    rows = []
    for t in range(num_frames):
        pos = starts + velocity * t
        boxes = np.concatenate([pos, dims, yaws[:, None]], 1)
        b2d = project_boxes_2d(boxes, K, SIZE)
        for i in np.argsort(-pos[:, 2]):
            x1, y1, x2, y2 = b2d[i]
            images[t, int(y1):int(np.ceil(y2)), int(x1):int(np.ceil(x2))] = colours[i]
            rows.append(dict(seq=name, frame=t, track_id=i, cls="Car", x1=x1, y1=y1, x2=x2, y2=y2,
                             **dict(zip(["x", "y", "z", "h", "w", "l", "yaw"], boxes[i], strict=True))))
    seq = Sequence(name=name, images=images, intrinsics=K, cam_to_world=np.repeat(np.eye(4)[None], num_frames, 0),
                   timestamps=np.arange(num_frames) / 10.0, image_size=SIZE)
    return seq, make_tracks(rows)


def profile_config(profile: str, overrides: dict | None = None) -> dict:
    """The settings dict CenterTrack's training functions read for a built-in profile (its YAML section)."""
    from baselines.centertrack.learner import CenterTrackLearner
    from bench.config import method_params

    return CenterTrackLearner(**{**method_params(profile, "centertrack"), **(overrides or {})}).config()
