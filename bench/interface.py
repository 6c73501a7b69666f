"""What a method is: the one interface every labeler, learner and other method implements.

scikit-learn style: the constructor only stores its keyword parameters (they come from the
resolved config's ``method`` / ``base`` sections); all work happens in ``fit`` / ``label`` /
``predict``. A method sees data only through the views built by :mod:`bench.firewall`:

- :class:`TrainView`: the training videos (images, intrinsics, poses, timestamps) and the
  budget's labels, nothing else;
- :class:`SplitView`: the videos of a split to predict on, without any labels.

Three kinds of method:

- a :class:`Labeler` turns the sparse labels into dense labels with confidences (pseudolabels);
- a :class:`Learner` (a base tracker) trains on labels and predicts tracks on new videos;
- a :class:`Method` (anything else: detectors from 2D labels, trackers without ID labels, point
  trackers) implements ``fit`` / ``predict`` directly.

Each declares ``outputs`` (what its predictions are), ``sees_ground_truth`` (False for every
method except the upper bounds, which the runner then hands the full training labels) and
``sees_identities`` (False for a method that must learn without track ids: its labels have none).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from bench.data.masks import MaskKey, RowMask
from bench.data.sequence import PointTracks, Sequence

Output = Literal["3d-tracks", "3d-detections", "2d-tracks", "point-tracks"]
OUTPUTS: tuple[str, ...] = ("3d-tracks", "3d-detections", "2d-tracks", "point-tracks")


@dataclass(frozen=True)
class SplitView:
    """Videos without labels: what a method may look at when predicting.

    ``queries`` holds, for point-tracking tasks, each sequence's query points ``(N, 3)`` rows of
    (x_px, y_px, t): part of the task's input (TAPVid-3D gives them at test time), not a label.
    ``detections`` holds the dataset's public detections of these videos (MOT17's ``det.txt``;
    a track table with every ``track_id`` -1; empty when the dataset ships none): also an input.
    ``depth`` holds each sequence's given video depth ``(T, H, W)`` metres, read-only, where the dataset ships
    one (synth-dense: rendered depth through a noise model): an input, as a video depth network's output is.
    """

    name: str
    sequences: dict[str, Sequence]
    frame_rate: float
    queries: dict[str, np.ndarray] = field(default_factory=dict)
    detections: pd.DataFrame = field(default_factory=pd.DataFrame)
    depth: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return sum(s.num_frames for s in self.sequences.values())


@dataclass(frozen=True)
class TrainView(SplitView):
    """The training videos plus the labels the budget allows (a private copy of those rows).

    ``budget`` is the number of labels per track (None: fully labelled, only for methods that
    declare ``sees_ground_truth``); in the regime "2d-all" it is the percentage of sequences with 3D boxes.
    For a method that declares ``sees_identities = False`` the
    labels carry no identities: every ``track_id`` is -1 and rows are ordered by box, not by id.

    ``points`` holds the training videos' point tracks (``{seq: PointTracks}``, private copies) and is filled
    only for a method that declares ``sees_ground_truth`` (a point tracker trained fully supervised on
    synthetic ground truth, as DELTA is on Kubric); empty for every other method.
    """

    labels: pd.DataFrame = field(default_factory=pd.DataFrame)
    budget: int | None = None
    # The regime "2D boxes on every frame" (``sees_2d_ground_truth``): every training box's 2D columns and
    # identity, 3D columns NaN; empty for every other method.
    tracks_2d: pd.DataFrame = field(default_factory=pd.DataFrame)
    points: dict[str, PointTracks] = field(default_factory=dict)
    # Regime "2d-all" (a method declaring ``label_regime = "2d-all"``): the sequences whose labels carry 3D boxes
    # (every other sequence's 3D columns are NaN); None in the default regime.
    seqs_3d: tuple[str, ...] | None = None
    # The instance masks of the label rows the dataset has ({(seq, frame id, track_id): RowMask}, read-only crops
    # of each row's box, bench.data.masks), and where they came from ("" when it has none: a method then uses the
    # boxes). Only rows of ``labels`` ever have one; a method without identities gets none.
    masks: dict[MaskKey, RowMask] = field(default_factory=dict)
    mask_source: str = ""


@dataclass
class RunContext:
    """Everything a method may know about the run besides the data and its own parameters.

    A method's parameters are its constructor keywords (the runner passes the resolved config's
    ``method`` / ``base`` section, which the profile YAML and ``--set`` fill in); the context carries
    no profile name, so no method can keep settings of its own per profile. ``config`` is that same
    section, read-only by convention; ``work_dir`` a private folder for scratch files and checkpoints;
    ``progress(done, total, what)`` reports progress (the runner draws the bar).

    ``cache_dir`` is a folder shared by the runs of one results store for what a method builds from no
    benchmark data and may reuse across runs (pretrained2d's checkpoint, trained on other worlds); the firewall
    allows it; None outside the runner. ``notes`` are facts a method wants in the run's manifest (the data hash
    of such a corpus): the runner stores them as ``manifest["method_notes"]``.
    """

    device: str = "cpu"
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    work_dir: Path = field(default_factory=Path.cwd)
    cache_dir: Path | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[int, int, str], None] = field(default=lambda done, total, what: None)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("bench.method"))


class _Base:
    """Shared plumbing: parameters stored by the constructor, introspectable like scikit-learn.

    A method declares its parameters as keywords of its own ``__init__`` (the signature is the schema:
    the runner refuses an unknown name at plan time, with a close name) and hands them to this
    constructor to store; a method without an ``__init__`` of its own takes no parameters."""

    outputs: ClassVar[str] = "3d-tracks"
    sees_ground_truth: ClassVar[bool] = False
    # False: the label regime "detections without identities" (nkf-em): the firewall strips every
    # track id from the labels this method is handed (bench.firewall.train_view).
    sees_identities: ClassVar[bool] = True
    # True: the label regime "2D boxes on every frame" (gt2d): the firewall adds every training box's 2D columns
    # (no 3D) as ``TrainView.tracks_2d``; the 3D labels stay the budget's.
    sees_2d_ground_truth: ClassVar[bool] = False
    # Which labels a budget means (bench.labels.REGIMES): "3d-budget", k 2D+3D labels per track (SPOT's), or
    # "2d-all" (BA²-Det): a 2D box with its track id on every training frame and 3D boxes on a share of the
    # sequences; the budget is then that share in percent (0 allowed), and the firewall blanks every other 3D box.
    label_regime: ClassVar[str] = "3d-budget"

    def __init__(self, **params: Any) -> None:
        # Only store parameters: construction must be cheap and side-effect free, so the registry
        # and `bench ls` can instantiate nothing heavy, and the config fully describes the method.
        self.params = dict(params)

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def set_params(self, **params: Any) -> _Base:
        """Change parameters after construction (scikit-learn's ``set_params``), e.g. a threshold between
        ``fit`` and ``predict``. Checked as the constructor checks them: an unknown name raises TypeError."""
        self.params = type(self)(**{**self.params, **params}).params
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{type(self).__name__}({args})"


class Labeler(_Base):
    """Sparse labels in, dense labels (a track table with ``conf``) on the training videos out."""

    outputs: ClassVar[str] = "3d-tracks"
    # The base tracker the runner trains on this labeler's pseudolabels when the user names none
    # (``--base none`` skips it): a labeler evaluated downstream, as its paper does, sets it.
    default_base: ClassVar[str | None] = None
    # True: the labeler's ``conf`` claims to be the probability that a box is right; its pseudolabels are then also
    # scored with the protocol ``conf-calibration`` (bench.metrics.calibration: reliability bins, ECE).
    calibrated_conf: ClassVar[bool] = False

    def fit(self, train: TrainView, ctx: RunContext) -> None:  # noqa: B027 - many labelers learn nothing
        """Learn from the training videos and their sparse labels (optional)."""

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        """Pseudolabels for the training videos: a track table whose ``conf`` is the confidence.

        It may carry ``attrs["neg_weight_maps"]`` = {(seq, frame id): 2D float array in [0, 1]}: per-pixel
        weights of the base tracker's negative (background) loss (FNComp); the runner stores them with the
        pseudolabels and hands them to the base tracker in its labels' ``attrs``.
        """
        raise NotImplementedError


class Learner(_Base):
    """A base tracker: trained on (pseudo)labels, predicts tracks on unseen videos.

    Learners whose training is worth caching implement ``state_dict`` / ``load_state_dict``
    (tensors or arrays only: the runner saves them with ``torch.save`` and loads them with
    ``weights_only=True``).
    """

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        raise NotImplementedError

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any] | None:
        """Trained weights, or None when this learner's training is not cached separately."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class Method(Learner):
    """Any other method: ``fit(train, labels, ctx)`` on the budget's labels, then ``predict``.

    It has the learner's signature; the difference is intent: a method is run on its own, never
    as the base of a labeler.
    """


def kind_of(obj: type | object) -> str:
    """"labeler", "learner" or "method" for a method class or instance."""
    cls = obj if isinstance(obj, type) else type(obj)
    if issubclass(cls, Labeler):
        return "labeler"
    if issubclass(cls, Method):
        return "method"
    if issubclass(cls, Learner):
        return "learner"
    raise TypeError(f"{cls.__module__}.{cls.__qualname__} is not a bench Labeler, Learner or Method")
