"""``nkf-em``: a tracker that learns data association without identity labels (paper 003), and its twin.

``fit`` reads the training videos' public detections (no identity: the firewall hands this method labels
without track ids, ``sees_identities = False``, and it does not use them), computes their appearance
descriptors from the images and trains :class:`~methods.nkf_em.model.AssociationNet` by EM
(:mod:`methods.nkf_em.train`) for ``steps`` steps; ``predict`` tracks the split's public detections online
(:mod:`methods.nkf_em.track`).

``nkf-em-supervised`` is the same network, filter and tracker trained with identity labels (the upper
bound of the comparison): it sees every training label (``sees_ground_truth``), gives each public
detection the identity of the ground-truth box it overlaps (IoU >= 0.5, one-to-one) and trains the scores
by cross-entropy against that assignment.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment

from baselines.sort import BOX, iou_matrix, require_detections, tracks_table
from bench.data.tracks import DONTCARE
from bench.interface import Method, RunContext, SplitView, TrainView
from methods.nkf_em.features import appearance, boxes_to_z, z_to_boxes
from methods.nkf_em.model import AssociationNet, Frame
from methods.nkf_em.track import TrackerConfig, track_sequence
from methods.nkf_em.train import EMConfig, train


def _frames(view: SplitView, name: str, labels: pd.DataFrame | None = None) -> list[Frame]:
    """Every frame of one video as a :class:`Frame` (empty frames included; ``gid`` only with ``labels``)."""
    seq = view.sequences[name]
    scale = float(seq.image_size[1])
    det = view.detections[view.detections["seq"] == name]
    groups = det.groupby("frame").indices
    boxes, scores = det[BOX].to_numpy(np.float64), det["score"].to_numpy(np.float64)
    gt = labels[(labels["seq"] == name) & (labels["cls"] != DONTCARE)] if labels is not None else None
    out = []
    for index, frame in enumerate(seq.frame_ids):
        idx = groups.get(int(frame), np.zeros(0, dtype=np.int64))
        b = boxes[idx]
        gid = None
        if gt is not None:
            rows = gt[gt["frame"] == frame]
            gid_np = np.full(len(b), -1, dtype=np.int64)
            if len(rows) and len(b):
                iou = iou_matrix(b, rows[BOX].to_numpy(np.float64))
                r, c = linear_sum_assignment(-iou)
                ok = iou[r, c] >= 0.5
                gid_np[r[ok]] = rows["track_id"].to_numpy()[c[ok]]
            gid = torch.as_tensor(gid_np)
        out.append(Frame(torch.as_tensor(boxes_to_z(b, scale)), torch.as_tensor(appearance(seq.image(index), b)),
                         torch.as_tensor(scores[idx]), gid))
    return out


class NkfEm(Method):
    """Neural Kalman filter + Sinkhorn association trained by EM on detections only.

    The tracker thresholds' defaults (``min_prob``, ``birth_score``, ``max_age``, ``min_hits``) were chosen on
    the development world (synth-mot data seed 7, scripts/tune_sort.py --nkf-em), not on the validation split.
    """

    outputs = "2d-tracks"
    sees_identities = False  # the firewall strips every track id from this method's labels
    supervised = False

    def __init__(self, steps: int = 300, window: int = 8, lr: float = 3e-3, hidden: int = 32,
                 sinkhorn_iters: int = 20, smoother: bool = True, appearance: bool = True,
                 generative_prior: bool = False, min_prob: float = 0.1, birth_score: float = 0.3,
                 det_thresh: float = 0.1, min_hits: int = 1, max_age: int = 10) -> None:
        super().__init__(steps=steps, window=window, lr=lr, hidden=hidden, sinkhorn_iters=sinkhorn_iters,
                         smoother=smoother, appearance=appearance, generative_prior=generative_prior,
                         min_prob=min_prob, birth_score=birth_score, det_thresh=det_thresh, min_hits=min_hits,
                         max_age=max_age)
        if steps < 0 or window < 2 or hidden < 1 or sinkhorn_iters < 0 or min_hits < 0 or max_age < 0:
            raise ValueError("nkf-em: steps, sinkhorn_iters, min_hits, max_age must be >= 0, window >= 2, hidden >= 1")
        if not (0 <= min_prob <= 1 and 0 <= det_thresh <= 1 and 0 <= birth_score <= 1):
            raise ValueError("nkf-em: min_prob, birth_score and det_thresh must be in [0, 1]")
        self.steps, self.window, self.lr, self.hidden = int(steps), int(window), float(lr), int(hidden)
        self.sinkhorn_iters, self.smoother, self.appearance = int(sinkhorn_iters), bool(smoother), bool(appearance)
        self.generative_prior = bool(generative_prior)
        self.tracker = TrackerConfig(min_prob=float(min_prob), birth_score=float(birth_score),
                                     det_thresh=float(det_thresh), min_hits=int(min_hits), max_age=int(max_age),
                                     sinkhorn_iters=int(sinkhorn_iters))
        self.net_: AssociationNet | None = None
        self.history_: list[float] = []

    def _new_net(self) -> AssociationNet:
        return AssociationNet(hidden=self.hidden, use_appearance=self.appearance,
                              generative_prior=self.generative_prior).double()

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        require_detections(train, "nkf-em")
        torch.manual_seed(ctx.seed)
        net = self._new_net()
        gt = labels if self.supervised else None
        videos = [_frames(train, name, gt) for name in sorted(train.sequences)]
        apps = torch.cat([f.app for v in videos for f in v])
        if len(apps) > 1:  # the newborn appearance density: fitted once, not by gradient
            net.app_mean.copy_(apps.mean(0))
            net.app_std.copy_(apps.std(0).clamp(min=1e-3))
        net.aspect.fill_(float(np.mean([s.image_size[0] / s.image_size[1] for s in train.sequences.values()])))
        cfg = EMConfig(sinkhorn_iters=self.sinkhorn_iters, smoother=self.smoother)
        self.history_ = train_loop(net, videos, self, cfg, ctx)
        self.net_ = net

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        require_detections(split, "nkf-em")
        if self.net_ is None:
            raise RuntimeError("nkf-em: call fit (or load_state_dict) before predict")
        rows: list[tuple] = []
        for i, name in enumerate(sorted(split.sequences)):
            seq = split.sequences[name]
            scale = float(seq.image_size[1])
            for index, track_id, score, z in track_sequence(self.net_, _frames(split, name), self.tracker):
                rows.append((name, int(seq.frame_ids[index]), track_id, score, *z_to_boxes(z, scale)[0]))
            ctx.progress(i + 1, len(split.sequences), "nkf-em tracking")
        return tracks_table(rows, "nkf-em-supervised" if self.supervised else "nkf-em")

    def state_dict(self) -> dict[str, Any] | None:
        return None if self.net_ is None else dict(self.net_.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        net = self._new_net()
        net.load_state_dict(state)
        self.net_ = net


def train_loop(net: AssociationNet, videos: list[list[Frame]], method: NkfEm, cfg: EMConfig,
               ctx: RunContext) -> list[float]:
    return train(net, videos, steps=method.steps, window=method.window, lr=method.lr, seed=ctx.seed, cfg=cfg,
                 supervised=method.supervised, progress=ctx.progress)


class NkfEmSupervised(NkfEm):
    """The supervised twin: the same network trained with identity labels (upper bound)."""

    sees_ground_truth = True
    sees_identities = True
    supervised = True
