"""DEFT as a bench ``Learner`` (``--base deft``): fit on a label track table, predict 3D tracks on unseen videos.

Every setting is a constructor keyword; the defaults are the ``quick`` recipe and each profile's own values
live in ``methods.deft`` of ``bench/profiles/{smoke,quick,paper}.yaml``. The detector settings are
CenterNet's (:class:`baselines.centernet.method.CenterNet`); ``matcher_*`` train the appearance matcher,
``motion_*`` the LSTM, and the rest are the tracker's thresholds. Labels are weighted by their ``conf``, and a
labeler's FNComp maps (``labels.attrs["neg_weight_maps"]``) scale the detector's negative loss, as for
CenterTrack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from baselines.centernet.decode import decode
from baselines.centernet.model import CenterNetDDD
from baselines.centernet.train import build_model
from baselines.centernet.train import train as train_detector
from baselines.centertrack.model import save_weights
from baselines.centertrack.targets import scale_intrinsics
from baselines.centertrack.train import NATIVE, normalise, resize_images, resolve_input_size
from baselines.deft.matcher import AppearanceMatcher
from baselines.deft.motion import MotionLSTM, train_motion
from baselines.deft.tracker import DeftTracker
from baselines.deft.train import pyramid_channels, train_matcher
from baselines.detector3d import claim_device, network_config
from bench.data.tracks import CLASSES, DONTCARE, empty_tracks, has_3d, make_tracks
from bench.interface import Learner, RunContext, SplitView, TrainView

ARCH_KEYS = ("input_size", "width", "head_conv", "depth", "stem_kernel", "matcher_dim", "matcher_hidden",
             "motion_hidden")
RUN_KEYS = ("classes", "weights", "threads")


def _encode_names(names: tuple[str, ...]) -> torch.Tensor:
    return torch.tensor(list("\n".join(names).encode()), dtype=torch.uint8)


class Deft(Learner):
    outputs: ClassVar[str] = "3d-tracks"

    def __init__(
        self, *,
        # detector (CenterNet "ddd")
        input_size: str | Sequence[int] = NATIVE, width: int = 16, head_conv: int = 32,
        depth: Sequence[int] = (1, 1, 2, 2), stem_kernel: int = 3, steps: int | None = 2000,
        epochs: float | None = None, batch_size: int = 8, lr: float = 1e-3, lr_step: float = 0.8, flip: float = 0.5,
        max_objs: int = 64,
        # appearance matcher
        matcher_dim: int = 16, matcher_hidden: int = 64, matcher_steps: int = 300, matcher_batch: int = 4,
        matcher_lr: float = 1e-3, max_frame_gap: int = 3,
        # motion LSTM
        motion_hidden: int = 32, motion_steps: int = 300, motion_lr: float = 3e-3, history: int = 5,
        # tracking
        det_thresh: float = 0.3, new_thresh: float = 0.4, match_thresh: float = 0.1, veto_iou: float = 0.05,
        memory: int = 5, max_age: int = 3, topk: int = 100,
        classes: Sequence[str] | None = None, weights: str | None = None, threads: int | None = 1,
    ) -> None:
        super().__init__(
            input_size=input_size, width=width, head_conv=head_conv, depth=depth, stem_kernel=stem_kernel,
            steps=steps, epochs=epochs, batch_size=batch_size, lr=lr, lr_step=lr_step, flip=flip, max_objs=max_objs,
            matcher_dim=matcher_dim, matcher_hidden=matcher_hidden, matcher_steps=matcher_steps,
            matcher_batch=matcher_batch, matcher_lr=matcher_lr, max_frame_gap=max_frame_gap,
            motion_hidden=motion_hidden, motion_steps=motion_steps, motion_lr=motion_lr, history=history,
            det_thresh=det_thresh, new_thresh=new_thresh, match_thresh=match_thresh, veto_iou=veto_iou,
            memory=memory, max_age=max_age, topk=topk, classes=classes, weights=weights, threads=threads)
        if steps is None and epochs is None:
            raise ValueError("deft: give steps or epochs (the detector's training budget)")
        if input_size != NATIVE and (isinstance(input_size, str) or len(input_size) != 2):
            raise ValueError(f'deft: input_size must be (width, height) or "native", got {input_size!r}')
        if memory < 1 or history < 1 or max_frame_gap < 1 or not 0.0 <= veto_iou <= 1.0:
            raise ValueError("deft: memory, history and max_frame_gap must be >= 1, veto_iou in [0, 1]")

    def config(self) -> dict[str, Any]:
        return network_config(self.params, RUN_KEYS)

    def _device(self, ctx: RunContext) -> str:
        return claim_device("deft", self.params["threads"], ctx)

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        cfg = resolve_input_size(self.config(), train.sequences)
        self._device(ctx)
        usable = labels[has_3d(labels) | (labels["cls"] == DONTCARE).to_numpy()]
        present = set(usable["cls"]) - {DONTCARE}
        classes = tuple(self.params["classes"] or [c for c in CLASSES if c in present] + sorted(present - set(CLASSES)))
        if not classes:
            raise ValueError("deft: the labels hold no object with a 3D box to train on")

        def progress(what: str) -> Any:
            def report(done: int, total: int, log: dict) -> None:
                ctx.progress(done, total, f"deft {what} {done}/{total} loss {log['total']:.3f}")
            return report

        self.detector_, self.history_ = train_detector(
            train.sequences, usable, classes, cfg, device=ctx.device, seed=ctx.seed, progress=progress("detector"),
            init_weights=self.params["weights"], weight_maps=labels.attrs.get("neg_weight_maps"))
        self.matcher_, matcher_log = train_matcher(self.detector_, train.sequences, usable, classes, cfg,
                                                   seed=ctx.seed, progress=progress("matcher"))
        scales = {name: float(seq.image_size[1]) for name, seq in train.sequences.items()}
        real = usable[(usable["cls"] != DONTCARE).to_numpy() & (usable["track_id"] >= 0).to_numpy()]
        self.motion_, windows = train_motion(real, scales, int(cfg["history"]), int(cfg["motion_hidden"]),
                                             int(cfg["motion_steps"]), float(cfg["motion_lr"]), ctx.seed)
        self.classes_, self.config_ = classes, cfg
        Path(ctx.work_dir).mkdir(parents=True, exist_ok=True)
        save_weights(self.detector_, str(Path(ctx.work_dir) / "deft_detector.pt"))
        ctx.logger.info("deft: detector %d steps (loss %.3f), matcher %d steps, motion LSTM on %d windows%s",
                        len(self.history_), self.history_[-1]["total"], len(matcher_log), windows,
                        "" if self.motion_ is not None else " (none: no veto)")

    @torch.no_grad()
    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        if not hasattr(self, "detector_"):
            raise RuntimeError("deft: predict() called before fit() or load_state_dict()")
        device = self._device(ctx)
        detector = self.detector_.to(device).eval()
        p, size = self.params, tuple(self.config_["input_size"])
        rows = []
        for name in sorted(split.sequences):
            seq = split.sequences[name]
            sx, sy = size[0] / seq.image_size[0], size[1] / seq.image_size[1]
            images = resize_images(seq, size)  # type: ignore[arg-type]
            tracker = DeftTracker(self.matcher_, self.motion_, float(seq.image_size[1]), memory=int(p["memory"]),
                                  history=int(self.config_["history"]), match_thresh=float(p["match_thresh"]),
                                  new_thresh=float(p["new_thresh"]), veto_iou=float(p["veto_iou"]),
                                  max_age=int(p["max_age"]))
            w, h = seq.image_size
            for t in range(seq.num_frames):
                pyramid = detector.pyramid(normalise(images[t:t + 1]).to(device))
                raw = detector.heads_of(pyramid[0])
                kmat = scale_intrinsics(seq.intrinsics[t], sx, sy)
                dets = decode(raw, kmat, k=int(p["topk"]), threshold=float(p["det_thresh"]))[0]
                centres = torch.from_numpy((dets.boxes[:, :2] + dets.boxes[:, 2:]) / 2).float()
                emb = self.matcher_.embed(pyramid, centres, size)  # type: ignore[arg-type]
                dets = dets.scaled(sx, sy)
                ids = tracker.step(emb, dets.boxes, dets.score)
                boxes = dets.boxes.copy()
                boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
                boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
                for j in np.flatnonzero(ids >= 0):
                    b = dets.boxes3d[j]
                    rows.append({"seq": name, "frame": int(seq.frame_ids[t]), "track_id": int(ids[j]),
                                 "cls": self.classes_[int(dets.cls[j])], "score": float(dets.score[j]),
                                 "x1": boxes[j, 0], "y1": boxes[j, 1], "x2": boxes[j, 2], "y2": boxes[j, 3],
                                 "x": b[0], "y": b[1], "z": b[2], "h": b[3], "w": b[4], "l": b[5], "yaw": b[6]})
        return make_tracks(rows, source="deft predictions") if rows else empty_tracks()

    def state_dict(self) -> dict[str, Any] | None:
        if not hasattr(self, "detector_"):
            return None
        state = {f"detector.{k}": v.detach().cpu() for k, v in self.detector_.state_dict().items()}
        state.update({f"matcher.{k}": v.detach().cpu() for k, v in self.matcher_.state_dict().items()})
        if self.motion_ is not None:
            state.update({f"motion.{k}": v.detach().cpu() for k, v in self.motion_.state_dict().items()})
        state["meta.classes"] = _encode_names(self.classes_)
        for key in (*ARCH_KEYS, "history"):
            state[f"meta.{key}"] = torch.tensor(self.config_[key]).reshape(-1)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.classes_ = tuple(bytes(state["meta.classes"].tolist()).decode().split("\n"))
        cfg = self.config()
        for key in (*ARCH_KEYS, "history"):
            value = tuple(int(v) for v in np.asarray(state[f"meta.{key}"]).reshape(-1))
            cfg[key] = value if key in ("input_size", "depth") else value[0]
        self.config_ = cfg

        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

        self.detector_: CenterNetDDD = build_model(cfg, len(self.classes_))
        self.detector_.load_state_dict(part("detector."))
        self.detector_.eval()
        self.matcher_ = AppearanceMatcher(pyramid_channels(self.detector_), dim=cfg["matcher_dim"],
                                          hidden=cfg["matcher_hidden"])
        self.matcher_.load_state_dict(part("matcher."))
        self.matcher_.eval()
        motion = part("motion.")
        self.motion_: MotionLSTM | None = None
        if motion:
            self.motion_ = MotionLSTM(cfg["motion_hidden"])
            self.motion_.load_state_dict(motion)
            self.motion_.eval()
