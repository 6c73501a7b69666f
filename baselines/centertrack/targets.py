"""Render CenterTrack's training targets for one frame from a bench track table.

All coordinates here are in the network's *input* pixels (the image resized to the model's input
size, with intrinsics scaled to match); the dense targets live at stride ``DOWN`` = 4.

Per object (a row of the track table) the targets are CenterNet/CenterTrack's:
- a Gaussian peak on the class heatmap at the 2D box centre (integer location ``ct_int``),
- ``reg``: sub-pixel offset of the centre, ``wh``: 2D box size (output pixels),
- ``tracking``: previous-frame centre minus ``ct_int`` (only if the track is in the previous frame),
- ``dep``: depth z (m); with ``depth_mode="geometric"`` instead log(z / prior), the residual over the pinhole
  prior z ~ fy * h3d / h2d (see :func:`geometric_depth_prior`),
- ``dim``: log(h, w, l), ``rot``: observation angle alpha in 2 overlapping bins,
- ``amodal``: projected 3D box centre minus ``ct_int`` (the 2D box centre is not the 3D centre's
  projection, and truncated boxes are far from it),
- ``weight``: the row's ``conf``, which scales this object's positive heatmap and regression losses.
Rows without a 3D box (NaN) supervise only the 2D heads. ``DontCare`` rows supervise nothing and
remove the negative heatmap loss inside their box, as KITTI intends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.data.geometry import box_center, observation_angle, project_points, wrap_angle
from bench.data.tracks import DONTCARE

DOWN = 4
# Rotation bins (CenterNet "ddd"): centres at -pi/2 and +pi/2, each covering +-(pi/2 + pi/6), so they overlap.
ROT_BIN_CENTRES = np.array([-np.pi / 2, np.pi / 2])
ROT_BIN_HALF_WIDTH = np.pi / 2 + np.pi / 6
# How the ``dep`` head encodes depth: "direct" regresses z itself (CenterNet); "geometric" regresses the
# log-residual over the pinhole prior, which a small network learns far better than z (z regresses to the mean).
DEPTH_MODES = ("direct", "geometric")
MIN_BOX_HEIGHT = 1.0  # input px; the prior divides by the 2D box height


@dataclass
class Objects:
    """The objects of one frame in input pixels, ready for rendering (arrays of length N)."""

    boxes: np.ndarray  # (N, 4) x1 y1 x2 y2, input pixels
    boxes3d: np.ndarray  # (N, 7) x y z h w l yaw, camera frame; NaN rows are 2D-only
    cls: np.ndarray  # (N,) class index
    track_id: np.ndarray  # (N,)
    conf: np.ndarray  # (N,)


def scale_intrinsics(intrinsics: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics of an image resized by (sx, sy)."""
    return np.diag([sx, sy, 1.0]) @ np.asarray(intrinsics, dtype=np.float64)


def objects_from_table(rows: pd.DataFrame, classes: tuple[str, ...], sx: float, sy: float
                       ) -> tuple[Objects, np.ndarray]:
    """Split one frame's rows into known-class objects (scaled to input pixels) and DontCare boxes."""
    boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(dtype=np.float64) * np.array([sx, sy, sx, sy])
    cls_names = rows["cls"].to_numpy()
    dontcare = boxes[cls_names == DONTCARE]
    lookup = {c: i for i, c in enumerate(classes)}
    keep = np.array([c in lookup for c in cls_names], dtype=bool)
    objects = Objects(
        boxes=boxes[keep],
        boxes3d=rows[["x", "y", "z", "h", "w", "l", "yaw"]].to_numpy(dtype=np.float64)[keep],
        cls=np.array([lookup[c] for c in cls_names[keep]], dtype=np.int64),
        track_id=rows["track_id"].to_numpy(dtype=np.int64)[keep],
        conf=rows["conf"].to_numpy(dtype=np.float64)[keep],
    )
    return objects, dontcare


def flip_boxes(boxes: np.ndarray, width: float) -> np.ndarray:
    """2D boxes ``(N, 4)`` of the horizontally mirrored image: u -> width - u (pixel centres at j + 0.5)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def flip_objects(objects: Objects, width: float) -> Objects:
    """The objects of the horizontally mirrored image (``width`` input pixels wide).

    In 3D the mirror is x -> -x in the camera frame, which turns a heading yaw into pi - yaw; with
    :func:`flip_intrinsics` every 3D box still projects onto its mirrored 2D box.
    """
    boxes = flip_boxes(objects.boxes, width)
    boxes3d = objects.boxes3d.copy()
    boxes3d[:, 0] = -boxes3d[:, 0]
    boxes3d[:, 6] = wrap_angle(np.pi - boxes3d[:, 6])
    return Objects(boxes, boxes3d, objects.cls, objects.track_id, objects.conf)


def crop_objects(objects: Objects, x0: float, y0: float, size: tuple[int, int]) -> Objects:
    """The objects of the ``size`` (w, h) window at (x0, y0): 2D boxes shifted and clipped to it (as at an image
    border: a cut box keeps its 3D box, whose projected centre the amodal offset still points to); boxes left
    with no area are dropped."""
    boxes = crop_boxes(objects.boxes, x0, y0, size)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return Objects(boxes[keep], objects.boxes3d[keep], objects.cls[keep], objects.track_id[keep], objects.conf[keep])


def crop_boxes(boxes: np.ndarray, x0: float, y0: float, size: tuple[float, float]) -> np.ndarray:
    """2D boxes ``(N, 4)`` in the coordinates of the window at (x0, y0), clipped to its ``size`` (w, h)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) - np.array([x0, y0, x0, y0])
    return np.clip(boxes, 0.0, np.array([size[0], size[1], size[0], size[1]], dtype=np.float64))


def crop_intrinsics(intrinsics: np.ndarray, x0: float, y0: float) -> np.ndarray:
    """Intrinsics of the window whose top-left corner is input pixel (x0, y0): the principal point moves."""
    k = np.array(intrinsics, dtype=np.float64)
    k[0, 2] -= x0
    k[1, 2] -= y0
    return k


def zoom_objects(objects: Objects, x0: float, y0: float, scale: float, size: tuple[int, int]) -> Objects:
    """The objects of the image zoomed in by ``scale`` >= 1 from the window at (x0, y0) of ``size / scale``.

    A zoom with the focal length kept is the same scene with every object ``scale`` times nearer: the 3D
    centre (x, y, z) becomes (x, y, z / scale), which projects through :func:`zoom_intrinsics` onto the zoomed
    2D box, and the physical size stays. The heading turns with the new viewing ray so that the observation
    angle, which is what the pixels show, is unchanged. Boxes that leave the image are clipped or dropped.
    """
    boxes = zoom_boxes(objects.boxes, x0, y0, scale, size)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes3d = objects.boxes3d.copy()
    ray = np.arctan2(boxes3d[:, 0], boxes3d[:, 2])
    boxes3d[:, 2] = boxes3d[:, 2] / scale
    boxes3d[:, 6] = wrap_angle(boxes3d[:, 6] + np.arctan2(boxes3d[:, 0], boxes3d[:, 2]) - ray)
    return Objects(boxes[keep], boxes3d[keep], objects.cls[keep], objects.track_id[keep], objects.conf[keep])


def zoom_boxes(boxes: np.ndarray, x0: float, y0: float, scale: float, size: tuple[int, int]) -> np.ndarray:
    """2D boxes ``(N, 4)`` of the image zoomed by ``scale`` from the window at (x0, y0) (see :func:`zoom_objects`)."""
    return crop_boxes(boxes, x0, y0, (size[0] / scale, size[1] / scale)) * scale


def zoom_intrinsics(intrinsics: np.ndarray, x0: float, y0: float, scale: float) -> np.ndarray:
    """Intrinsics of the zoomed image, focal length kept: u' = scale (u - x0) = fx X / (Z / scale) + scale (cx - x0)."""
    k = crop_intrinsics(intrinsics, x0, y0)
    k[:2, 2] *= scale
    return k


def flip_intrinsics(intrinsics: np.ndarray, width: float) -> np.ndarray:
    """Intrinsics of the mirrored image: u' = width - u = fx (-X) / Z + (width - cx)."""
    k = np.array(intrinsics, dtype=np.float64)
    k[0, 2] = width - k[0, 2]
    k[0, 1] = -k[0, 1]
    return k


def gaussian_radius(height: np.ndarray, width: np.ndarray, min_overlap: float = 0.7) -> np.ndarray:
    """CenterNet's heatmap radius: the largest corner shift keeping IoU >= min_overlap with the true box.

    Three cases (both corners move inwards, outwards, one each) each give a quadratic in the radius;
    the smallest root is the radius that is safe for all three.
    """
    h, w = np.asarray(height, dtype=np.float64), np.asarray(width, dtype=np.float64)
    o = min_overlap
    radii = []
    for a, b, c in (
        (1.0, h + w, w * h * (1 - o) / (1 + o)),
        (4.0, 2 * (h + w), (1 - o) * w * h),
        (4 * o, -2 * o * (h + w), (o - 1) * w * h),
    ):
        # CenterNet divides by 2 rather than 2a; kept, since every CenterNet-family model is tuned to it.
        radii.append((b + np.sqrt(np.maximum(b**2 - 4 * a * c, 0.0))) / 2)
    return np.maximum(0, np.floor(np.minimum.reduce(radii))).astype(np.int64)


def draw_gaussian(heatmap: np.ndarray, centre: tuple[int, int], radius: int) -> None:
    """Max-combine a Gaussian peak of value 1 at integer ``centre`` (x, y) into ``heatmap`` in place."""
    sigma = (2 * radius + 1) / 6
    x, y = centre
    hgt, wid = heatmap.shape
    left, right = min(x, radius), min(wid - x, radius + 1)
    top, bottom = min(y, radius), min(hgt - y, radius + 1)
    if left + right <= 0 or top + bottom <= 0:
        return
    ys = np.arange(-top, bottom)[:, None]
    xs = np.arange(-left, right)[None, :]
    g = np.exp(-(xs**2 + ys**2) / (2 * sigma**2))
    region = heatmap[y - top:y + bottom, x - left:x + right]
    np.maximum(region, g, out=region)


def geometric_depth_prior(fy: float | np.ndarray, h3d: np.ndarray, h2d: np.ndarray) -> np.ndarray:
    """Pinhole depth prior z ~ fy * h3d / h2d (fy and h2d in the same pixels; h2d clamped to >= 1 px).

    Exact for an upright box seen at its centre; the regressed residual absorbs the rest (truncation,
    the box's projected depth extent near the camera).
    """
    return np.asarray(fy, np.float64) * np.asarray(h3d, np.float64) / np.maximum(h2d, MIN_BOX_HEIGHT)


def check_depth_mode(depth_mode: str) -> str:
    if depth_mode not in DEPTH_MODES:
        raise ValueError(f"unknown CenterTrack depth_mode {depth_mode!r}; expected one of {DEPTH_MODES}")
    return depth_mode


def encode_alpha(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """alpha -> (bin membership (N, 2) in {0,1}, residual to each bin centre (N, 2))."""
    res = wrap_angle(np.asarray(alpha)[:, None] - ROT_BIN_CENTRES[None, :])
    return (np.abs(res) < ROT_BIN_HALF_WIDTH).astype(np.float32), res.astype(np.float32)


def render_pre_hm(centres: np.ndarray, sizes: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """The previous-frame heatmap fed to the network: ``(1, H, W)`` Gaussians at input-pixel centres.

    ``sizes`` are (w, h) of the boxes in input pixels and set each Gaussian's radius.
    """
    w_in, h_in = input_size
    hm = np.zeros((h_in, w_in), dtype=np.float32)
    if len(centres):
        radius = gaussian_radius(np.ceil(sizes[:, 1]), np.ceil(sizes[:, 0]))
        for (cx, cy), r in zip(centres, radius, strict=True):
            ix, iy = int(cx), int(cy)
            if 0 <= ix < w_in and 0 <= iy < h_in:
                draw_gaussian(hm, (ix, iy), int(r))
    return hm[None]


def disturb_previous(centres: np.ndarray, sizes: np.ndarray, rng: np.random.Generator, hm_disturb: float,
                     lost_disturb: float, fp_disturb: float) -> tuple[np.ndarray, np.ndarray]:
    """CenterTrack's training noise on the previous frame's detections (what the heatmap shows).

    Each centre is jittered by a normal of ``hm_disturb`` x box size, dropped with probability
    ``lost_disturb`` (a missed detection), and with probability ``fp_disturb`` gets a false positive
    nearby (offset by ~ one box size). The tracking targets still use the true previous centres.
    """
    out_c, out_s = [], []
    for c, s in zip(centres, sizes, strict=True):
        if rng.random() < fp_disturb:
            out_c.append(c + rng.normal(0, 0.5, 2) * s)
            out_s.append(s)
        if rng.random() < lost_disturb:
            continue
        out_c.append(c + rng.normal(0, hm_disturb, 2) * s)
        out_s.append(s)
    return np.array(out_c, dtype=np.float64).reshape(-1, 2), np.array(out_s, dtype=np.float64).reshape(-1, 2)


def render_targets(objects: Objects, intrinsics: np.ndarray, input_size: tuple[int, int], num_classes: int,
                   prev_centres: dict[int, np.ndarray] | None = None, dontcare: np.ndarray | None = None,
                   neg_weight: np.ndarray | None = None, max_objs: int = 64, depth_mode: str = "direct"
                   ) -> dict[str, np.ndarray]:
    """Dense and per-object targets for one frame.

    ``intrinsics`` are for the input-size image. ``prev_centres`` maps track id -> previous 2D centre
    (input pixels). ``neg_weight`` is an optional (H/4, W/4) map in [0, 1] scaling the negative
    heatmap loss per pixel (FNComp); DontCare boxes set it to 0 inside. Objects beyond ``max_objs``
    (nearest first) are dropped from regression but still drawn on the heatmap. ``depth_mode`` picks
    the ``dep`` target: z (m), or log(z) - log(prior) (see :data:`DEPTH_MODES`).
    """
    check_depth_mode(depth_mode)
    w_in, h_in = input_size
    wo, ho = w_in // DOWN, h_in // DOWN
    hm = np.zeros((num_classes, ho, wo), dtype=np.float32)
    nw = np.ones((ho, wo), dtype=np.float32) if neg_weight is None else np.asarray(neg_weight, np.float32).copy()
    if nw.shape != (ho, wo):
        raise ValueError(f"neg_weight map is {nw.shape}, expected {(ho, wo)} (input size / {DOWN})")
    t = {
        "ind": np.zeros(max_objs, np.int64), "cls": np.zeros(max_objs, np.int64),
        "mask": np.zeros(max_objs, np.float32), "weight": np.zeros(max_objs, np.float32),
        "reg": np.zeros((max_objs, 2), np.float32), "wh": np.zeros((max_objs, 2), np.float32),
        "tracking": np.zeros((max_objs, 2), np.float32), "tracking_mask": np.zeros(max_objs, np.float32),
        "dep": np.zeros((max_objs, 1), np.float32), "dim": np.zeros((max_objs, 3), np.float32),
        "rot_bin": np.zeros((max_objs, 2), np.float32), "rot_res": np.zeros((max_objs, 2), np.float32),
        "amodal": np.zeros((max_objs, 2), np.float32), "mask3d": np.zeros(max_objs, np.float32),
    }
    if dontcare is not None:
        for x1, y1, x2, y2 in np.asarray(dontcare).reshape(-1, 4) / DOWN:
            nw[int(max(y1, 0)):int(np.ceil(y2)), int(max(x1, 0)):int(np.ceil(x2))] = 0.0
    prev_centres = prev_centres or {}
    boxes = objects.boxes / DOWN
    has3d = np.isfinite(objects.boxes3d).all(axis=1)
    order = np.argsort(np.where(has3d, objects.boxes3d[:, 2], np.inf), kind="stable")
    k = 0
    for i in order:
        x1, y1, x2, y2 = boxes[i]
        bw, bh = x2 - x1, y2 - y1
        if bw <= 0 or bh <= 0:
            continue
        ct = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        ct_int = np.floor(ct).astype(np.int64)
        if not (0 <= ct_int[0] < wo and 0 <= ct_int[1] < ho):
            continue
        radius = int(gaussian_radius(np.ceil(bh), np.ceil(bw)))
        draw_gaussian(hm[objects.cls[i]], (int(ct_int[0]), int(ct_int[1])), radius)
        if k >= max_objs:
            continue
        t["ind"][k] = ct_int[1] * wo + ct_int[0]
        t["cls"][k] = objects.cls[i]
        t["mask"][k] = 1.0
        t["weight"][k] = objects.conf[i]
        t["reg"][k] = ct - ct_int
        t["wh"][k] = (bw, bh)
        prev = prev_centres.get(int(objects.track_id[i]))
        if prev is not None:
            t["tracking"][k] = np.asarray(prev) / DOWN - ct_int
            t["tracking_mask"][k] = 1.0
        if has3d[i]:
            box = objects.boxes3d[i]
            centre3d = box_center(box[None])[0]
            amodal = project_points(centre3d, intrinsics) / DOWN
            t["amodal"][k] = amodal - ct_int
            if depth_mode == "geometric":
                # A box at or behind the camera has no log depth: clamp it (such rows are label noise).
                prior = geometric_depth_prior(intrinsics[1, 1], box[3], bh * DOWN)
                t["dep"][k] = np.log(max(box[2], 1e-3)) - np.log(max(float(prior), 1e-3))
            else:
                t["dep"][k] = box[2]
            t["dim"][k] = np.log(box[3:6])
            bins, res = encode_alpha(observation_angle(box[None]))
            t["rot_bin"][k], t["rot_res"][k] = bins[0], res[0]
            t["mask3d"][k] = 1.0
        k += 1
    return {"hm": hm, "neg_weight": nw, **t}
