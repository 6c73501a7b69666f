"""Lifting 2D tracks to 3D: a 2D tracker ``A`` composed with a 3D lifter ``B`` is the labeler ``A+B``.

Sparse3DTrack's Table 1 builds its baselines as *a 2D tracker x a 3D lifter* (SPOT or SAM2 x FCOS3D or
CenterNet). Here:

- a **2D source** is any registered method whose ``outputs`` are ``"2d-tracks"``: a labeler (its ``label``
  gives the tracks on the training videos) or a learner/method (trained on the budget's labels, then run
  on the training videos). ``gt2d`` is the ground-truth 2D tracks at every frame (:class:`GroundTruth2D`):
  it isolates the lifter's own 3D error and is the one method of the regime "2D boxes on every frame"
  (``sees_2d_ground_truth``: the firewall hands it every training box's 2D columns, no 3D);
- a **lifter** is a :class:`Lifter` registered in ``bench.registry.lifters``: trained on the budget's sparse
  3D labels only, it gives every tracked 2D box a 3D box (:meth:`Lifter.lift_frames`): the detection it
  matches (2D IoU of the detection's projected 3D box, same class), else its heads read at the box centre;
- :class:`Lifted` runs both, smooths each track's depth, size and yaw over time (:func:`smooth_track`),
  puts the human 3D labels back on their frames and returns pseudolabels with ``conf`` = 2D confidence x
  lift confidence, which a base tracker trains on like any pseudolabels.

``bench.registry`` resolves the name ``A+B`` to ``compose(A, B)`` (one registry owns composition).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from bench.data.geometry import box_center, project_boxes_2d, wrap_angle
from bench.data.sequence import Sequence
from bench.data.tracks import BOX3D_COLUMNS, DONTCARE, empty_tracks, has_3d, make_tracks, sort_tracks
from bench.interface import Labeler, Method, RunContext, SplitView, TrainView, kind_of
from bench.metrics.similarity import iou_2d

KEYS = ["seq", "frame", "track_id"]


@dataclass
class LiftedFrame:
    """3D boxes of one frame's tracked 2D boxes, in their order."""

    boxes3d: np.ndarray  # (N, 7) camera frame, KITTI convention
    conf: np.ndarray  # (N,) in [0, 1]: the lifter's confidence in each box
    matched: np.ndarray  # (N,) bool: from a matched detection (True) or the fallback (False)


class Lifter(Method):
    """A monocular 3D detector that can also lift given 2D boxes to 3D.

    It is a :class:`Method` (``fit`` on labels, ``predict`` 3D detections, scored on its own) with one more
    duty: :meth:`lift_frames`. Register it in ``bench.registry.lifters`` (or the ``bench.lifters`` entry-point
    group) to make ``<2d source>+<name>`` a method."""

    outputs: ClassVar[str] = "3d-detections"

    def lift_frames(self, seq: Sequence, boxes: dict[int, tuple[np.ndarray, list[str]]], ctx: RunContext
                    ) -> dict[int, LiftedFrame]:
        """``{frame index: (2D boxes (N, 4) in image pixels, class names)}`` -> ``{frame index: LiftedFrame}``."""
        raise NotImplementedError


def match_detections(boxes2d: np.ndarray, names: list[str], det_boxes3d: np.ndarray, det_names: list[str],
                     det_scores: np.ndarray, intrinsics: np.ndarray, image_size: tuple[int, int],
                     fallback: np.ndarray, fallback_conf: np.ndarray, min_iou: float) -> LiftedFrame:
    """Give each tracked box the 3D box of the detection it matches one-to-one, else its ``fallback`` box.

    A pair's similarity is the 2D IoU of the tracked box and the detection's projected 3D box (clipped to the
    image), zero across classes; pairs under ``min_iou`` never match. A matched box's confidence is the
    detection's score; a fallback box's is ``fallback_conf``."""
    n = len(boxes2d)
    out = LiftedFrame(np.asarray(fallback, np.float64).reshape(n, 7).copy(),
                      np.clip(np.asarray(fallback_conf, np.float64).reshape(n), 0.0, 1.0), np.zeros(n, bool))
    if n == 0 or len(det_boxes3d) == 0:
        return out
    projected = project_boxes_2d(det_boxes3d, intrinsics, image_size)
    ok = np.isfinite(projected).all(axis=1)
    iou = np.zeros((n, len(det_boxes3d)))
    if ok.any():
        iou[:, ok] = iou_2d(np.asarray(boxes2d, np.float64), projected[ok])
    iou *= np.asarray(names, dtype=object)[:, None] == np.asarray(det_names, dtype=object)[None, :]
    rows, cols = linear_sum_assignment(-iou)
    good = iou[rows, cols] >= min_iou
    rows, cols = rows[good], cols[good]
    out.boxes3d[rows] = det_boxes3d[cols]
    out.conf[rows] = np.clip(det_scores[cols], 0.0, 1.0)
    out.matched[rows] = True
    return out


def _moving(values: np.ndarray, window: int, reduce: Any) -> np.ndarray:
    half = window // 2
    return np.array([reduce(values[max(0, i - half):i + half + 1], axis=0) for i in range(len(values))])


def smooth_track(boxes3d: np.ndarray, window: int) -> np.ndarray:
    """One track's 3D boxes (time order) smoothed, keeping each box on its own viewing ray.

    Size: the track's median (an object does not change size). Depth: a moving median over ``window`` frames
    (robust to a single bad detection); the centre then slides along its ray to that depth, so the box still
    projects where the 2D tracker saw it. Yaw: the circular mean over the window of the headings folded to
    the majority direction, so one flipped detection does not turn the car around."""
    boxes = np.array(boxes3d, dtype=np.float64)
    if len(boxes) < 2 or window <= 1:
        return boxes
    boxes[:, 3:6] = np.median(boxes[:, 3:6], axis=0)
    centres = box_center(np.asarray(boxes3d, np.float64))
    rays = centres / centres[:, 2:3]  # (x/z, y/z, 1): the ray through each observed centre
    z = _moving(boxes[:, 2], window, np.median)
    new_centres = rays * z[:, None]
    boxes[:, 0], boxes[:, 1], boxes[:, 2] = new_centres[:, 0], new_centres[:, 1] + boxes[:, 3] / 2, z
    yaw = boxes[:, 6]
    ref = np.angle(np.exp(1j * yaw).mean()) if len(yaw) else 0.0
    flipped = np.cos(yaw - ref) < 0
    folded = np.where(flipped, yaw + np.pi, yaw)
    # The folded headings agree; average them, then give each frame back its own side if it was the majority.
    mean = np.angle(_moving(np.exp(1j * folded), window, np.mean))
    majority = flipped.mean() > 0.5
    boxes[:, 6] = wrap_angle(mean + (np.pi if majority else 0.0))
    return boxes


class GroundTruth2D(Labeler):
    """``gt2d``: the ground-truth 2D tracks at every frame of the training videos (no 3D), conf 1.

    The regime "2D boxes on every frame": the firewall hands this method ``train.tracks_2d`` (every training
    box's 2D columns and identity, 3D columns NaN) because it declares ``sees_2d_ground_truth``; its 3D
    labels are the budget's, as any method's. As the 2D source of ``gt2d+<lifter>`` it isolates the lifter's
    3D error from 2D tracking error."""

    outputs: ClassVar[str] = "2d-tracks"
    sees_2d_ground_truth: ClassVar[bool] = True

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        return train.tracks_2d.copy()


def _two_d_tracks(source: Any, train: TrainView, ctx: RunContext) -> pd.DataFrame:
    """A 2D source's tracks on the training videos (a labeler labels; a learner trains on the budget, then runs)."""
    if isinstance(source, Labeler):
        source.fit(train, ctx)
        return source.label(train, ctx)
    source.fit(train, train.labels, ctx)
    split = SplitView(name=train.name, sequences=train.sequences, frame_rate=train.frame_rate,
                      detections=train.detections)
    return source.predict(split, ctx)


class Lifted(Labeler):
    """``A+B``: 2D tracks from source ``A`` lifted to 3D by lifter ``B`` (built by :func:`compose`).

    Parameters: ``tracker`` and ``lifter`` are the parts' own constructor keywords (a profile's
    ``methods.<A>`` and ``methods.<B>`` sections fill them; ``--set method.lifter.steps=...`` changes one);
    ``smooth_window`` frames of temporal smoothing (1: none); ``min_conf``: lifted boxes under this confidence
    are dropped."""

    outputs: ClassVar[str] = "3d-tracks"
    default_base: ClassVar[str | None] = "centertrack"
    source_cls: ClassVar[type[Any]]
    lifter_cls: ClassVar[type[Lifter]]
    parts: ClassVar[tuple[str, str]] = ("", "")
    __parts__: ClassVar[tuple[type, ...]] = ()

    def __init__(self, *, tracker: dict[str, Any] | None = None, lifter: dict[str, Any] | None = None,
                 smooth_window: int = 5, min_conf: float = 0.0) -> None:
        super().__init__(tracker=dict(tracker or {}), lifter=dict(lifter or {}), smooth_window=smooth_window,
                         min_conf=min_conf)
        if int(smooth_window) < 1 or not 0.0 <= float(min_conf) <= 1.0:
            raise ValueError(f"{'+'.join(self.parts)}: smooth_window must be >= 1 and min_conf in [0, 1]")
        # The parts check their own parameters now (constructors only store and check).
        self.source = self.source_cls(**self.params["tracker"])
        self.lifter = self.lifter_cls(**self.params["lifter"])

    def fit(self, train: TrainView, ctx: RunContext) -> None:
        # The lifter learns from the budget's 3D labels only: it never sees the 2D regime's extra boxes.
        lifter_view = dataclasses.replace(train, tracks_2d=empty_tracks())
        self.lifter.fit(lifter_view, lifter_view.labels, ctx)

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        name = "+".join(self.parts)
        source_view = train if self.source_cls.sees_2d_ground_truth else dataclasses.replace(
            train, tracks_2d=empty_tracks())
        tracks = _two_d_tracks(self.source, source_view, ctx)
        tracks = tracks[(tracks["cls"] != DONTCARE).to_numpy()].reset_index(drop=True)
        if tracks.empty:
            return empty_tracks()
        box3d = np.full((len(tracks), 7), np.nan)
        lift_conf = np.zeros(len(tracks))
        for seq_name, rows in tracks.groupby("seq", sort=True):
            seq = train.sequences[str(seq_name)]
            by_frame: dict[int, list[int]] = {}
            for row, frame in zip(rows.index, rows["frame"], strict=True):
                by_frame.setdefault(seq.index_of(int(frame)), []).append(int(row))
            asked = {t: (tracks.loc[r, ["x1", "y1", "x2", "y2"]].to_numpy(np.float64), list(tracks.loc[r, "cls"]))
                     for t, r in by_frame.items()}
            for t, lifted in self.lifter.lift_frames(seq, asked, ctx).items():
                box3d[by_frame[t]] = lifted.boxes3d
                lift_conf[by_frame[t]] = lifted.conf
            ctx.logger.info("%s: lifted %d boxes of %s", name, len(rows), seq_name)
        table = tracks.copy()
        table[list(BOX3D_COLUMNS)] = box3d
        valid = np.isfinite(box3d).all(axis=1) & (box3d[:, 2] > 0) & (box3d[:, 3:6] > 0).all(axis=1)
        table["conf"] = np.clip(table["conf"].to_numpy(float) * lift_conf, 0.0, 1.0)
        table = table[valid].reset_index(drop=True)
        table = self._smooth(table)
        table = self._with_human_labels(table, train.labels)
        table = table[(table["conf"] >= float(self.params["min_conf"])).to_numpy()]
        dontcare = train.labels[train.labels["cls"] == DONTCARE]
        parts = [t for t in (table, dontcare) if len(t)]
        return sort_tracks(make_tracks(pd.concat(parts, ignore_index=True), source=name)) if parts else empty_tracks()

    def _smooth(self, table: pd.DataFrame) -> pd.DataFrame:
        window = int(self.params["smooth_window"])
        if window <= 1 or table.empty:
            return table
        table = table.sort_values(KEYS[:1] + ["track_id", "frame"], kind="stable").reset_index(drop=True)
        cols = list(BOX3D_COLUMNS)
        for _, rows in table.groupby(["seq", "track_id"], sort=False):
            table.loc[rows.index, cols] = smooth_track(rows[cols].to_numpy(np.float64), window)
        return table

    @staticmethod
    def _with_human_labels(table: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
        """Labelled frames keep the human 3D box (conf 1) wherever the 2D source tracked the same object."""
        human = labels[(labels["cls"] != DONTCARE).to_numpy() & has_3d(labels)]
        if human.empty or table.empty:
            return table
        # The 2D source's ids are its own: a tracked box takes a human label by 2D IoU >= 0.5 on that frame.
        table = table.copy()
        for (seq_name, frame), rows in human.groupby(["seq", "frame"], sort=False):
            mine = table.index[(table["seq"] == seq_name).to_numpy() & (table["frame"] == frame).to_numpy()]
            if not len(mine):
                continue
            iou = iou_2d(table.loc[mine, ["x1", "y1", "x2", "y2"]].to_numpy(float),
                         rows[["x1", "y1", "x2", "y2"]].to_numpy(float))
            r, c = linear_sum_assignment(-iou)
            ok = iou[r, c] >= 0.5
            table.loc[mine[r[ok]], list(BOX3D_COLUMNS)] = rows[list(BOX3D_COLUMNS)].to_numpy(float)[c[ok]]
            table.loc[mine[r[ok]], "conf"] = rows["conf"].to_numpy(float)[c[ok]]
        return table


def compose(source_name: str, source_cls: type[Any], lifter_name: str, lifter_cls: type[Any]) -> type[Lifted]:
    """The labeler class of ``<source_name>+<lifter_name>``; TypeError when a part cannot play its role."""
    if getattr(source_cls, "outputs", None) != "2d-tracks":
        raise TypeError(f"{source_name!r} outputs {getattr(source_cls, 'outputs', '?')!r}, not 2d-tracks: it cannot "
                        "be the 2D tracker of a composed method")
    kind_of(source_cls)
    if not (isinstance(lifter_cls, type) and issubclass(lifter_cls, Lifter)):
        raise TypeError(f"{lifter_name!r} is not a bench.lift.Lifter")
    if getattr(source_cls, "sees_ground_truth", False):
        raise TypeError(f"{source_name!r} sees every training label: an upper bound is not a 2D tracker to compose")
    name = f"{source_name}+{lifter_name}"
    attrs = {"source_cls": source_cls, "lifter_cls": lifter_cls, "parts": (source_name, lifter_name),
             "__parts__": (source_cls, lifter_cls),
             # The composed method keeps its 2D source's label regime: 2D boxes on every frame (gt2d), or labels
             # without identities (nkf-em), which its lifter then also gets (lifting needs no identity).
             "sees_2d_ground_truth": bool(getattr(source_cls, "sees_2d_ground_truth", False)),
             "sees_identities": bool(getattr(source_cls, "sees_identities", True)),
             "__doc__": f"{source_name}'s 2D tracks lifted to 3D by {lifter_name} (bench.lift.Lifted).",
             "__module__": __name__}
    return type(name, (Lifted,), attrs)
