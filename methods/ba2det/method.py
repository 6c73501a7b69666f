"""``ba2det``: a monocular 3D detector learnt from 2D boxes alone (paper 002, BA²-Det), and its baselines.

The label regime is "2d-all" (``label_regime``): the firewall hands over a 2D box with its 2D track id on every
training frame, and 3D boxes only on the share of sequences the budget names (``--budget 0%``: none).

What exists, stage by stage (paper Sec. 3):

- **Pseudo-label generation** (:mod:`methods.ba2det.pseudolabels`): COLMAP reconstruction with the ego poses
  (:mod:`~methods.ba2det.reconstruct`), DoubleClustering (:mod:`~methods.ba2det.clustering`) and the
  orientation-search box fit (:mod:`~methods.ba2det.bev_box`): the initial pseudo-labels. Videos with the ego
  slower than ``min_ego_speed`` (the paper's omega) are not reconstructed; boxes longer than ``max_length`` (the
  paper's sigma_1) are dropped, and so (our addition, :class:`~methods.ba2det.pseudolabels.BoxChecks`) are boxes
  whose bottom is more than ``ground_tol`` from the ground seen in the reconstruction: objects moving along the
  ego's line of travel pass COLMAP's epipolar check but triangulate at a wrong depth.
- **Stage 1, complete -> partial** (:mod:`~methods.ba2det.completion`): G_theta, a PointNet trained on the
  complete clusters (3-10 m long) with partial views cut from them, predicts every cluster's full box (centre and
  size; the heading stays the orientation search's). ``completion_steps=0`` switches it off.
- **Stage 2, static -> dynamic** (:mod:`~methods.ba2det.detector`): the monocular detector (bench's CenterNet-style
  CenterTrack network, its tracking head unused for scoring) trained on the pseudo-labels with the paper's
  2D-guided label assignment (Eq. 5): a 2D box without a 3D pseudo-label stays a positive for the heatmap and
  2D heads and has no 3D loss; the paper's orientation loss (Eq. 6: MultiBin of the heading or of its 180° flip,
  whichever is smaller), because a box fitted to points cannot tell front from back.
- **Stage 3, close -> distant** (:mod:`~methods.ba2det.selftrain`): rounds of self-training, the detector's
  predictions on the training videos, matched to the 2D labels and made consistent along each 2D track, becoming
  the 3D pseudo-labels of boxes that had none.

``ba2det-sfm`` is the paper's "SfM + detector" baseline: the same initial pseudo-labels without G_theta, the
detector trained with the fully supervised (3D) label assignment (boxes without a 3D pseudo-label are
background), no self-training.
``ba2det-supervised`` is the detector trained on the human 3D boxes of the budget's sequences only (the paper's
"10 % 3D labels" row at ``--budget 10%``; ``--budget 100%`` is full supervision).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from bench.data.tracks import BOX3D_COLUMNS, DONTCARE, empty_tracks
from bench.interface import Method, RunContext, SplitView, TrainView
from methods.ba2det.clustering import ClusterConfig
from methods.ba2det.completion import CompletionConfig
from methods.ba2det.detector import Detector
from methods.ba2det.pseudolabels import BoxChecks, initial_pseudolabels
from methods.ba2det.reconstruct import ReconstructionConfig, require_pycolmap
from methods.ba2det.selftrain import self_training_labels


class BA2Det(Method):
    """BA²-Det: reconstruction + DoubleClustering pseudo-labels, then a detector with 2D-guided assignment and
    self-training. Every setting is a constructor keyword; ``detector`` holds the detector's own settings (the
    keywords of :class:`baselines.centertrack.learner.CenterTrackLearner`)."""

    outputs: ClassVar[str] = "3d-detections"
    label_regime: ClassVar[str] = "2d-all"

    def __init__(self, *, overlap: int = 5, peak_threshold: float = 0.004, min_angle_deg: float = 1.5,
                 delta_1: float = 0.5, delta_2: float = 0.7, min_points: int = 100, max_length: float = 10.0,
                 ground_tol: float = 0.5, min_box_iou: float = 0.0, min_ego_speed: float = 1.0,
                 completion_steps: int = 300, guided_assignment: bool = True, self_training_rounds: int = 2,
                 match_iou: float = 0.5, min_track_hits: int = 2,
                 flip_orientation_loss: bool = True,  # Eq. 6: a pseudo-box's heading may be 180° off
                 detector: dict[str, Any] | None = None) -> None:
        super().__init__(overlap=overlap, peak_threshold=peak_threshold, min_angle_deg=min_angle_deg,
                         delta_1=delta_1, delta_2=delta_2, min_points=min_points, max_length=max_length,
                         ground_tol=ground_tol, min_box_iou=min_box_iou, min_ego_speed=min_ego_speed,
                         completion_steps=completion_steps, guided_assignment=guided_assignment,
                         self_training_rounds=self_training_rounds, match_iou=match_iou,
                         min_track_hits=min_track_hits, flip_orientation_loss=flip_orientation_loss,
                         detector=dict(detector or {}))
        if "orientation_loss" in self.params["detector"]:
            raise ValueError("ba2det: set flip_orientation_loss, not detector.orientation_loss")
        if delta_1 <= 0 or delta_2 <= 0 or min_points < 1:
            raise ValueError("ba2det: delta_1 and delta_2 must be > 0 m and min_points >= 1")
        if completion_steps < 0:
            raise ValueError(f"ba2det: completion_steps must be >= 0, got {completion_steps}")
        if self_training_rounds < 0:
            raise ValueError(f"ba2det: self_training_rounds must be >= 0, got {self_training_rounds}")
        self._new_detector()  # a bad detector setting fails at plan time

    def _new_detector(self) -> Detector:
        """The detector N_theta, with the paper's orientation loss (Eq. 6: the MultiBin loss of the heading or of
        its 180° flip, whichever is smaller) when ``flip_orientation_loss``: the box fit cannot tell front from back."""
        loss = "multibin-flip" if self.params["flip_orientation_loss"] else "multibin"
        return Detector(**self.params["detector"], orientation_loss=loss)

    def _pseudolabels(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        require_pycolmap()
        p = self.params
        labels, report = initial_pseudolabels(
            train.sequences, train.labels, ctx.work_dir,
            ReconstructionConfig(overlap=p["overlap"], peak_threshold=p["peak_threshold"],
                                 min_angle_deg=p["min_angle_deg"], seed=ctx.seed),
            ClusterConfig(delta_1=p["delta_1"], delta_2=p["delta_2"], min_points=p["min_points"]),
            seqs_3d=tuple(train.seqs_3d or ()), progress=ctx.progress,
            checks=BoxChecks(max_length=p["max_length"], min_iou=p["min_box_iou"], ground_tol=p["ground_tol"]),
            min_ego_speed=p["min_ego_speed"],
            completion=CompletionConfig(steps=p["completion_steps"], max_length=p["max_length"], seed=ctx.seed)
            if p["completion_steps"] > 0 else None)
        if report.completion:
            ctx.logger.info("ba2det stage 1 (G_theta): %s", report.completion)
        self.pseudo_report_ = report.frame()
        for row in report.rows:
            ctx.logger.info("ba2det %s: %s points, %s of %s tracks boxed (%s)", row["seq"], row["points"],
                            row["boxed"], row["tracks"], row["source"])
        return labels

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        pseudo = self._pseudolabels(train, ctx)
        self.initial_pseudolabels_ = pseudo
        pseudo.to_parquet(ctx.work_dir / "pseudolabels_initial.parquet")  # after stage 1; for the stage table
        guided = bool(self.params["guided_assignment"])
        detector = self._new_detector()
        detector.fit(train, pseudo, ctx, guided=guided)
        for round_ in range(int(self.params["self_training_rounds"])):
            predictions = detector.predict(train, ctx)
            pseudo = self_training_labels(self.initial_pseudolabels_, predictions, train.sequences,
                                          match_iou=self.params["match_iou"],
                                          min_hits=self.params["min_track_hits"])
            ctx.logger.info("ba2det self-training round %d: %d of %d boxes with 3D", round_ + 1,
                            int(np.isfinite(pseudo["z"]).sum()), len(pseudo))
            detector = self._new_detector()
            detector.fit(train, pseudo, ctx, guided=guided)
        self.pseudolabels_ = pseudo
        self.detector_ = detector
        pseudo.to_parquet(ctx.work_dir / "pseudolabels.parquet")  # for inspection; the runner scores predictions

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        if not hasattr(self, "detector_"):
            raise RuntimeError("ba2det: predict() called before fit()")
        return self.detector_.predict(split, ctx)


class BA2DetSfM(BA2Det):
    """The paper's "SfM + detector" baseline: initial pseudo-labels, 3D label assignment, no self-training."""

    def __init__(self, *, overlap: int = 5, peak_threshold: float = 0.004, min_angle_deg: float = 1.5,
                 delta_1: float = 0.5, delta_2: float = 0.7, min_points: int = 100, max_length: float = 10.0,
                 ground_tol: float = 0.5, min_box_iou: float = 0.0, min_ego_speed: float = 1.0,
                 completion_steps: int = 0, guided_assignment: bool = False, self_training_rounds: int = 0,
                 match_iou: float = 0.5, min_track_hits: int = 2, flip_orientation_loss: bool = False,
                 detector: dict[str, Any] | None = None) -> None:
        super().__init__(overlap=overlap, peak_threshold=peak_threshold, min_angle_deg=min_angle_deg,
                         delta_1=delta_1, delta_2=delta_2, min_points=min_points, max_length=max_length,
                         ground_tol=ground_tol, min_box_iou=min_box_iou, min_ego_speed=min_ego_speed,
                         completion_steps=completion_steps, guided_assignment=guided_assignment,
                         self_training_rounds=self_training_rounds, match_iou=match_iou,
                         min_track_hits=min_track_hits, flip_orientation_loss=flip_orientation_loss,
                         detector=detector)


class BA2DetSupervised(Method):
    """The detector on human 3D boxes only: the sequences the budget gives 3D boxes (``--budget 10%``: the
    paper's "10 % 3D labels" row); the other sequences are not used. Nothing is reconstructed."""

    outputs: ClassVar[str] = "3d-detections"
    label_regime: ClassVar[str] = "2d-all"

    def __init__(self, *, detector: dict[str, Any] | None = None) -> None:
        super().__init__(detector=dict(detector or {}))
        Detector(**self.params["detector"])

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        rows = train.labels[train.labels["seq"].isin(train.seqs_3d or ())]
        rows = rows[(rows["cls"] == DONTCARE) | np.isfinite(rows[list(BOX3D_COLUMNS)].to_numpy(float)).all(axis=1)]
        self.fitted_ = True
        if not len(rows[rows["cls"] != DONTCARE]):
            # 0 % of the sequences with 3D boxes: a supervised detector has nothing to learn and detects nothing
            # (a sweep grid over 0/10/100 % keeps its cells; the row reads 0 rather than failing).
            ctx.logger.warning("ba2det-supervised: no 3D boxes in the labels (budget 0 %): it predicts nothing")
            return
        self.detector_ = Detector(**self.params["detector"])
        self.detector_.fit(train, rows, ctx, guided=False)

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        if not hasattr(self, "fitted_"):
            raise RuntimeError("ba2det-supervised: predict() called before fit()")
        if not hasattr(self, "detector_"):
            return empty_tracks()
        return self.detector_.predict(split, ctx)
