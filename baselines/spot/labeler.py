"""``spot``: the sparsely supervised single-object tracker (SPOT, TIP'24) as bench's 2D tracker of the training videos.

Sparse3DTrack's Table 1 builds its SPOT rows as *SPOT's 2D tracks, lifted to 3D* (``spot+centernet``,
``spot+fcos3d``). This labeler is the first half: from the budget's labels (drawn by bench's label sampler,
which is SPOT's key-frame rule, :mod:`bench.labels.budget`) it trains the small Siamese tracker the SPOT way
(:mod:`baselines.spot.train`) and propagates every labelled track forwards and backwards through its video
(:mod:`baselines.spot.track`). Its output is ``2d-tracks`` on the training videos:

- the budget's labels unchanged (``conf`` 1, their 3D boxes kept: human labels a lifter may pass on);
- one propagated 2D box per frame of every labelled track elsewhere, 3D columns NaN, ``conf`` = the
  predicted IoU of the IoU head, ``score`` = the foreground score;
- DontCare rows of the budget passed through (ignore regions for whatever trains on them).

Run alone (``bench run --method spot``) the pseudolabels are scored against the hidden training ground truth
with the dataset's 2D protocol (kitti-2d); a lifter composes it to 3D.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import torch

from baselines.spot.crops import to_input
from baselines.spot.model import SiameseTracker
from baselines.spot.relay import TrackRelay
from baselines.spot.track import chains_for, run_chains
from baselines.spot.train import TrainConfig, train_spot
from bench.data.tracks import BOX2D_COLUMNS, DONTCARE, make_tracks, sort_tracks
from bench.interface import Labeler, RunContext, TrainView


def labelled_tracks(labels: pd.DataFrame, train: TrainView) -> list[TrackRelay]:
    """One relay state per labelled track (DontCare and id-less rows left out), frames as video indices."""
    rows = labels[(labels["cls"] != DONTCARE).to_numpy() & (labels["track_id"].to_numpy() >= 0)]
    out = []
    for (seq, track_id), group in rows.groupby(["seq", "track_id"], sort=True):
        video = train.sequences[str(seq)]
        index = {int(f): i for i, f in enumerate(video.frame_ids)}
        keys = {index[int(f)]: np.asarray(box, dtype=float)
                for f, box in zip(group["frame"], group[list(BOX2D_COLUMNS)].to_numpy(), strict=True)}
        out.append(TrackRelay(str(seq), int(track_id), str(group["cls"].iloc[0]), video.num_frames, keys))
    return out


def video_tensor(train: TrainView, name: str) -> torch.Tensor:
    """A video as zero-mean ``(T, 3, H, W)`` floats (the crops are cut from these)."""
    seq = train.sequences[name]
    return torch.stack([to_input(seq.image(i)) for i in range(seq.num_frames)])


class Spot(Labeler):
    """SPOT: burn-in, EMA teacher-student with relay frames and the IoU filter; propagation at inference."""

    outputs = "2d-tracks"

    def __init__(self, steps: int = 2000, burn_in: int = 400, sup_batch: int = 8, unsup_batch: int = 24,
                 lr: float = 2e-3, weight_decay: float = 1e-4, ema_keep: float = 0.998, ema_every: int = 5,
                 relay_every: int = 100, iou_threshold: float = 0.85, window_influence: float = 0.4,
                 propagating_step: int = 1, width: int = 32, template_size: int = 32, search_size: int = 80,
                 min_size: float = 2.0, threads: int | None = 1) -> None:
        """``threads``: torch CPU threads (1 by default, as CenterTrack's: threads leave the run key, and the float
        path depends on them, so one key must mean one number)."""
        super().__init__(steps=steps, burn_in=burn_in, sup_batch=sup_batch, unsup_batch=unsup_batch, lr=lr,
                         weight_decay=weight_decay, ema_keep=ema_keep, ema_every=ema_every, relay_every=relay_every,
                         iou_threshold=iou_threshold, window_influence=window_influence,
                         propagating_step=propagating_step, width=width, template_size=template_size,
                         search_size=search_size, min_size=min_size, threads=threads)
        if steps < 0 or burn_in < 0 or sup_batch < 1 or unsup_batch < 0:
            raise ValueError("spot: steps, burn_in, unsup_batch must be >= 0 and sup_batch >= 1")
        if ema_every < 1 or relay_every < 1 or propagating_step < 1:
            raise ValueError("spot: ema_every, relay_every and propagating_step must be >= 1")
        if not (0 <= ema_keep <= 1 and 0 <= iou_threshold <= 1 and 0 <= window_influence <= 1):
            raise ValueError("spot: ema_keep, iou_threshold and window_influence must be in [0, 1]")
        SiameseTracker(width, template_size, search_size)  # checks the crop sizes now, at plan time
        self.config = TrainConfig(steps=int(steps), burn_in=int(burn_in), sup_batch=int(sup_batch),
                                  unsup_batch=int(unsup_batch), lr=float(lr), weight_decay=float(weight_decay),
                                  ema_keep=float(ema_keep), ema_every=int(ema_every), relay_every=int(relay_every),
                                  iou_threshold=float(iou_threshold), window_influence=float(window_influence),
                                  propagating_step=int(propagating_step))
        self.model_: SiameseTracker | None = None
        self.history_: dict[str, list[float]] = {}
        self.relay_size_: int = 0

    def _threads(self) -> None:
        if self.params["threads"] is not None:
            torch.set_num_threads(int(self.params["threads"]))

    def fit(self, train: TrainView, ctx: RunContext) -> None:
        self._threads()
        torch.manual_seed(ctx.seed)
        p = self.params
        model = SiameseTracker(p["width"], p["template_size"], p["search_size"])
        tracks = labelled_tracks(train.labels, train)
        videos = {name: video_tensor(train, name) for name in sorted({t.seq for t in tracks})}
        self.history_ = train_spot(model, videos, tracks, self.config, ctx.seed, ctx.progress)
        self.relay_size_ = sum(len(t.relay) for t in tracks)
        accepted = [a for a in self.history_["accepted"] if a == a]  # NaN: burn-in steps, no teacher yet
        summary = {"tracks": len(tracks), "labels": sum(len(t.keys) for t in tracks), "relay_frames": self.relay_size_,
                   "accepted_share": float(np.mean(accepted)) if accepted else None,
                   "final_loss": self.history_["loss"][-1] if self.history_["loss"] else None}
        ctx.logger.info("spot: %s", summary)
        # How far self-training got (relay growth through the IoU filter), beside the run's other artifacts.
        (ctx.work_dir / "spot_training.json").write_text(json.dumps(summary, indent=1))
        self.model_ = model

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        if self.model_ is None:
            raise RuntimeError("spot: call fit before label")
        self._threads()
        labels = train.labels.copy()
        labels["conf"] = 1.0
        rows: list[dict[str, Any]] = []
        tracks = labelled_tracks(train.labels, train)
        by_seq: dict[str, list[TrackRelay]] = {}
        for track in tracks:
            by_seq.setdefault(track.seq, []).append(track)
        for n, (name, seq_tracks) in enumerate(sorted(by_seq.items())):
            video = train.sequences[name]
            chains = [c for i, t in enumerate(seq_tracks) for c in chains_for(t.keys, video.num_frames, i)]
            propagated = run_chains(self.model_, video_tensor(train, name), chains,
                                    self.config.window_influence, float(self.params["min_size"]))
            for i, index, box, score, iou in propagated:
                track = seq_tracks[i]
                rows.append({"seq": name, "frame": int(video.frame_ids[index]), "track_id": track.track_id,
                             "cls": track.cls, "score": score, "conf": float(np.clip(iou, 0.0, 1.0)),
                             "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3]})
            ctx.progress(n + 1, len(by_seq), "spot propagation")
        out = pd.concat([labels, make_tracks(rows, source="spot")], ignore_index=True) if rows else labels
        return sort_tracks(make_tracks(out, source="spot"))
