"""A tiny hand-made dataset for the harness tests: a turning ego camera and cars at constant world velocity.

Because the cars move linearly in the world while the camera turns, interpolating boxes in the
world frame reproduces the ground truth exactly and interpolating in the camera frame does not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from bench.data.geometry import boxes_from_world, project_boxes_2d, project_points, transform_points
from bench.data.sequence import Dataset, PointTracks, Sequence, Split
from bench.data.tracks import make_tracks

W, H = 64, 48
K = np.array([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]])
# Camera axes (x right, y down, z forward) in a z-up world: forward -> +x, right -> -y, down -> -z.
R0 = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def make_sequence(name: str, frames: int, rng: np.random.Generator) -> tuple[Sequence, list[dict]]:
    poses = np.repeat(np.eye(4)[None], frames, axis=0)
    yaw_rate = rng.uniform(0.02, 0.05)
    for t in range(frames):
        poses[t, :3, :3] = _rot_z(yaw_rate * t) @ R0
        poses[t, :3, 3] = [1.0 * t, 0.2 * t * yaw_rate * t, 1.6]
    rows = []
    for track_id in range(3):
        start = np.array([rng.uniform(10, 25), rng.uniform(-4, 4), 0.75])
        velocity = np.array([rng.uniform(-0.5, 1.5), rng.uniform(-0.2, 0.2), 0.0])
        heading = rng.uniform(-np.pi, np.pi)
        hwl = np.array([1.5, 1.7, rng.uniform(3.8, 4.6)])
        for t in range(frames):
            box = boxes_from_world(start + velocity * t, np.array([heading + 0.01 * t]), hwl, poses[t])[0]
            if box[2] < 2:
                continue
            x1, y1, x2, y2 = project_boxes_2d(box[None], K, (W, H))[0]
            if not (x2 > x1 + 1 and y2 > y1 + 1):
                continue
            rows.append(dict(seq=name, frame=t, track_id=track_id, cls="Car", x1=x1, y1=y1, x2=x2, y2=y2,
                             **dict(zip(("x", "y", "z", "h", "w", "l", "yaw"), box, strict=True))))
    images = rng.integers(0, 255, size=(frames, H, W, 3), dtype=np.uint8)
    seq = Sequence(name=name, images=images, intrinsics=K, cam_to_world=poses,
                   timestamps=np.arange(frames) / 10.0, image_size=(W, H), meta={"gt_note": "never pass me on"})
    return seq, rows


def _static_points(seq: Sequence, rng: np.random.Generator, n: int = 6) -> PointTracks:
    """Static world points ahead of the camera, tracked in each frame's camera coordinates."""
    world = np.column_stack([rng.uniform(15, 30, n), rng.uniform(-3, 3, n), rng.uniform(0, 2, n)])
    xyz = np.stack([transform_points(world, np.linalg.inv(pose)) for pose in seq.cam_to_world])  # (T, N, 3)
    uv = project_points(xyz[0], K)
    return PointTracks(xyz=xyz, visible=np.ones(xyz.shape[:2], bool), queries=np.column_stack([uv, np.zeros(n)]))


def make_dataset(seed: int = 0, frames: int = 16, root: Path | None = None) -> Dataset:
    rng = np.random.default_rng(seed)
    splits = {}
    for split, names in (("train", ["0000", "0001"]), ("val", ["0002"])):
        sequences, rows = {}, []
        for name in names:
            seq, seq_rows = make_sequence(name, frames, rng)
            sequences[name] = seq
            rows += seq_rows
        splits[split] = Split(split, sequences, make_tracks(rows, source=f"tiny {split}"),
                              points={n: _static_points(sequences[n], rng) for n in names},
                              layers={n: {"depth": np.zeros((frames, H, W), np.float32)} for n in names})
    data_hash = hashlib.sha256(f"tiny-{seed}-{frames}".encode()).hexdigest()[:16]
    return Dataset("tiny", splits["train"], splits["val"], frame_rate=10.0, data_hash=data_hash, root=root)


def load_tiny(scale: str = "smoke", seed: int = 0, root: str | None = None, progress: bool = False) -> Dataset:
    return make_dataset(seed=seed, root=Path(root) if root else None)
