"""Sequences, splits and datasets: the sensor side of the data, beside the track table.

A ``Sequence`` holds what a camera recorded (images, intrinsics, camera-to-world poses,
timestamps); ground truth lives apart in a ``Split``'s track table, so that a method can be
handed sequences without their labels (the label firewall).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.data.tracks import empty_tracks, validate_tracks


class DataError(ValueError):
    """Malformed data on disk or in memory; the message names the file (and line) and the problem."""


def _read_image(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    if not path.exists():
        raise DataError(f"{path}: image file is missing")
    image = np.asarray(iio.imread(path))
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image[:, :, :3]


@dataclass
class Sequence:
    """One monocular video with calibration and ego poses.

    ``images`` is either an in-memory ``(T, H, W, 3)`` uint8 array or a list of ``T`` image paths
    read on demand. ``intrinsics`` is ``(T, 3, 3)``, ``cam_to_world`` is ``(T, 4, 4)`` (camera
    frame in KITTI convention: x right, y down, z forward), ``timestamps`` in seconds.
    ``frame_ids`` are the frame numbers used in the track table (KITTI: 0..T-1).
    """

    name: str
    images: np.ndarray | list[Path]
    intrinsics: np.ndarray
    cam_to_world: np.ndarray
    timestamps: np.ndarray
    image_size: tuple[int, int]  # (width, height)
    frame_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # empty: 0..T-1
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = len(self.images)
        if len(self.frame_ids) == 0:
            self.frame_ids = np.arange(t, dtype=np.int64)
        self.intrinsics = np.asarray(self.intrinsics, dtype=np.float64)
        if self.intrinsics.shape == (3, 3):
            self.intrinsics = np.repeat(self.intrinsics[None], t, axis=0)
        self.cam_to_world = np.asarray(self.cam_to_world, dtype=np.float64)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64)
        self.frame_ids = np.asarray(self.frame_ids, dtype=np.int64)
        expected = {
            "intrinsics": (self.intrinsics.shape, (t, 3, 3)),
            "cam_to_world": (self.cam_to_world.shape, (t, 4, 4)),
            "timestamps": (self.timestamps.shape, (t,)),
            "frame_ids": (self.frame_ids.shape, (t,)),
        }
        for what, (got, want) in expected.items():
            if got != want:
                raise DataError(f"sequence {self.name}: {what} has shape {got}, expected {want}")
        if isinstance(self.images, np.ndarray):
            w, h = self.image_size
            if self.images.shape[1:3] != (h, w):
                raise DataError(
                    f"sequence {self.name}: images are {self.images.shape[2]}x{self.images.shape[1]}, "
                    f"expected {w}x{h}"
                )

    @property
    def num_frames(self) -> int:
        return len(self.images)

    def image(self, index: int) -> np.ndarray:
        """The ``index``-th image (position, not frame id) as ``(H, W, 3)`` uint8."""
        if isinstance(self.images, np.ndarray):
            return self.images[index]
        image = _read_image(Path(self.images[index]))
        w, h = self.image_size
        if image.shape[:2] != (h, w):
            raise DataError(f"{self.images[index]}: image is {image.shape[1]}x{image.shape[0]}, expected {w}x{h}")
        return image

    def load_images(self) -> np.ndarray:
        """All images as one ``(T, H, W, 3)`` array (cached after the first call)."""
        if not isinstance(self.images, np.ndarray):
            self.images = np.stack([self.image(i) for i in range(self.num_frames)])
        return self.images

    def index_of(self, frame_id: int) -> int:
        """Position of a frame id in this sequence."""
        hits = np.flatnonzero(self.frame_ids == frame_id)
        if len(hits) == 0:
            raise DataError(f"sequence {self.name}: no frame {frame_id}")
        return int(hits[0])


@dataclass
class PointTracks:
    """Dense 3D point trajectories of one sequence, TAPVid-3D style.

    ``xyz`` is ``(T, N, 3)`` in the camera frame of each frame (metres), ``visible`` ``(T, N)``,
    ``queries`` ``(N, 3)`` rows of (x_px, y_px, t) where each point is queried.
    """

    xyz: np.ndarray
    visible: np.ndarray
    queries: np.ndarray


@dataclass
class Split:
    """Sequences plus their ground truth.

    ``tracks`` is the GT track table, ``points`` the dense point tracks and ``layers`` the
    rendered ground-truth layers per sequence (e.g. ``{"depth": (T, H, W), "instance": (T, H, W)}``).
    All three are ground truth: for training videos they are hidden from methods.

    ``detections`` (None when the dataset ships none) are the public detections (MOT17's
    ``det/det.txt``): a track table whose ``track_id`` is -1. They are an *input* of the task, not a
    label, so the firewall hands them to methods (see :func:`bench.firewall.split_view`).

    ``depth`` holds each sequence's *given* video depth ``(T, H, W)`` metres (what a point tracker such as
    DELTA takes with the RGB, as the papers take a video depth network's output; synth-dense: the rendered
    depth through a noise model, :func:`bench.data.synth.labels.video_depth`). An input too, handed to methods.
    """

    name: str
    sequences: dict[str, Sequence]
    tracks: pd.DataFrame = field(default_factory=empty_tracks)
    points: dict[str, PointTracks] = field(default_factory=dict)
    layers: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    detections: pd.DataFrame | None = None
    depth: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_tracks(self.tracks, f"split {self.name}")
        if self.detections is not None:
            validate_tracks(self.detections, f"split {self.name} public detections", unique_ids=False)
        unknown = sorted(set(self.tracks["seq"]) - set(self.sequences))
        if unknown:
            raise DataError(f"split {self.name}: track table names unknown sequences {unknown[:5]}")

    def tracks_of(self, seq: str) -> pd.DataFrame:
        return self.tracks[self.tracks["seq"] == seq]

    @property
    def num_frames(self) -> int:
        return sum(s.num_frames for s in self.sequences.values())


@dataclass
class Dataset:
    """A named dataset with train and val splits and a content hash for cache keys."""

    name: str
    train: Split
    val: Split
    frame_rate: float
    data_hash: str
    root: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)


# A loader turns (scale, seed, root) into a Dataset; the registry of datasets maps names to these.
DatasetLoader = Callable[..., Dataset]
