"""Ground truth from a rendered frame: KITTI-style 2D/3D boxes, levels, DontCare, extras, point tracks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.data.geometry import boxes_from_world, project_boxes_2d
from bench.data.sequence import PointTracks
from bench.data.synth.presets import WorldConfig
from bench.data.synth.render import Frame
from bench.data.synth.world import World
from bench.data.tracks import DONTCARE, TRACK_COLUMNS, TRACK_SCHEMA, validate_tracks

DONTCARE_RANGE = 150.0  # visible objects up to here that are not labelled become DontCare regions
LIDAR_RANGE = 100.0


def occlusion_level(visible_fraction: np.ndarray) -> np.ndarray:
    """KITTI occlusion: 0 fully visible, 1 partly, 2 largely occluded, 3 unknown (nothing visible)."""
    v = np.asarray(visible_fraction)
    return np.select([v >= 0.85, v >= 0.4, v > 0], [0, 1, 2], 3).astype(np.int64)


def visibility_bin(visible_fraction: np.ndarray) -> np.ndarray:
    """nuScenes visibility token: 1 (0-40 %), 2 (40-60 %), 3 (60-80 %), 4 (80-100 %)."""
    v = np.asarray(visible_fraction)
    return (1 + (v >= 0.4).astype(np.int64) + (v >= 0.6) + (v >= 0.8)).astype(np.int64)


def truncation_level(outside_fraction: np.ndarray) -> np.ndarray:
    """KITTI tracking truncation: 0 inside the image, 1 partly outside, 2 mostly (>= 50 %) outside."""
    f = np.asarray(outside_fraction)
    return np.select([f < 0.01, f < 0.5], [0, 1], 2).astype(np.int64)


def frame_labels(world: World, frame: Frame, index: int, intrinsics: np.ndarray, cfg: WorldConfig,
                 seq: str, frame_id: int) -> tuple[list[dict], list[dict]]:
    """Track-table rows and box extras (num_lidar_pts, vx, vy) of one frame."""
    objs = world.objects
    if not objs:
        return [], []
    width, height = cfg.width, cfg.height
    pose = world.cam_to_world[index]
    hwl = np.array([o.hwl for o in objs])
    xy = np.array([o.xy[index] for o in objs])
    heading = np.array([o.heading[index] for o in objs])
    centres = np.concatenate([xy, hwl[:, :1] / 2], axis=1)
    boxes = boxes_from_world(centres, heading, hwl, pose)
    # Objects in view; those hidden entirely, and mostly by buildings, are not labelled (no annotator or
    # LiDAR sees them), while objects hidden by other road users are kept with occlusion 3, as in KITTI.
    behind_walls = (frame.visible == 0) & (frame.behind_scenery >= 0.5 * frame.amodal)
    candidates = np.flatnonzero((frame.amodal > 0) & ~behind_walls)
    if len(candidates) == 0:
        return [], []
    boxes = boxes[candidates]
    clipped = project_boxes_2d(boxes, intrinsics, (width, height))
    full = project_boxes_2d(boxes, intrinsics)
    area = lambda b: np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        outside = np.nan_to_num(1 - area(clipped) / area(full), nan=1.0)
    visible_frac = frame.visible[candidates] / frame.amodal[candidates]
    depth = boxes[:, 2]
    min_height = 10.0 * height / 375.0  # KITTI-scaled: boxes under ~10 px tall at 375 px are DontCare
    labelled = (depth <= cfg.max_depth) & (clipped[:, 3] - clipped[:, 1] >= min_height) & (depth > 0)
    dontcare = ~labelled & (frame.visible[candidates] > 0) & (depth <= DONTCARE_RANGE)
    occ, trunc, vis = occlusion_level(visible_frac), truncation_level(outside), visibility_bin(visible_frac)
    fx, fy = intrinsics[0, 0], intrinsics[1, 1]
    pixel_deg2 = (180 / np.pi) ** 2 / (fx * fy)
    rows, extras = [], []
    for k, i in enumerate(candidates):
        ob = objs[i]
        box2d = dict(zip(("x1", "y1", "x2", "y2"), (float(v) for v in clipped[k]), strict=True))
        if labelled[k]:
            rows.append({"seq": seq, "frame": frame_id, "track_id": ob.track_id, "cls": ob.cls, "score": 1.0,
                         **box2d, **dict(zip(("x", "y", "z", "h", "w", "l", "yaw"), boxes[k], strict=True)),
                         "occlusion": occ[k], "truncation": trunc[k], "visibility": vis[k], "conf": 1.0})
            lidar = frame.visible[i] * pixel_deg2 / cfg.lidar_cell_deg2 if depth[k] <= LIDAR_RANGE else 0.0
            extras.append({"seq": seq, "frame": frame_id, "track_id": ob.track_id,
                           "num_lidar_pts": int(np.round(lidar)) if frame.visible[i] > 0 else 0,
                           "vx": float(ob.velocity[index, 0]), "vy": float(ob.velocity[index, 1]),
                           "visible_fraction": float(visible_frac[k])})
        elif dontcare[k]:
            rows.append({"seq": seq, "frame": frame_id, "track_id": -1, "cls": DONTCARE, "score": 1.0, **box2d,
                         "occlusion": -1, "truncation": -1, "visibility": 0, "conf": 1.0})
    return rows, extras


def object_points_world(world: World, obj_index: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """World positions ``(T, N, 3)`` over all frames of object surface points given in the KITTI box frame."""
    xy = np.stack([world.objects[i].xy for i in obj_index], axis=1)  # (T, N, 2)
    heading = np.stack([world.objects[i].heading for i in obj_index], axis=1)
    fwd, up, left = surface[:, 0], -surface[:, 1], surface[:, 2]
    c, s = np.cos(heading), np.sin(heading)
    return np.stack([xy[..., 0] + c * fwd - s * left, xy[..., 1] + s * fwd + c * left,
                     np.broadcast_to(up, c.shape)], -1)


def point_tracks(world: World, depth: np.ndarray, instance: np.ndarray, surface: np.ndarray,
                 intrinsics: np.ndarray, count: int, rng: np.random.Generator) -> PointTracks:
    """TAPVid-3D-style trajectories of ``count`` surface points, half on objects, half on the scene.

    Each point is queried at a random frame and pixel; its position in every frame follows its
    object's pose (or stays put in the world); it is visible where it projects into the image
    and the rendered depth there does not lie in front of it.
    """
    picks = []
    want_obj = count // 2 if (instance >= 0).any() else 0
    for n, on_object in ((want_obj, True), (count - want_obj, False)):
        if n == 0:
            continue
        mask = (instance >= 0) if on_object else (np.isfinite(depth) & (instance < 0))
        flat = np.flatnonzero(mask)
        picks.append(rng.choice(flat, size=n, replace=len(flat) < n))
    t, v, u = np.unravel_index(np.concatenate(picks), depth.shape)
    return tracks_of_pixels(world, depth, instance, surface, intrinsics, t, v, u)


def dense_point_tracks(world: World, depth: np.ndarray, instance: np.ndarray, surface: np.ndarray,
                       intrinsics: np.ndarray, stride: int = 1) -> PointTracks:
    """Kubric3D-style dense tracks: every ``stride``-th pixel of the first frame that sees a surface (sky has
    no 3D point, so it has no track), in row-major order, queried at frame 0."""
    v, u = np.nonzero(np.isfinite(depth[0]))
    keep = (v % stride == 0) & (u % stride == 0)
    v, u = v[keep], u[keep]
    return tracks_of_pixels(world, depth, instance, surface, intrinsics, np.zeros(len(v), dtype=np.int64), v, u)


def tracks_of_pixels(world: World, depth: np.ndarray, instance: np.ndarray, surface: np.ndarray,
                     intrinsics: np.ndarray, t: np.ndarray, v: np.ndarray, u: np.ndarray) -> PointTracks:
    """Trajectories of the surface points seen at pixels ``(u, v)`` of frames ``t`` (all with finite depth)."""
    t_len, height, width = depth.shape
    kinv = np.linalg.inv(intrinsics)
    queries = np.stack([u + 0.5, v + 0.5, t], -1).astype(np.float64)
    pts_world = np.empty((t_len, len(t), 3))
    on_object = instance[t, v, u] >= 0
    obj = np.flatnonzero(on_object)
    if len(obj):
        pts_world[:, obj] = object_points_world(world, instance[t[obj], v[obj], u[obj]],
                                                surface[t[obj], v[obj], u[obj]].astype(np.float64))
    scene = np.flatnonzero(~on_object)
    if len(scene):  # fixed in the world: back-project with the query frame's depth and pose
        ray = np.stack([u[scene] + 0.5, v[scene] + 0.5, np.ones(len(scene))], -1) @ kinv.T
        cam = ray * depth[t[scene], v[scene], u[scene]][:, None]
        pose = world.cam_to_world[t[scene]]
        pts_world[:, scene] = np.einsum("nij,nj->ni", pose[:, :3, :3], cam) + pose[:, :3, 3]
    world_to_cam = np.linalg.inv(world.cam_to_world)
    xyz = np.einsum("tij,tnj->tni", world_to_cam[:, :3, :3], pts_world) + world_to_cam[:, None, :3, 3]
    uvw = xyz @ intrinsics.T
    with np.errstate(divide="ignore", invalid="ignore"):
        px, py = uvw[..., 0] / uvw[..., 2], uvw[..., 1] / uvw[..., 2]
    inside = (xyz[..., 2] > 0.1) & (px >= 0) & (px < width) & (py >= 0) & (py < height)
    ui = np.clip(np.nan_to_num(px), 0, width - 1).astype(np.int64)
    vi = np.clip(np.nan_to_num(py), 0, height - 1).astype(np.int64)
    rendered = depth[np.arange(t_len)[:, None], vi, ui]
    visible = inside & (rendered >= xyz[..., 2] - np.maximum(0.05, 0.03 * xyz[..., 2]))
    return PointTracks(xyz=xyz.astype(np.float32), visible=visible, queries=queries)


# The far value a video depth network gives the sky (it never outputs infinity); beyond every labelled range.
SKY_DEPTH = 200.0


def video_depth(depth: np.ndarray, rng: np.random.Generator, scale_drift: float = 0.01,
                pixel_noise: float = 0.02) -> np.ndarray:
    """The given video depth of a sequence: the rendered depth through a noise model of a monocular video
    depth network (what DELTA's inputs come from), float16 metres.

    Per frame, a global scale that drifts as a random walk (``scale_drift`` = log-scale step per frame: video
    depth is consistent only up to a slowly varying scale); per pixel, multiplicative log-normal noise
    (``pixel_noise``); the sky at :data:`SKY_DEPTH`. Seeded by ``rng``, so the input is part of the dataset.
    """
    t_len = depth.shape[0]
    log_scale = np.cumsum(rng.normal(0.0, scale_drift, t_len))
    log_scale -= log_scale[0]  # frame 0 keeps the true scale: drift is relative to the first frame
    noise = rng.normal(0.0, pixel_noise, depth.shape)
    given = np.where(np.isfinite(depth), depth, SKY_DEPTH) * np.exp(log_scale[:, None, None] + noise)
    return np.minimum(given, SKY_DEPTH).astype(np.float16)


def public_detections(tracks: pd.DataFrame, visible_fraction: np.ndarray, width: int, height: int,
                      rng: np.random.Generator) -> pd.DataFrame:
    """Noisy MOTChallenge-style public detections: misses under occlusion, jitter, false positives.

    ``visible_fraction`` holds one value per non-DontCare row of ``tracks``, in order.
    """
    real = tracks[tracks["cls"] != DONTCARE].reset_index(drop=True)
    vis = np.asarray(visible_fraction, dtype=float)
    keep = rng.random(len(real)) < 0.25 + 0.7 * vis
    det = real[keep].copy()
    bw, bh = (det["x2"] - det["x1"]).to_numpy(), (det["y2"] - det["y1"]).to_numpy()
    cx = (det["x1"] + det["x2"]).to_numpy() / 2 + rng.normal(0, 0.06, len(det)) * bw
    cy = (det["y1"] + det["y2"]).to_numpy() / 2 + rng.normal(0, 0.05, len(det)) * bh
    bw, bh = bw * np.exp(rng.normal(0, 0.08, len(det))), bh * np.exp(rng.normal(0, 0.08, len(det)))
    det["x1"], det["x2"] = np.clip(cx - bw / 2, 0, width), np.clip(cx + bw / 2, 0, width)
    det["y1"], det["y2"] = np.clip(cy - bh / 2, 0, height), np.clip(cy + bh / 2, 0, height)
    det["score"] = np.clip(0.3 + 0.6 * vis[keep] + rng.normal(0, 0.1, len(det)), 0.01, 1.0)
    # False positives: a few per frame, plausible sizes standing on the lower half of the image.
    frames = tracks[["seq", "frame"]].drop_duplicates()
    fp = []
    for seq, frame in frames.itertuples(index=False):
        for _ in range(rng.poisson(0.4)):
            h = rng.uniform(0.05, 0.4) * height
            w = h * rng.uniform(0.35, 1.2)
            x1, y2 = rng.uniform(0, width - w), rng.uniform(0.5, 1.0) * height
            fp.append({"seq": seq, "frame": frame, "cls": "Pedestrian", "score": rng.uniform(0.01, 0.5),
                       "x1": x1, "y1": max(y2 - h, 0.0), "x2": x1 + w, "y2": y2})
    fps = pd.DataFrame(fp, columns=["seq", "frame", "cls", "score", "x1", "y1", "x2", "y2"])
    det = pd.concat([det[["seq", "frame", "cls", "score", "x1", "y1", "x2", "y2"]], fps], ignore_index=True)
    det["track_id"] = -1
    for col in ("x", "y", "z", "h", "w", "l", "yaw"):
        det[col] = np.nan
    det["occlusion"], det["truncation"], det["visibility"], det["conf"] = 0, 0, 0, 1.0
    det = det[list(TRACK_COLUMNS)].astype(TRACK_SCHEMA)
    det = det.sort_values(["seq", "frame", "score"], ascending=[True, True, False], kind="stable")
    det = det.reset_index(drop=True)
    validate_tracks(det, "synthetic public detections", unique_ids=False)
    return det
