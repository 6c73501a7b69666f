"""Sparse3DTrack as a bench labeler: sparse labels + unlabeled videos in, dense 3D pseudo tracks out.

``fit`` trains, on the budget's labels and the videos only, the self-supervised depth network
(unless ``use_depth`` is off, ablation D1), the 2D query matcher with the chosen sample mining
(A1-A4) and the 3D geometry network with the chosen yaw formulation (Y1-Y3). ``label`` propagates
every label through its video in 2D (:mod:`.propagate`), lifts every 2D box to 3D
(:func:`.geometry.lift_boxes`), sets the pseudolabel confidence (1.0 everywhere when
``conf_weighting`` is off, B1) and, with ``fncomp`` (B3), attaches the FNComp negative-loss weight
maps as ``attrs["neg_weight_maps"]`` for the base tracker. Human-labelled frames keep their rows.

``Sparse3DTrackLift`` is the paper's "2D tracker + our geometry" baseline shape: 2D tracks from
another source (here the ``interpolate`` labeler's boxes -- SAM2 cannot run offline) lifted to 3D by
the geometry module alone. Parameters: see :mod:`.config`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from bench.data.tracks import BOX3D_COLUMNS, DONTCARE, empty_tracks, has_3d, make_tracks, sort_tracks
from bench.interface import Labeler, RunContext, TrainView
from bench.labels.degrade import drop_pseudolabels
from methods.sparse3dtrack import fncomp as fncomp_module
from methods.sparse3dtrack.config import resolve_params
from methods.sparse3dtrack.propagate import encode_sequence, propagate


def _device(ctx: RunContext) -> str:
    device = str(ctx.device or "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"sparse3dtrack: device {device!r} was asked for but torch sees no CUDA GPU "
                           "(run with --device cpu)")
    return device


def _stage_progress(ctx: RunContext, stage: str) -> Callable[[int, int, str], None]:
    def report(done: int, total: int, what: str = "") -> None:
        ctx.progress(done, total, f"sparse3dtrack {stage}")
    return report


def _usable_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """Labels the modules learn from: real objects with a 3D box and a track id."""
    keep = (labels["cls"] != DONTCARE).to_numpy() & has_3d(labels) & (labels["track_id"] >= 0).to_numpy()
    return labels[keep].reset_index(drop=True)


def _log_masks(train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
    """Say where the template masks come from, and how many labels fall back to their box."""
    keys = zip(labels["seq"].astype(str), labels["frame"].astype(int), labels["track_id"].astype(int), strict=True)
    have = sum(key in train.masks for key in keys)
    if have == len(labels):
        ctx.logger.info("sparse3dtrack: object masks for all %d labels (%s)", have, train.mask_source)
    else:
        ctx.logger.warning("sparse3dtrack: object masks for %d of %d labels (%s); the others use box masks "
                           "(for real KITTI set BENCH_KITTI_MOTS_ROOT to KITTI-MOTS instances_txt)", have,
                           len(labels), train.mask_source or "the dataset has none")


class _GeometryLabeler(Labeler):
    """Shared parts: parameter resolution, threads/device, depth + geometry training, lifting."""

    outputs: ClassVar[str] = "3d-tracks"
    default_base: ClassVar[str] = "centertrack"
    name: ClassVar[str] = "sparse3dtrack"

    def __init__(self, *, mining: str | Sequence[str] | None = None, use_depth: bool | None = None,
                 yaw_mode: str | None = None, conf_weighting: bool | None = None, fncomp: bool | None = None,
                 ablation: str | None = None, weights: str | None = None, threads: int | None = 1,
                 drop_pseudolabels: float = 0.0, variant: str | None = None, **module_settings: Any) -> None:
        """The switches (None: the paper's model, or the ``ablation`` row's value) and run settings are named
        here (``threads`` 1 by default, as CenterTrack's: the run key leaves threads out, so the numbers must not
        depend on the machine's core count); ``module_settings`` are ``<module>_<setting>`` knobs, each declared
        once in its module's ``DEFAULTS`` (see :mod:`.config`): an unknown name is refused here, with a close
        name."""
        super().__init__(mining=mining, use_depth=use_depth, yaw_mode=yaw_mode, conf_weighting=conf_weighting,
                         fncomp=fncomp, ablation=ablation, weights=weights, threads=threads,
                         drop_pseudolabels=drop_pseudolabels, variant=variant, **module_settings)
        self.params = {k: v for k, v in self.params.items() if v is not None}  # None: not set
        resolve_params(self.params)  # checks every name and switch value now, at plan time
        self.depth: torch.nn.Module | None = None
        self.geometry: torch.nn.Module | None = None
        self.history: dict[str, list[dict]] = {}

    def _setup(self, ctx: RunContext) -> tuple[dict[str, Any], str]:
        cfg = resolve_params(self.params)
        if cfg["switches"]["threads"] is not None:
            torch.set_num_threads(int(cfg["switches"]["threads"]))
        return cfg, _device(ctx)

    def _timed(self, ctx: RunContext, stage: str, fn: Callable[[], Any]) -> Any:
        ctx.logger.info("%s: %s ...", self.name, stage)
        start = time.perf_counter()
        out = fn()
        ctx.logger.info("%s: %s done in %.1f s", self.name, stage, time.perf_counter() - start)
        return out

    def _fit_geometry(self, train: TrainView, ctx: RunContext, cfg: dict[str, Any], device: str,
                      labels: pd.DataFrame) -> None:
        from methods.sparse3dtrack.depth import train_depth
        from methods.sparse3dtrack.geometry import train_geometry

        sw = cfg["switches"]
        self.depth = None
        if sw["use_depth"]:
            self.depth, self.history["depth"] = self._timed(ctx, "depth training", lambda: train_depth(
                train.sequences, cfg["depth"], device=device, seed=ctx.seed, progress=_stage_progress(ctx, "depth")))
        self.geometry, self.history["geometry"] = self._timed(ctx, "geometry training", lambda: train_geometry(
            train.sequences, labels, self.depth, cfg["geometry"], yaw_mode=sw["yaw_mode"], device=device,
            seed=ctx.seed, progress=_stage_progress(ctx, "geometry")))

    def _lift(self, train: TrainView, ctx: RunContext, device: str, boxes: pd.DataFrame, labels: pd.DataFrame,
              conf_weighting: bool, source: str) -> pd.DataFrame:
        """3D for every 2D row; labelled rows get their human boxes back; then the track table."""
        from methods.sparse3dtrack.geometry import lift_boxes

        if self.geometry is None:
            raise RuntimeError(f"{self.name}: call fit() before label()")
        table = boxes.copy()
        for column in BOX3D_COLUMNS:
            table[column] = np.nan
        lifted = self._timed(ctx, "3D lifting", lambda: lift_boxes(
            self.geometry, self.depth, train.sequences, make_tracks(table.drop(columns="labelled"), source=source),
            device=device))
        table[list(BOX3D_COLUMNS)] = lifted[list(BOX3D_COLUMNS)].to_numpy()
        human = labels.set_index(["seq", "frame", "track_id"])
        is_label = table["labelled"].to_numpy(bool)
        keys = pd.MultiIndex.from_frame(table.loc[is_label, ["seq", "frame", "track_id"]])
        table.loc[is_label, list(BOX3D_COLUMNS)] = human.loc[keys, list(BOX3D_COLUMNS)].to_numpy()
        # A lifted box the geometry could not place (behind the camera, non-finite) is no label at all.
        b = table[list(BOX3D_COLUMNS)].to_numpy(float)
        valid = np.isfinite(b).all(axis=1) & (b[:, 2] > 0) & (b[:, 3:6] > 0).all(axis=1)
        if (~valid).any():
            ctx.logger.info("%s: dropped %d of %d lifted boxes without a valid 3D box", self.name,
                            int((~valid).sum()), len(table))
        table = table[valid | is_label]
        if not conf_weighting:
            table["conf"] = 1.0
        table["conf"] = table["conf"].clip(0.0, 1.0)
        return table.drop(columns="labelled")

    @staticmethod
    def _finish(table: pd.DataFrame, train: TrainView, source: str) -> pd.DataFrame:
        # DontCare regions of the budget's labelled frames pass through as ignore regions.
        dontcare = train.labels[train.labels["cls"] == DONTCARE]
        rows = [t for t in (make_tracks(table, source=source), dontcare) if len(t)]
        if not rows:
            return empty_tracks()
        return sort_tracks(make_tracks(pd.concat(rows, ignore_index=True), source=source))


class Sparse3DTrack(_GeometryLabeler):
    """The full framework (paper 3.1-3.4)."""

    name: ClassVar[str] = "sparse3dtrack"
    calibrated_conf: ClassVar[bool] = True  # conf = P(IoU >= 0.5), fitted on held-out label matches (.calibration)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.matcher: torch.nn.Module | None = None

    def fit(self, train: TrainView, ctx: RunContext) -> None:
        from methods.sparse3dtrack.matching import train_matcher

        cfg, device = self._setup(ctx)
        labels = _usable_labels(train.labels)
        if labels.empty:
            raise ValueError("sparse3dtrack: the budget holds no labelled object with a 3D box to learn from")
        sw = cfg["switches"]
        ctx.logger.info("sparse3dtrack: %d labels of %d tracks, variant %s, mining %s, depth %s, yaw %s", len(labels),
                        labels.groupby(["seq", "track_id"]).ngroups, sw["variant"], sw["mining"], sw["use_depth"],
                        sw["yaw_mode"])
        _log_masks(train, labels, ctx)
        matcher_cfg = dict(cfg["matcher"])
        if sw["weights"] is not None:  # local DINOv2-style weights: the frozen ViT encoder + trainable adapter
            matcher_cfg.update(encoder="vit", weights=sw["weights"])
        self.matcher, self.history["matcher"] = self._timed(ctx, "matcher training", lambda: train_matcher(
            train.sequences, labels, matcher_cfg, mining=sw["mining"], device=device, seed=ctx.seed,
            progress=_stage_progress(ctx, "matcher"), masks=train.masks))
        self._fit_geometry(train, ctx, cfg, device, labels)

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        cfg, device = self._setup(ctx)
        if self.matcher is None:
            raise RuntimeError("sparse3dtrack: call fit() before label()")
        sw = cfg["switches"]
        labels = _usable_labels(train.labels)
        names = sorted(set(labels["seq"]))
        start = time.perf_counter()
        features = self._timed(ctx, "encoding frames", lambda: {
            n: encode_sequence(self.matcher, train.sequences[n], device=device,
                               batch=int(cfg["propagate"].get("encode_batch", 16))) for n in names})
        boxes = self._timed(ctx, "2D propagation", lambda: propagate(
            self.matcher, train.sequences, labels, cfg["propagate"], device=device,
            progress=_stage_progress(ctx, "propagate"), features=features, masks=train.masks))
        calibration = boxes.attrs.pop("calibration", None)
        samples = boxes.attrs.pop("calibration_samples", None)
        ctx.logger.info("sparse3dtrack: confidence calibration %s", "off (raw heatmap peaks)" if calibration is None
                        else f"isotonic on {calibration.samples} held-out label matches "
                             f"({float((samples[:, 1] >= 0.5).mean()):.2f} right)")
        frames = sum(train.sequences[n].num_frames for n in names)
        seconds = time.perf_counter() - start
        ctx.logger.info("sparse3dtrack: %d 2D pseudolabels on %d frames, %.1f frames/s (encoding + propagation)",
                        len(boxes), frames, frames / max(seconds, 1e-9))
        table = self._lift(train, ctx, device, boxes, labels, sw["conf_weighting"], "sparse3dtrack")
        # A planted regression (0 by default: unchanged), before FNComp so that its maps match the output.
        out = drop_pseudolabels(self._finish(table, train, "sparse3dtrack"), sw["drop_pseudolabels"], ctx.seed)
        if sw["fncomp"]:
            out.attrs["neg_weight_maps"] = self._timed(ctx, "FNComp maps", lambda: fncomp_module.fn_heatmaps(
                features, train.sequences, out, cfg["fncomp"], seed=ctx.seed,
                progress=_stage_progress(ctx, "fncomp")))
        ctx.logger.info("sparse3dtrack: labelling took %.1f s (%.1f frames/s overall)", time.perf_counter() - start,
                        frames / max(time.perf_counter() - start, 1e-9))
        return out


class Sparse3DTrackLift(_GeometryLabeler):
    """2D tracks from another source lifted to 3D by our geometry module alone ("SAM2 + our geometry" shape).

    The 2D source is the ``interpolate`` labeler's boxes (the 3D interpolation between labels,
    projected); only their 2D columns are kept and every unlabelled box is re-estimated in 3D by
    the geometry network trained on the budget's labels. Labelled frames keep the human rows.
    """

    name: ClassVar[str] = "sparse3dtrack-lift"

    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg, device = self._setup(ctx)
        labels = _usable_labels(train.labels)
        if labels.empty:
            raise ValueError("sparse3dtrack-lift: the budget holds no labelled object with a 3D box to learn from")
        self._fit_geometry(train, ctx, cfg, device, labels)

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        from baselines.interpolate import Interpolate

        cfg, device = self._setup(ctx)
        labels = _usable_labels(train.labels)
        source = Interpolate().label(train, ctx)
        source = source[source["cls"] != DONTCARE]
        keys = ["seq", "frame", "track_id"]
        boxes = source[[*keys, "cls", "x1", "y1", "x2", "y2", "conf"]].copy()
        boxes["labelled"] = pd.MultiIndex.from_frame(boxes[keys]).isin(pd.MultiIndex.from_frame(labels[keys]))
        table = self._lift(train, ctx, device, boxes, labels, cfg["switches"]["conf_weighting"], self.name)
        return drop_pseudolabels(self._finish(table, train, self.name), cfg["switches"]["drop_pseudolabels"],
                                 ctx.seed)
