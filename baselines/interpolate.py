"""``interpolate``: the naive labeler every auto-labeler is compared with.

Between two consecutive labels of a track, the 3D box moves linearly: the box centre is
interpolated in the *world* frame (the camera moves, so camera-frame interpolation would bend
the path with the ego motion), the heading by the shorter way round the circle, the size
linearly. Each interpolated box is expressed in its own frame's camera and projected to give the
2D box. Nothing is extrapolated before a track's first or after its last label. Confidence is 1
on labelled frames and halves every ``conf_halflife`` frames away from the nearest label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.data.geometry import boxes_from_world, boxes_to_world, project_boxes_2d, wrap_angle
from bench.data.tracks import BOX3D_COLUMNS, DONTCARE, empty_tracks, has_3d, make_tracks, sort_tracks
from bench.interface import Labeler, RunContext, TrainView
from bench.labels.degrade import check_share, drop_pseudolabels


class Interpolate(Labeler):
    outputs = "3d-tracks"

    def __init__(self, conf_halflife: float = 5.0, min_conf: float = 0.05, drop_pseudolabels: float = 0.0) -> None:
        super().__init__(conf_halflife=conf_halflife, min_conf=min_conf, drop_pseudolabels=drop_pseudolabels)
        self.conf_halflife = float(conf_halflife)
        self.min_conf = float(min_conf)
        # A planted regression for measuring the gate's power (bench.labels.degrade); 0 changes nothing.
        self.drop_pseudolabels = check_share(drop_pseudolabels)

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        labels = train.labels
        labels = labels[(labels["cls"] != DONTCARE).to_numpy() & has_3d(labels)]
        tables = []
        groups = list(labels.groupby(["seq", "track_id"], sort=True))
        for i, ((seq, _track_id), rows) in enumerate(groups):
            tables.append(self._track(train.sequences[seq], rows.sort_values("frame")))
            ctx.progress(i + 1, len(groups), "interpolate")
        rows = [t for t in tables if len(t)]
        if not rows:
            return empty_tracks()
        table = sort_tracks(make_tracks(pd.concat(rows, ignore_index=True), source="interpolate"))
        return drop_pseudolabels(table, self.drop_pseudolabels, ctx.seed)

    def _track(self, sequence, rows: pd.DataFrame) -> pd.DataFrame:
        frames = rows["frame"].to_numpy(dtype=np.int64)
        index = np.array([sequence.index_of(int(f)) for f in frames])
        boxes = rows[list(BOX3D_COLUMNS)].to_numpy(dtype=np.float64)
        poses = sequence.cam_to_world[index]
        centres = np.empty((len(rows), 3))
        headings = np.empty(len(rows))
        for j in range(len(rows)):
            c, h = boxes_to_world(boxes[j], poses[j])
            centres[j], headings[j] = c[0], h[0]
        # Unwrap so that linear interpolation between neighbours takes the shorter way round.
        headings = headings[0] + np.concatenate([[0.0], np.cumsum(wrap_angle(np.diff(headings)))])
        sizes = boxes[:, 3:6]

        all_frames = np.asarray(sequence.frame_ids)
        target = all_frames[(all_frames >= frames[0]) & (all_frames <= frames[-1])]
        xs = frames.astype(np.float64)
        centre_t = np.stack([np.interp(target, xs, centres[:, k]) for k in range(3)], axis=1)
        heading_t = np.interp(target, xs, headings)
        size_t = np.stack([np.interp(target, xs, sizes[:, k]) for k in range(3)], axis=1)

        # Distance in frames to the nearest label -> confidence.
        nearest = np.abs(target[:, None] - frames[None, :]).min(axis=1)
        conf = np.maximum(self.min_conf, 0.5 ** (nearest / self.conf_halflife))
        conf[nearest == 0] = 1.0

        target_index = np.array([sequence.index_of(int(f)) for f in target])
        out_boxes = np.empty((len(target), 7))
        box2d = np.empty((len(target), 4))
        for j, t in enumerate(target_index):
            pose = sequence.cam_to_world[t]
            out_boxes[j] = boxes_from_world(centre_t[j], heading_t[j:j + 1], size_t[j], pose)[0]
            box2d[j] = project_boxes_2d(out_boxes[j:j + 1], sequence.intrinsics[t], sequence.image_size)[0]
        # The nearest label gives the class (constant along a track in practice) and, on labelled frames, exact rows.
        nearest_label = np.abs(target[:, None] - frames[None, :]).argmin(axis=1)
        visible = (np.isfinite(box2d).all(axis=1) & (box2d[:, 2] > box2d[:, 0]) & (box2d[:, 3] > box2d[:, 1])
                   & (out_boxes[:, 2] > 0))
        table = pd.DataFrame({
            "seq": sequence.name,
            "frame": target,
            "track_id": int(rows["track_id"].iloc[0]),
            "cls": rows["cls"].to_numpy()[nearest_label],
            "score": conf,
            "x1": box2d[:, 0], "y1": box2d[:, 1], "x2": box2d[:, 2], "y2": box2d[:, 3],
            **{c: out_boxes[:, k] for k, c in enumerate(BOX3D_COLUMNS)},
            "occlusion": 0, "truncation": 0, "visibility": 0,
            "conf": conf,
        })
        # Labelled frames keep the human label exactly (interpolation would only add round-off).
        labelled = np.isin(target, frames)
        exact = rows.set_index("frame").loc[target[labelled]]
        for column in ("x1", "y1", "x2", "y2", *BOX3D_COLUMNS, "occlusion", "truncation", "visibility"):
            table.loc[labelled, column] = exact[column].to_numpy()
        return table[visible | labelled].reset_index(drop=True)
