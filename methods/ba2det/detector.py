"""Stage 2 of BA²-Det, static -> dynamic: the monocular 3D detector N_theta and its label assignment.

The detector is bench's CenterNet-style network (:class:`baselines.centertrack.learner.CenterTrackLearner`:
heatmap at the 2D box centre, 2D size, depth, dimensions, orientation bins and the amodal 3D-centre offset; its
tracking head rides along and is not used for scoring). The paper builds on CenterNet too (with a DLA-34
backbone, which our CPU scale does not need).

Label assignment (paper Eq. 5, Fig. 3):

- ``guided=True`` (BA²-Det's 2D-guided assignment): every 2D box is a positive at its centre; a box without a
  3D pseudo-label (NaN 3D columns) gets no 3D loss. CenterTrack's targets already treat NaN rows exactly so
  (:mod:`baselines.centertrack.targets`: "Rows without a 3D box supervise only the 2D heads").
- ``guided=False`` (the fully supervised 3D assignment, used by "SfM + detector"): boxes without a 3D label are
  removed from the labels, so their pixels are background: moving objects become false negatives in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from baselines.centertrack.learner import CenterTrackLearner
from bench.data.tracks import BOX3D_COLUMNS, DONTCARE
from bench.interface import RunContext, SplitView, TrainView


class Detector:
    """N_theta: a CenterTrack network used as a per-frame 3D detector. ``settings`` are CenterTrack's keywords."""

    def __init__(self, **settings: Any) -> None:
        self.settings = dict(settings)
        self.learner = CenterTrackLearner(**self.settings)  # checks the settings now

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext, guided: bool = True) -> None:
        has3d = np.isfinite(labels[list(BOX3D_COLUMNS)].to_numpy(np.float64)).all(axis=1)
        if not has3d[(labels["cls"] != DONTCARE).to_numpy()].any():
            raise ValueError("ba2det: no box got a 3D pseudo-label (too few reconstructed points per object? "
                             "lower min_points)")
        rows = labels if guided else labels[has3d | (labels["cls"] == DONTCARE).to_numpy()]
        self.learner.fit(train, rows.reset_index(drop=True), ctx)

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        """3D detections of every frame (the tracker's boxes with their scores; ids kept, unused by the metrics)."""
        table = self.learner.predict(split, ctx)
        return table[np.isfinite(table[list(BOX3D_COLUMNS)].to_numpy(np.float64)).all(axis=1)].reset_index(drop=True)
