"""``oracle``: the upper bound. The base tracker trains on every training label.

The one labeler that declares ``sees_ground_truth``: for it (and only it) the runner cuts no
budget and hands the full training track table through the firewall's ``TrainView`` (decided in
``bench.runner.jobs.decide_budget``); the run has no budget (stored as ``None``, shown as "all").
The labels come back unchanged with confidence 1.
"""

from __future__ import annotations

from typing import ClassVar

import pandas as pd

from bench.data.tracks import make_tracks, sort_tracks
from bench.interface import Labeler, RunContext, TrainView


class Oracle(Labeler):
    outputs = "3d-tracks"
    sees_ground_truth: ClassVar[bool] = True

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        if train.budget is not None:
            # The runner must hand an oracle every label; a budget here means it cut them.
            raise ValueError(f"oracle expects every training label (budget None), got budget {train.budget}")
        labels = train.labels.copy()
        labels["conf"] = 1.0
        return sort_tracks(make_tracks(labels, source="oracle"))
