"""DEFT's motion model: an LSTM that forecasts an object's next 2D box from its recent boxes, to veto matches.

DEFT trains an LSTM on ground-truth track histories and, at test time, refuses an appearance match whose
detection overlaps the track's forecast box by less than an IoU threshold. Here the inputs are the last
``history`` frame-to-frame changes of (cx, cy, w, h) (divided by the image height), the output the next
change; trained by conf-weighted L1 on windows of consecutive labelled frames of each labelled track. With too
few consecutive labels (the sparse budget) it trains on what there is; a track with one box forecasts no motion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn


class MotionLSTM(nn.Module):
    def __init__(self, hidden: int = 32):
        super().__init__()
        self.lstm = nn.LSTM(4, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 4)

    def forward(self, deltas: torch.Tensor) -> torch.Tensor:
        """(B, T, 4) past changes -> (B, 4) next change."""
        y, _ = self.lstm(deltas)
        return self.out(y[:, -1])


def box_state(boxes: np.ndarray, scale: float) -> np.ndarray:
    """x1 y1 x2 y2 -> (cx, cy, w, h) / scale."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1) / scale


def state_box(state: np.ndarray, scale: float) -> np.ndarray:
    s = np.asarray(state, np.float64).reshape(-1, 4) * scale
    return np.stack([s[:, 0] - s[:, 2] / 2, s[:, 1] - s[:, 3] / 2, s[:, 0] + s[:, 2] / 2, s[:, 1] + s[:, 3] / 2], 1)


def training_windows(labels: pd.DataFrame, scales: dict[str, float], history: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs (W, history, 4), targets (W, 4), weights (W,)) from runs of consecutive frames of each track.

    Shorter histories are padded in front with zero change (what the tracker feeds a young track)."""
    xs, ys, ws = [], [], []
    for (seq, _), rows in labels.groupby(["seq", "track_id"], sort=True):
        rows = rows.sort_values("frame")
        frames = rows["frame"].to_numpy()
        states = box_state(rows[["x1", "y1", "x2", "y2"]].to_numpy(), scales[str(seq)])
        conf = rows["conf"].to_numpy(np.float64)
        breaks = np.flatnonzero(np.diff(frames) != 1) + 1
        for run in np.split(np.arange(len(frames)), breaks):
            if len(run) < 3:
                continue
            d = np.diff(states[run], axis=0)
            for k in range(1, len(d)):
                past = d[max(0, k - history):k]
                pad = np.zeros((history - len(past), 4))
                xs.append(np.concatenate([pad, past]))
                ys.append(d[k])
                ws.append(conf[run[k + 1]])
    if not xs:
        return np.zeros((0, history, 4)), np.zeros((0, 4)), np.zeros(0)
    return np.stack(xs), np.stack(ys), np.array(ws)


def train_motion(labels: pd.DataFrame, scales: dict[str, float], history: int, hidden: int, steps: int, lr: float,
                 seed: int, batch_size: int = 64) -> tuple[MotionLSTM | None, int]:
    """The trained LSTM (None when the labels hold no run of 3 consecutive frames) and its number of windows."""
    x, y, w = training_windows(labels, scales, history)
    if not len(x) or steps <= 0:
        return None, len(x)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MotionLSTM(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt, wt = (torch.from_numpy(a).float() for a in (x, y, w))
    for _ in range(steps):
        idx = torch.from_numpy(rng.integers(0, len(x), min(batch_size, len(x))))
        loss = ((model(xt[idx]) - yt[idx]).abs().sum(-1) * wt[idx]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval(), len(x)
