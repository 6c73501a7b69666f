"""Small real methods for the harness tests. Each logs its calls into its work folder, so tests can
count which stages actually ran."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from bench.data.sequence import PointTracks
from bench.data.tracks import empty_tracks
from bench.interface import Labeler, Learner, Method, RunContext, SplitView, TrainView


def log_call(ctx: RunContext, what: str) -> None:
    with open(ctx.work_dir / "calls.log", "a") as handle:
        handle.write(what + "\n")


def calls(run_dir) -> list[str]:
    path = run_dir / "work" / "calls.log"
    return path.read_text().split() if path.exists() else []


class CopyLabeler(Labeler):
    """Returns the sparse labels unchanged (after an optional delay, to be killed in)."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay=delay)
        self.delay = delay

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        log_call(ctx, "label")
        time.sleep(self.delay)
        return train.labels.copy()


class FailingLabeler(Labeler):
    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        raise RuntimeError("this labeler always fails")


class MeanBoxLearner(Learner):
    """Learns the mean 2D box of its labels; predicts it as one track in every frame. Checkpointed."""

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        log_call(ctx, "fit")
        self.box = labels[["x1", "y1", "x2", "y2"]].to_numpy(dtype=float).mean(axis=0)

    def state_dict(self):
        import torch

        return {"box": torch.tensor(self.box)}

    def load_state_dict(self, state) -> None:
        self.box = state["box"].numpy()

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        log_call(ctx, "predict")
        rows = [dict(seq=name, frame=int(f), track_id=1, cls="Car", x1=self.box[0], y1=self.box[1],
                     x2=self.box[2], y2=self.box[3])
                for name, seq in split.sequences.items() for f in seq.frame_ids]
        return pd.DataFrame(rows).pipe(lambda d: d if len(d) else empty_tracks()).pipe(_tracks)


def _tracks(frame: pd.DataFrame) -> pd.DataFrame:
    from bench.data.tracks import make_tracks

    return make_tracks(frame)


def register_all() -> None:
    from tiny import load_tiny

    from bench import registry

    registry.register("copy", CopyLabeler)
    registry.register("failing", FailingLabeler)
    registry.register("meanbox", MeanBoxLearner)
    registry.register("raypoints", RayPointTracker)
    registry.register_dataset("tiny", load_tiny)


__all__ = ["CopyLabeler", "FailingLabeler", "MeanBoxLearner", "calls", "np", "register_all"]


class RayPointTracker(Method):
    """Point tracks: each query point held still at 20 m along its query ray (a weak but valid answer)."""

    outputs = "point-tracks"

    def fit(self, train, labels, ctx) -> None:
        log_call(ctx, "fit")

    def predict(self, split, ctx):
        out = {}
        for name, seq in split.sequences.items():
            q = split.queries[name]
            k = seq.intrinsics[0]
            rays = np.column_stack([(q[:, 0] - k[0, 2]) / k[0, 0], (q[:, 1] - k[1, 2]) / k[1, 1], np.ones(len(q))])
            xyz = np.repeat((rays * 20.0)[None], seq.num_frames, axis=0)
            out[name] = PointTracks(xyz=xyz, visible=np.ones(xyz.shape[:2], bool), queries=q)
        return out
