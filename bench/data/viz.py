"""Pictures of sequences with their boxes: projected 3D wireframes, 2D boxes and track ids (PIL, no matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from bench.data.geometry import box_corners
from bench.data.sequence import Sequence
from bench.data.tracks import BOX2D_COLUMNS, BOX3D_COLUMNS, DONTCARE

# Edges of box_corners' 8 corners: bottom ring, top ring, verticals; plus a cross on the front face.
_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7),
          (0, 5), (1, 4)]
_NEAR = 0.1  # metres; edges are clipped at this depth before projecting


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, saturated colour per track id (golden-ratio hue steps)."""
    if track_id < 0:
        return (160, 160, 160)
    hue = (track_id * 0.618033988749895) % 1.0
    h6 = hue * 6
    x = 1 - abs(h6 % 2 - 1)
    r, g, b = [(1, x, 0), (x, 1, 0), (0, 1, x), (0, x, 1), (x, 0, 1), (1, 0, x)][int(h6) % 6]
    return (int(55 + 200 * r), int(55 + 200 * g), int(55 + 200 * b))


def _frame_rows(seq: Sequence, tracks: pd.DataFrame, index: int) -> pd.DataFrame:
    frame_ids = seq.frame_ids if seq.frame_ids is not None else np.arange(seq.num_frames)
    frame_id = int(frame_ids[index])
    return tracks[(tracks["seq"] == seq.name) & (tracks["frame"] == frame_id)]


def draw_frame(seq: Sequence, tracks: pd.DataFrame, index: int, *, show_3d: bool = True, show_2d: bool = True,
               show_ids: bool = True, scale: int = 1) -> np.ndarray:
    """The ``index``-th image of ``seq`` with its rows of ``tracks`` drawn on it, as ``(H, W, 3)`` uint8.

    ``scale`` enlarges the image first (nearest neighbour) so thin lines stay readable on small frames.
    """
    image = Image.fromarray(seq.image(index))
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    K = seq.intrinsics[index] * np.array([[scale], [scale], [1]])
    rows = _frame_rows(seq, tracks, index)
    ids = rows["track_id"].to_numpy(dtype=np.int64)
    classes = rows["cls"].to_numpy()
    boxes2d = rows[list(BOX2D_COLUMNS)].to_numpy(dtype=float) * scale
    boxes3d = rows[list(BOX3D_COLUMNS)].to_numpy(dtype=float)
    for track_id, cls, box2d, box3d in zip(ids.tolist(), classes, boxes2d, boxes3d, strict=True):
        colour = id_colour(track_id)
        if cls == DONTCARE:
            if show_2d:
                draw.rectangle(box2d.tolist(), outline=(128, 128, 128))
            continue
        if show_3d and np.isfinite(box3d).all():
            corners = box_corners(box3d)[0]
            for a, b in _EDGES:
                segment = _clip_segment(corners[a], corners[b])
                if segment is None:
                    continue
                uv = segment @ K.T
                uv = uv[:, :2] / uv[:, 2:3]
                draw.line([tuple(uv[0]), tuple(uv[1])], fill=colour, width=1)
        if show_2d and np.isfinite(box2d).all():
            draw.rectangle(box2d.tolist(), outline=colour, width=1)
        if show_ids:
            draw.text((box2d[0] + 1, max(box2d[1] - 10, 0)), str(track_id), fill=colour)
    return np.asarray(image)


def _clip_segment(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """The part of segment a-b in front of the near plane, or None."""
    if a[2] < _NEAR and b[2] < _NEAR:
        return None
    if a[2] < _NEAR or b[2] < _NEAR:
        t = (_NEAR - a[2]) / (b[2] - a[2])
        cut = a + t * (b - a)
        a, b = (cut, b) if a[2] < _NEAR else (a, cut)
    return np.stack([a, b])


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an RGB image as PNG (creating parent folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path, optimize=True)
    return path


def save_clip(seq: Sequence, tracks: pd.DataFrame, path: str | Path, fps: float = 10.0, **draw_options: bool
              ) -> Path:
    """Write the whole sequence with boxes as an animated GIF (or MP4 when the path ends in .mp4
    and imageio-ffmpeg is installed)."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.stack([draw_frame(seq, tracks, i, **draw_options) for i in range(seq.num_frames)])
    if path.suffix.lower() == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise RuntimeError(f"{path}: writing MP4 needs the imageio-ffmpeg package; write a .gif instead") from None
        iio.imwrite(path, frames, fps=fps, codec="libx264")
    else:
        iio.imwrite(path, frames, duration=1000.0 / fps, loop=0)
    return path
