"""Statistics of a dataset's ground truth: counts, track lengths, occlusion, look-alikes, depth range."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.data.sequence import Dataset, Split
from bench.data.tracks import DONTCARE

# Published figures of the real datasets the synthetic worlds imitate, for comparison: KITTI tracking (Geiger et
# al., CVPR 2012; cvlibs.net), nuScenes (Caesar et al., CVPR 2020; the devkit's train split, 2 Hz keyframes, CAM_FRONT)
# and the Waymo Open Dataset (Sun et al., CVPR 2020; FRONT camera). ``centertrack_input_rows``: the image height
# CenterTrack's public configs train at on that dataset (KITTI 1280x384, nuScenes 800x448), i.e. the object
# size in pixels the paper's base tracker sees there.
KITTI_TRACKING_REFERENCE: dict[str, object] = {
    "name": "KITTI tracking",
    "train_sequences": 21,
    "train_frames": 8008,
    "test_sequences": 29,
    "test_frames": 11095,
    "frame_rate": 10,
    "image_size": "~1242x375",
    "image_rows": 375,
    "centertrack_input_rows": 384,
}
REFERENCES: dict[str, dict[str, object]] = {
    "kitti": KITTI_TRACKING_REFERENCE,
    "nuscenes": {"name": "nuScenes", "train_sequences": 700, "train_frames": 28130, "frame_rate": 2,
                 "image_size": "1600x900", "image_rows": 900, "centertrack_input_rows": 448},
    "waymo": {"name": "Waymo Open", "train_sequences": 798, "train_frames": "~158k", "frame_rate": 10,
              "image_size": "1920x1280", "image_rows": 1280},
}


def reference_for(name: str) -> dict[str, object]:
    """The published figures of the real dataset ``name`` is (or imitates); {} when none is kept here."""
    family = name.removeprefix("synth-")
    return REFERENCES.get(family, {})


def _histogram(values: pd.Series, levels: list[int]) -> dict[int, float]:
    counts = values.value_counts()
    total = max(int(counts.sum()), 1)
    return {level: round(float(counts.get(level, 0)) / total, 4) for level in levels}


def split_stats(split: Split, attrs: pd.DataFrame | None = None) -> dict:
    """Counts and difficulty figures of one split; ``attrs`` (the generator's track_attrs) adds look-alikes."""
    gt = split.tracks
    real = gt[gt["cls"] != DONTCARE]
    frames = split.num_frames
    lengths = real.groupby(["seq", "track_id"]).size()
    out: dict[str, object] = {
        "sequences": len(split.sequences),
        "frames": frames,
        "boxes": len(real),
        "dontcare": int((gt["cls"] == DONTCARE).sum()),
        "boxes_per_frame": round(len(real) / max(frames, 1), 2),
        "tracks": int(len(lengths)),
        "track_length_mean": round(float(lengths.mean()), 1) if len(lengths) else 0.0,
        "track_length_median": float(lengths.median()) if len(lengths) else 0.0,
        "track_length_max": int(lengths.max()) if len(lengths) else 0,
        "classes": {str(k): int(v) for k, v in real["cls"].value_counts().items()},
        "occlusion": _histogram(real["occlusion"], [0, 1, 2, 3]),
        "truncation": _histogram(real["truncation"], [0, 1, 2]),
        "visibility": _histogram(real["visibility"], [1, 2, 3, 4]),
        "depth_min": round(float(real["z"].min()), 1) if len(real) else float("nan"),
        "depth_median": round(float(real["z"].median()), 1) if len(real) else float("nan"),
        "depth_max": round(float(real["z"].max()), 1) if len(real) else float("nan"),
        # How many pixels a detector gets per object: the first thing that sets how well depth can be read.
        "box_height_px_p10/p50": [round(float(v), 1) for v in np.percentile(real["y2"] - real["y1"], [10, 50])]
        if len(real) else [],
    }
    if attrs is not None and len(lengths):
        seen = lengths.reset_index()[["seq", "track_id"]]
        a = seen.merge(attrs, on=["seq", "track_id"], how="left")
        vehicles = a[a["cls"].isin(["Car", "Van", "Truck"])]
        twins = vehicles.groupby(["seq", "appearance"])["track_id"].transform("size")
        out["lookalike_share"] = round(float((twins > 1).mean()), 3) if len(vehicles) else 0.0
        out["moving_share"] = round(float((a["motion"] != "parked").mean()), 3)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` x1 y1 x2 y2 boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(inter / (area_a[:, None] + area_b[None, :] - inter))


def detection_stats(gt: pd.DataFrame, det: pd.DataFrame) -> dict[str, object]:
    """The kinds of error public detections carry, measured against the ground truth (IoU >= 0.5, one-to-one):
    recall of fully visible vs occluded boxes (misses under occlusion), false-positive share, jitter (1 - IoU of
    the matched pairs), and the score spread of true and false positives."""
    from scipy.optimize import linear_sum_assignment

    real = gt[gt["cls"] != DONTCARE]
    box = ["x1", "y1", "x2", "y2"]
    hit_gt = np.zeros(len(real), dtype=bool)
    hit_det = np.zeros(len(det), dtype=bool)
    ious: list[float] = []
    real = real.reset_index(drop=True)
    gt_pos = {key: np.asarray(idx) for key, idx in real.groupby(["seq", "frame"]).indices.items()}
    gt_boxes, det_boxes = real[box].to_numpy(float), det[box].to_numpy(float)
    for key, d_idx in det.reset_index(drop=True).groupby(["seq", "frame"]).indices.items():
        g_idx = gt_pos.get(key)
        if g_idx is None:
            continue
        iou = _iou(gt_boxes[g_idx], det_boxes[d_idx])
        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= 0.5
        hit_gt[g_idx[rows[ok]]] = True
        hit_det[np.asarray(d_idx)[cols[ok]]] = True
        ious += list(iou[rows, cols][ok])
    vis = real["visibility"].to_numpy()
    scores = det["score"].to_numpy(float)

    def share(mask: np.ndarray) -> float:
        return round(float(mask.mean()), 3) if len(mask) else float("nan")

    return {
        "det_per_frame": round(len(det) / max(det[["seq", "frame"]].drop_duplicates().shape[0], 1), 2),
        "det_recall_visible": share(hit_gt[vis >= 4]),
        "det_recall_occluded": share(hit_gt[vis <= 1]),
        "det_false_positive_share": share(~hit_det),
        "det_jitter_1-iou_median": round(1.0 - float(np.median(ious)), 3) if ious else float("nan"),
        "det_score_tp_p10/p90": [round(float(np.percentile(scores[hit_det], q)), 2) for q in (10, 90)]
        if hit_det.any() else [],
        "det_score_fp_p10/p90": [round(float(np.percentile(scores[~hit_det], q)), 2) for q in (10, 90)]
        if (~hit_det).any() else [],
    }


def point_track_stats(split: Split) -> dict[str, object]:
    """What dense 3D tracking needs to be hard: points that move in the world (objects), a moving camera,
    points that leave the image and points hidden behind others while inside it (occlusion)."""
    n = moving = hidden = inside_total = 0
    camera_path = []
    with_depth = sum(name in split.depth for name in split.points)
    for name, points in split.points.items():
        seq = split.sequences[name]
        xyz = np.asarray(points.xyz, dtype=np.float64)
        world = np.einsum("tij,tnj->tni", seq.cam_to_world[:, :3, :3], xyz) + seq.cam_to_world[:, None, :3, 3]
        moving += int((np.linalg.norm(world - world[:1], axis=-1).max(axis=0) > 0.1).sum())
        k = seq.intrinsics[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = k[0, 0] * xyz[..., 0] / xyz[..., 2] + k[0, 2]
            v = k[1, 1] * xyz[..., 1] / xyz[..., 2] + k[1, 2]
        w, h = seq.image_size
        inside = (xyz[..., 2] > 0.1) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        hidden += int((inside & ~points.visible).sum())
        inside_total += int(inside.sum())
        n += xyz.shape[1]
        camera_path.append(float(np.linalg.norm(np.diff(seq.cam_to_world[:, :3, 3], axis=0), axis=1).sum()))
    visible = np.mean([float(np.mean(p.visible)) for p in split.points.values()])
    return {"tracks": n, "tracks_per_video": round(n / len(split.points)),
            "query_frames": sorted({int(q) for p in split.points.values() for q in np.unique(p.queries[:, 2])})[:8],
            "visible_share": round(float(visible), 3), "on_moving_objects_share": round(moving / max(n, 1), 3),
            "occluded_in_image_share": round(hidden / max(inside_total, 1), 3),
            "camera_path_m_mean": round(float(np.mean(camera_path)), 1),
            "videos_with_given_depth": f"{with_depth}/{len(split.points)}"}


def dataset_stats(ds: Dataset) -> dict:
    """Per-split and total statistics of a dataset, next to the published figures of the dataset it imitates."""
    attrs = ds.meta.get("track_attrs")
    result: dict[str, object] = {"name": ds.name, "frame_rate": ds.frame_rate,
                                 "image_size": ds.meta.get("image_size"), "reference": reference_for(ds.name)}
    for name, split in (("train", ds.train), ("val", ds.val)):
        split_attrs = attrs[attrs["split"] == name].drop(columns="split") if attrs is not None else None
        figures = split_stats(split, split_attrs)
        if split.detections is not None:  # public detections (MOT17 det.txt, synth-mot): what errors they carry
            figures.update(detection_stats(split.tracks, split.detections))
        result[name] = figures
    for name, split in (("train", ds.train), ("val", ds.val)):
        if split.points:
            result[name]["point_tracks"] = point_track_stats(split)  # type: ignore[index]
    if ds.train.layers:
        depths = np.concatenate([layer["depth"][np.isfinite(layer["depth"])].ravel()[::97]
                                 for layer in ds.train.layers.values()])
        result["pixel_depth_p50_p95"] = [round(float(np.percentile(depths, q)), 1) for q in (50, 95)]
    return result
