"""``sparse``: the lower bound. The base tracker trains on the budget's human labels and nothing else.

An identity labeler: every budget label comes back unchanged with confidence 1, so the base
tracker sees only the k labelled boxes per track. Unlabelled objects in a labelled frame are then
negatives for the detector, which is why this bound is low (Sparse3DTrack, Table 1, lower rows).
"""

from __future__ import annotations

import pandas as pd

from bench.data.tracks import make_tracks, sort_tracks
from bench.interface import Labeler, RunContext, TrainView


class Sparse(Labeler):
    outputs = "3d-tracks"

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        labels = train.labels.copy()
        labels["conf"] = 1.0  # human labels: full confidence
        return sort_tracks(make_tracks(labels, source="sparse"))
