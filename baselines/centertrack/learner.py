"""CenterTrack as a bench ``Learner``: fit on a label track table, predict 3D tracks on unseen videos.

Every setting is a constructor keyword (the signature is the schema, as in scikit-learn); the defaults
are the ``quick`` recipe, and each profile's own values live in its YAML (``methods.centertrack`` in
``bench/profiles/{smoke,quick,paper}.yaml``), e.g. ``steps``, ``lr``, ``batch_size``, ``input_size``,
``track_thresh``; besides the network and training settings:
- ``classes``: class names to detect (default: the known classes present in the labels),
- ``weights``: a local checkpoint to initialise from (never downloaded; a missing file is an error),
- ``threads``: torch CPU threads for this worker process. Default 1: threads leave the run key, so the float path
  must not depend on the machine's core count (seed 0 of sparse3dtrack@4 scored 17.97 kitti-2d MOTA with 1 thread,
  26.61 with 2); a sweep uses the cores with ``--jobs N``. None: torch's default (all cores; other numbers),
- ``max_depth``: detections farther than this (m) are not reported; default: the farthest labelled box in training,
- ``depth_mode``: "direct" (default: regress z) or "geometric" (regress log(z) over the prior fy * h3d / h2d);
  saved with the weights, so a restored model decodes depth the way it was trained,
- ``depth_uncertainty``: a head predicting the depth's uncertainty, trained by the Laplace likelihood (MonoFlex /
  GUPNet); the output score becomes the detection score times exp(-sigma / 1 m), so score-ranked 3D metrics (AMOTA,
  AP) see the detections whose depth is likely right first. Association still uses the detection score.
- ``orientation_loss``: "multibin" (CenterNet's) or "multibin-flip" (BA²-Det's Eq. 6: per object the smaller of
  the loss of the heading and of its 180° turn, for pseudo-labels whose front and back are unknown).
An FNComp-style labeler passes per-frame negative-loss weight maps in
``labels.attrs["neg_weight_maps"]``: ``{(seq, frame): (H', W') array in [0, 1]}`` (any size;
resized to the output grid).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from baselines.centertrack.infer import track_sequences
from baselines.centertrack.model import save_weights
from baselines.centertrack.targets import DEPTH_MODES, check_depth_mode
from baselines.centertrack.train import NATIVE, build_model, resolve_input_size
from baselines.centertrack.train import train as train_model
from bench.data.tracks import CLASSES, DONTCARE
from bench.interface import Learner, RunContext, SplitView, TrainView

CHECKPOINT = "centertrack.pt"
ARCH_KEYS = ("input_size", "width", "head_conv", "depth", "stem_kernel")


def _encode_classes(classes: tuple[str, ...]) -> torch.Tensor:
    # The runner stores state dicts of tensors only (weights_only loading), so names travel as bytes.
    return torch.tensor(list("\n".join(classes).encode()), dtype=torch.uint8)


def _decode_classes(t: torch.Tensor) -> tuple[str, ...]:
    return tuple(bytes(t.tolist()).decode().split("\n"))


ORIENTATION_LOSSES = ("multibin", "multibin-flip")


class CenterTrackLearner(Learner):
    outputs: ClassVar[str] = "3d-tracks"

    def __init__(
        self, *,
        # network (saved with the weights: ARCH_KEYS)
        input_size: str | Sequence[int] = NATIVE,  # (w, h), or "native": the images' size rounded up to 32
        width: int = 16, head_conv: int = 32, depth: Sequence[int] = (1, 1, 2, 2), stem_kernel: int = 3,
        # training: a number of steps, or of epochs when steps is None (no clock decides)
        steps: int | None = 2000, epochs: float | None = None, batch_size: int = 8, lr: float = 1e-3,
        lr_step: float = 0.8,  # the lr drops x0.1 after this share of the steps
        weight_decay: float = 0.0, grad_clip: float = 35.0, max_objs: int = 64,
        ema: float = 0.998,  # decay of the weight average that becomes the trained model (0: the last step's)
        # CenterTrack's nuScenes/KITTI training noise on the previous frame's boxes
        hm_disturb: float = 0.05, lost_disturb: float = 0.4, fp_disturb: float = 0.1, max_frame_dist: int = 3,
        flip: float = 0.5,  # probability of mirroring a sample left-right (CenterTrack's --flip 0.5)
        train_crop: Sequence[int] | None = None,  # (w, h): train on random windows of the input (multiples of 32)
        zoom: float = 1.0,  # > 1: zoom into a random part of a sample, up to this factor (objects come nearer)
        # inference
        track_thresh: float = 0.3, new_thresh: float = 0.4, max_age: int = 3, topk: int = 100,
        max_depth: float | None = None,  # drop detections farther (m); None: the farthest training label
        depth_mode: str = "direct",  # "geometric": the dep head regresses log(z / (fy * h3d / h2d))
        depth_uncertainty: bool = False,  # a Laplace uncertainty head for depth (saved with the weights)
        # "multibin-flip": BA²-Det's Eq. 6, the smaller of the loss of the heading and of its 180° turn
        orientation_loss: str = "multibin",
        # run
        classes: Sequence[str] | None = None, weights: str | None = None, threads: int | None = 1,
    ) -> None:
        super().__init__(
            input_size=input_size, width=width, head_conv=head_conv, depth=depth, stem_kernel=stem_kernel,
            steps=steps, epochs=epochs, batch_size=batch_size, lr=lr, lr_step=lr_step, weight_decay=weight_decay,
            grad_clip=grad_clip, max_objs=max_objs, ema=ema, hm_disturb=hm_disturb, lost_disturb=lost_disturb,
            fp_disturb=fp_disturb, max_frame_dist=max_frame_dist, flip=flip, train_crop=train_crop, zoom=zoom,
            track_thresh=track_thresh,
            new_thresh=new_thresh, max_age=max_age, topk=topk, max_depth=max_depth, depth_mode=depth_mode,
            depth_uncertainty=depth_uncertainty, orientation_loss=orientation_loss,
            classes=classes, weights=weights, threads=threads)
        # Checked here (constructors only store and check): a bad value fails at plan time, before any work.
        check_depth_mode(depth_mode)
        if orientation_loss not in ORIENTATION_LOSSES:
            raise ValueError(f"centertrack: orientation_loss must be one of {ORIENTATION_LOSSES}, "
                             f"got {orientation_loss!r}")
        if not float(zoom) >= 1.0:
            raise ValueError(f"centertrack: zoom is the largest zoom-in factor, >= 1 (1: off), got {zoom!r}")
        if steps is None and epochs is None:
            raise ValueError("centertrack: give steps or epochs (the training budget)")
        if input_size != NATIVE and (isinstance(input_size, str) or len(input_size) != 2):
            raise ValueError(f'centertrack: input_size must be (width, height) or "native", got {input_size!r}')
        if train_crop is not None and (isinstance(train_crop, str) or len(train_crop) != 2
                                       or any(int(v) <= 0 or int(v) % 32 for v in train_crop)):
            raise ValueError(f"centertrack: train_crop must be (width, height), multiples of 32, got {train_crop!r}")

    def config(self) -> dict[str, Any]:
        """The flat settings dict the training and inference functions read (run settings left out)."""
        cfg = {k: v for k, v in self.params.items() if k not in ("classes", "weights", "threads")}
        for key in ("steps", "epochs"):  # the budget that is not given is absent, not None
            if cfg[key] is None:
                del cfg[key]
        if cfg["input_size"] != NATIVE:  # "native" is resolved against the training images (resolve_input_size)
            cfg["input_size"] = tuple(int(v) for v in cfg["input_size"])
        cfg["depth"] = tuple(int(v) for v in cfg["depth"])
        if cfg["train_crop"] is not None:
            cfg["train_crop"] = tuple(int(v) for v in cfg["train_crop"])
        return cfg

    def _device(self, ctx: RunContext) -> str:
        threads = self.params["threads"]
        if threads:
            torch.set_num_threads(int(threads))
        if str(ctx.device).startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"centertrack: device {ctx.device!r} asked for, but torch sees no CUDA device")
        return ctx.device

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        cfg = resolve_input_size(self.config(), train.sequences)
        params = self.params
        present = set(labels["cls"]) - {DONTCARE}
        classes = tuple(params.get("classes") or [c for c in CLASSES if c in present]
                        + sorted(present - set(CLASSES)))
        if not classes:
            raise ValueError("centertrack: the labels have no objects of any class to train on")

        def progress(done: int, total: int, log: dict) -> None:
            ctx.progress(done, total, f"centertrack step {done}/{total} loss {log['total']:.3f}")

        self.model_, self.history_ = train_model(
            train.sequences, labels, classes, cfg, device=self._device(ctx), seed=ctx.seed,
            weight_maps=labels.attrs.get("neg_weight_maps"), init_weights=params.get("weights"), progress=progress)
        self.classes_ = classes
        # Objects beyond the farthest label were never labelled (DontCare or out of range): not reported.
        z = labels.loc[labels["cls"] != DONTCARE, "z"].to_numpy(dtype=float)
        far = float(np.nanmax(z)) if np.isfinite(z).any() else None
        self.config_ = {**cfg, "max_depth": cfg.get("max_depth") or far}
        Path(ctx.work_dir).mkdir(parents=True, exist_ok=True)
        save_weights(self.model_, str(Path(ctx.work_dir) / CHECKPOINT))
        last = self.history_[-1]
        ctx.logger.info("centertrack trained %d steps in %.1f s, final loss %.3f", len(self.history_),
                        last["seconds"], last["total"])

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        if not hasattr(self, "model_"):
            raise RuntimeError("centertrack: predict() called before fit() or load_state_dict()")
        # Thresholds may change between fit and predict; the network's shape may not.
        cfg = {**self.config(), **{k: self.config_[k] for k in (*ARCH_KEYS, "depth_mode", "depth_uncertainty")}}
        cfg["max_depth"] = self.params["max_depth"] or self.config_.get("max_depth")
        device = self._device(ctx)
        model = self.model_.to(device)
        table, stats = track_sequences(model, split.sequences, self.classes_, cfg, device=device)
        self.predict_stats_ = stats
        ctx.logger.info("centertrack tracked %d frames at %.1f FPS on %s", stats["frames"], stats["fps"], device)
        return table

    def state_dict(self) -> dict[str, Any] | None:
        if not hasattr(self, "model_"):
            return None
        state = {f"model.{k}": v.detach().cpu() for k, v in self.model_.state_dict().items()}
        state["meta.classes"] = _encode_classes(self.classes_)
        for key in ARCH_KEYS:
            state[f"meta.{key}"] = torch.tensor(self.config_[key]).reshape(-1)
        state["meta.depth_mode"] = torch.tensor([DEPTH_MODES.index(self.config_["depth_mode"])])
        state["meta.depth_uncertainty"] = torch.tensor([int(bool(self.config_["depth_uncertainty"]))])
        state["meta.max_depth"] = torch.tensor([self.config_.get("max_depth") or 0.0], dtype=torch.float64)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.classes_ = _decode_classes(state["meta.classes"])
        cfg = self.config()
        for key in ARCH_KEYS:
            value = tuple(int(v) for v in np.asarray(state[f"meta.{key}"]).reshape(-1))
            cfg[key] = value if key in ("input_size", "depth") else value[0]
        # Checkpoints from before depth_mode existed regressed depth directly.
        mode = int(np.asarray(state["meta.depth_mode"]).reshape(-1)[0]) if "meta.depth_mode" in state else 0
        cfg["depth_mode"] = DEPTH_MODES[mode]
        unc = state.get("meta.depth_uncertainty")  # absent in checkpoints from before the head existed
        cfg["depth_uncertainty"] = bool(int(np.asarray(unc).reshape(-1)[0])) if unc is not None else False
        if "meta.max_depth" in state:  # 0: no limit
            cfg["max_depth"] = float(np.asarray(state["meta.max_depth"]).reshape(-1)[0]) or None
        self.config_ = cfg
        self.model_ = build_model(cfg, len(self.classes_))
        self.model_.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
        self.model_.eval()
