"""Run a trained CenterTrack over videos and return a bench track table.

Frame by frame, as CenterTrack does online: the network sees the current image, the previous
image (the current one again on the first frame) and a heatmap of the previous frame's tracked
objects; the tracker links the decoded detections by their tracking offsets.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from baselines.centertrack.decode import decode
from baselines.centertrack.model import CenterTrackNet
from baselines.centertrack.targets import render_pre_hm, scale_intrinsics
from baselines.centertrack.tracker import Tracker
from baselines.centertrack.train import normalise, resize_images
from bench.data.sequence import Sequence
from bench.data.tracks import empty_tracks, make_tracks


@torch.no_grad()
def track_sequence(model: CenterTrackNet, seq: Sequence, classes: tuple[str, ...], cfg: dict,
                   device: str = "cpu") -> tuple[pd.DataFrame, dict]:
    """Track one sequence; returns (track table, timing stats: frames and network+decode seconds)."""
    dev = torch.device(device)
    model.eval()
    w_in, h_in = cfg["input_size"]
    sx, sy = w_in / seq.image_size[0], h_in / seq.image_size[1]
    images = resize_images(seq, cfg["input_size"])
    tracker = Tracker(new_thresh=cfg["new_thresh"], match_thresh=cfg["track_thresh"], max_age=cfg["max_age"])
    pre_hm = np.zeros((1, h_in, w_in), np.float32)
    rows = []
    seconds = 0.0
    for t in range(seq.num_frames):
        start = time.perf_counter()
        img = normalise(images[t:t + 1]).to(dev)
        pre = normalise(images[max(t - 1, 0):max(t - 1, 0) + 1]).to(dev)
        out = model(img, pre, torch.from_numpy(pre_hm)[None].to(dev))
        kmat = scale_intrinsics(seq.intrinsics[t], sx, sy)
        dets = decode(out, kmat, k=cfg["topk"], threshold=cfg["track_thresh"],
                      depth_mode=cfg.get("depth_mode", "direct"))[0]
        if cfg.get("max_depth"):  # report only the range the training labels covered
            dets = dets.select(dets.boxes3d[:, 2] <= cfg["max_depth"])
        ids = tracker.step(dets)
        seconds += time.perf_counter() - start
        kept = dets.select(ids >= 0)
        ids = ids[ids >= 0]
        # The next frame's heatmap shows what was tracked here (input pixels).
        pre_hm = render_pre_hm(kept.centre, kept.boxes[:, 2:] - kept.boxes[:, :2], cfg["input_size"])
        orig = kept.rescaled(sx, sy)
        scores = orig.score_3d()  # association used the 2D score; the output ranks by 3D confidence too
        w, h = seq.image_size
        boxes = orig.boxes.copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        for j in range(len(orig)):
            b3 = orig.boxes3d[j]
            rows.append({
                "seq": seq.name, "frame": int(seq.frame_ids[t]), "track_id": int(ids[j]),
                "cls": classes[int(orig.cls[j])], "score": float(scores[j]),
                "x1": boxes[j, 0], "y1": boxes[j, 1], "x2": boxes[j, 2], "y2": boxes[j, 3],
                "x": b3[0], "y": b3[1], "z": b3[2], "h": b3[3], "w": b3[4], "l": b3[5], "yaw": b3[6],
            })
    table = make_tracks(rows, source=f"centertrack predictions for {seq.name}") if rows else empty_tracks()
    return table, {"frames": seq.num_frames, "seconds": seconds}


def track_sequences(model: CenterTrackNet, sequences: dict[str, Sequence], classes: tuple[str, ...], cfg: dict,
                    device: str = "cpu") -> tuple[pd.DataFrame, dict]:
    """Track every sequence; stats include ``fps`` (network + decoding + association, images already loaded)."""
    tables, frames, seconds = [], 0, 0.0
    for name in sorted(sequences):
        table, stats = track_sequence(model, sequences[name], classes, cfg, device)
        tables.append(table)
        frames += stats["frames"]
        seconds += stats["seconds"]
    nonempty = [t for t in tables if len(t)]
    table = pd.concat(nonempty, ignore_index=True) if nonempty else empty_tracks()
    return table, {"frames": frames, "seconds": seconds, "fps": frames / seconds if seconds else float("nan")}
