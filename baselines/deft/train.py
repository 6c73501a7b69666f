"""Train DEFT: the CenterNet detector on the labels (conf-weighted, FNComp maps), then the matcher and the LSTM.

DEFT trains detection and matching together from the CenterTrack code base; here, on a CPU budget, in two
stages: the detector first (:func:`baselines.centernet.train.train`), then the appearance matcher on the frozen
detector's features. A matcher sample is two labelled frames of one video at most ``max_frame_gap`` apart
(possibly the same object ids in both: those are the matches; the rest are "unmatched"); the motion LSTM trains
on the label tracks (:func:`.motion.train_motion`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from baselines.centernet.model import CenterNetDDD
from baselines.centernet.train import prepare
from baselines.centertrack.train import normalise
from baselines.deft.matcher import AppearanceMatcher, matching_loss
from bench.data.sequence import Sequence


def pyramid_channels(model: CenterNetDDD) -> list[int]:
    w = model.config.width
    return [w, w, 2 * w, 4 * w, 8 * w]


def train_matcher(detector: CenterNetDDD, sequences: dict[str, Sequence], labels: pd.DataFrame,
                  classes: tuple[str, ...], cfg: dict, seed: int = 0,
                  progress: Callable[[int, int, dict], None] | None = None) -> tuple[AppearanceMatcher, list[dict]]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    size = tuple(int(v) for v in cfg["input_size"])
    images, frames = prepare(sequences, labels, classes, size)  # type: ignore[arg-type]
    matcher = AppearanceMatcher(pyramid_channels(detector), dim=cfg["matcher_dim"], hidden=cfg["matcher_hidden"])
    history: list[dict] = []
    by_seq: dict[int, list[int]] = {}
    for i, f in enumerate(frames):
        if (f.objects.track_id >= 0).any():
            by_seq.setdefault(f.seq, []).append(i)
    pairs = [(a, b) for ids in by_seq.values() for a in ids for b in ids
             if 0 < abs(frames[a].index - frames[b].index) <= cfg["max_frame_gap"]]
    if not pairs or cfg["matcher_steps"] <= 0:
        return matcher.eval(), history
    detector.eval().requires_grad_(False)
    opt = torch.optim.Adam(matcher.parameters(), lr=cfg["matcher_lr"])
    cache: dict[int, list[torch.Tensor]] = {}

    def pyramid_of(i: int) -> list[torch.Tensor]:
        # The detector is frozen: each labelled frame's features are computed once.
        if i not in cache:
            with torch.no_grad():
                f = frames[i]
                cache[i] = detector.pyramid(normalise(images[f.seq][f.index:f.index + 1]))
        return cache[i]

    def embed(i: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        obj = frames[i].objects
        keep = np.isfinite(obj.boxes3d).all(axis=1)
        centres = torch.from_numpy((obj.boxes[keep, :2] + obj.boxes[keep, 2:]) / 2).float()
        return matcher.embed(pyramid_of(i), centres, size), obj.track_id[keep], obj.conf[keep]  # type: ignore[arg-type]

    batch = int(cfg["matcher_batch"])
    for step in range(int(cfg["matcher_steps"])):
        total = torch.zeros(())
        for _ in range(batch):
            a, b = pairs[int(rng.integers(len(pairs)))]
            ea, ida, ca = embed(a)
            eb, idb, cb = embed(b)
            where = {int(t): j for j, t in enumerate(idb)}
            match = torch.tensor([where.get(int(t), -1) for t in ida], dtype=torch.long)
            total = total + matching_loss(matcher.affinity(ea, eb), match, torch.from_numpy(ca).float(),
                                          torch.from_numpy(cb).float())
        loss = total / batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        log = {"step": step, "total": float(loss.detach())}
        history.append(log)
        if progress is not None:
            progress(step + 1, int(cfg["matcher_steps"]), log)
    return matcher.eval(), history
