"""Sparse3DTrack's geometry module as a 3D lifter: the ``B`` of ``gt2d+sparse3dtrack``, ``sam2+sparse3dtrack``.

The paper's "2D tracker + our geometry" baselines. It holds a :class:`~.labeler.Sparse3DTrackLift` (same
parameters: the profile's ``methods.sparse3dtrack`` section), trains its depth and geometry networks on the
budget's 3D labels (``fit``), and lifts every given 2D box with the geometry network (``lift_frames``). It
detects nothing on its own, so it is a lifter only (not a method to run alone).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from bench.data.sequence import Sequence
from bench.data.tracks import BOX3D_COLUMNS, make_tracks
from bench.interface import RunContext, SplitView, TrainView
from bench.lift import LiftedFrame, Lifter
from methods.sparse3dtrack.labeler import Sparse3DTrackLift


class GeometryLifter(Lifter):
    outputs: ClassVar[str] = "3d-detections"

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.inner = Sparse3DTrackLift(**settings)  # checks every name and value now

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        self.inner.fit(train, ctx)

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        raise NotImplementedError("sparse3dtrack's geometry module lifts given 2D boxes; it detects nothing alone")

    def lift_frames(self, seq: Sequence, boxes: dict[int, tuple[np.ndarray, list[str]]], ctx: RunContext
                    ) -> dict[int, LiftedFrame]:
        from methods.sparse3dtrack.geometry import lift_boxes

        if self.inner.geometry is None:
            raise RuntimeError("sparse3dtrack lifter: call fit() before lift_frames()")
        _, device = self.inner._setup(ctx)
        rows = []
        for t, (b2d, names) in boxes.items():
            for j, (box, name) in enumerate(zip(b2d, names, strict=True)):
                rows.append({"seq": seq.name, "frame": int(seq.frame_ids[t]), "track_id": j, "cls": name,
                             "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3]})
        if not rows:
            return {}
        table = make_tracks(rows, source="sparse3dtrack lifter")
        lifted = lift_boxes(self.inner.geometry, self.inner.depth, {seq.name: seq}, table, device=device)
        out, start = {}, 0
        for t, (b2d, _) in boxes.items():
            b3d = lifted[list(BOX3D_COLUMNS)].to_numpy(np.float64)[start:start + len(b2d)]
            # The geometry network gives no confidence of its own: the 2D source's confidence carries.
            out[t] = LiftedFrame(b3d, np.ones(len(b2d)), np.zeros(len(b2d), bool))
            start += len(b2d)
        return out
