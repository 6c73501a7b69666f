"""CenterNet "ddd" as a bench method (3D detections on unseen videos) and as a 3D lifter of 2D tracks.

Every setting is a constructor keyword; the defaults are the ``quick`` recipe and each profile's own values
live in ``methods.centernet`` of ``bench/profiles/{smoke,quick,paper}.yaml``. ``fit`` trains on the labels it
is handed: the budget's sparse 3D labels when run alone, each row weighted by its ``conf``. ``predict``
returns one row per detection (``track_id`` numbers the detections of a frame: detections have no identity).
As a lifter (:class:`bench.lift.Lifter`), ``lift_frame`` runs the network once on a frame and gives each
tracked 2D box the 3D box of the detection it matches, or the heads read at its centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from baselines.centernet.decode import Detections3D, decode, heads_at
from baselines.centernet.model import CenterNetDDD
from baselines.centernet.train import build_model
from baselines.centernet.train import train as train_model
from baselines.centertrack.model import save_weights
from baselines.centertrack.targets import DOWN, scale_intrinsics
from baselines.centertrack.train import NATIVE, normalise, resize_images, resolve_input_size
from bench.data.sequence import Sequence as Video
from bench.data.tracks import CLASSES, DONTCARE, empty_tracks, has_3d, make_tracks
from bench.interface import RunContext, SplitView, TrainView
from bench.lift import LiftedFrame, Lifter, match_detections

ARCH_KEYS = ("input_size", "width", "head_conv", "depth", "stem_kernel")
CHECKPOINT = "centernet.pt"


def _encode_names(names: tuple[str, ...]) -> torch.Tensor:
    return torch.tensor(list("\n".join(names).encode()), dtype=torch.uint8)


def _decode_names(t: torch.Tensor) -> tuple[str, ...]:
    return tuple(bytes(t.tolist()).decode().split("\n"))


class CenterNet(Lifter):
    """CenterNet's monocular 3D detector trained from scratch on the labels at hand."""

    outputs: ClassVar[str] = "3d-detections"

    def __init__(
        self, *,
        input_size: str | Sequence[int] = NATIVE, width: int = 16, head_conv: int = 32,
        depth: Sequence[int] = (1, 1, 2, 2), stem_kernel: int = 3,
        steps: int | None = 1500, epochs: float | None = None, batch_size: int = 8, lr: float = 1e-3,
        lr_step: float = 0.8, flip: float = 0.5, max_objs: int = 64,
        topk: int = 100, score_thresh: float = 0.1,  # detections reported: the top K peaks above this score
        match_iou: float = 0.3,  # lifting: least 2D IoU between a tracked box and a detection's projected box
        classes: Sequence[str] | None = None, weights: str | None = None, threads: int | None = 1,
    ) -> None:
        super().__init__(input_size=input_size, width=width, head_conv=head_conv, depth=depth,
                         stem_kernel=stem_kernel, steps=steps, epochs=epochs, batch_size=batch_size, lr=lr,
                         lr_step=lr_step, flip=flip, max_objs=max_objs, topk=topk, score_thresh=score_thresh,
                         match_iou=match_iou, classes=classes, weights=weights, threads=threads)
        if steps is None and epochs is None:
            raise ValueError("centernet: give steps or epochs (the training budget)")
        if input_size != NATIVE and (isinstance(input_size, str) or len(input_size) != 2):
            raise ValueError(f'centernet: input_size must be (width, height) or "native", got {input_size!r}')
        if not 0.0 <= flip <= 1.0 or not 0.0 <= match_iou <= 1.0:
            raise ValueError("centernet: flip and match_iou must lie in [0, 1]")

    # ---- training ----
    def _config(self) -> dict[str, Any]:
        cfg = {k: v for k, v in self.params.items() if k not in ("classes", "weights", "threads")}
        if cfg["input_size"] != NATIVE:
            cfg["input_size"] = tuple(int(v) for v in cfg["input_size"])
        cfg["depth"] = tuple(int(v) for v in cfg["depth"])
        return cfg

    def _device(self, ctx: RunContext) -> str:
        if self.params["threads"]:
            torch.set_num_threads(int(self.params["threads"]))
        if str(ctx.device).startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"centernet: device {ctx.device!r} asked for, but torch sees no CUDA device")
        return ctx.device

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        cfg = resolve_input_size(self._config(), train.sequences)
        usable = labels[has_3d(labels) | (labels["cls"] == DONTCARE).to_numpy()]
        present = set(usable["cls"]) - {DONTCARE}
        classes = tuple(self.params["classes"] or [c for c in CLASSES if c in present] + sorted(present - set(CLASSES)))
        if not classes:
            raise ValueError("centernet: the labels hold no object with a 3D box to train on")

        def progress(done: int, total: int, log: dict) -> None:
            ctx.progress(done, total, f"centernet step {done}/{total} loss {log['total']:.3f}")

        self.model_, self.history_ = train_model(train.sequences, usable, classes, cfg, device=self._device(ctx),
                                                 seed=ctx.seed, progress=progress, init_weights=self.params["weights"])
        self.classes_, self.config_ = classes, cfg
        Path(ctx.work_dir).mkdir(parents=True, exist_ok=True)
        save_weights(self.model_, str(Path(ctx.work_dir) / CHECKPOINT))
        ctx.logger.info("centernet trained %d steps, final loss %.3f", len(self.history_), self.history_[-1]["total"])

    # ---- inference ----
    def _model(self, ctx: RunContext) -> CenterNetDDD:
        if not hasattr(self, "model_"):
            raise RuntimeError("centernet: predict/lift called before fit() or load_state_dict()")
        return self.model_.to(self._device(ctx))

    @torch.no_grad()
    def _frames(self, seq: Video, indices: list[int], ctx: RunContext
                ) -> list[tuple[dict[str, torch.Tensor], np.ndarray, float, float]]:
        """(raw outputs, input-size intrinsics, sx, sy) of each frame index."""
        model = self._model(ctx)
        size = tuple(self.config_["input_size"])
        sx, sy = size[0] / seq.image_size[0], size[1] / seq.image_size[1]
        images = resize_images(seq, size)  # type: ignore[arg-type]
        out = []
        for t in indices:
            raw = model(normalise(images[t:t + 1]).to(ctx.device))
            out.append((raw, scale_intrinsics(seq.intrinsics[t], sx, sy), sx, sy))
        return out

    def _detect(self, raw: dict[str, torch.Tensor], kmat: np.ndarray, sx: float, sy: float) -> Detections3D:
        dets = decode(raw, kmat, k=int(self.params["topk"]), threshold=float(self.params["score_thresh"]))[0]
        return dets.scaled(sx, sy)

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        rows = []
        for name in sorted(split.sequences):
            seq = split.sequences[name]
            w, h = seq.image_size
            for t, (raw, kmat, sx, sy) in enumerate(self._frames(seq, list(range(seq.num_frames)), ctx)):
                dets = self._detect(raw, kmat, sx, sy)
                boxes = dets.boxes.copy()
                boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
                boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
                for j in range(len(dets)):
                    b = dets.boxes3d[j]
                    rows.append({"seq": name, "frame": int(seq.frame_ids[t]), "track_id": j,
                                 "cls": self.classes_[int(dets.cls[j])], "score": float(dets.score[j]),
                                 "x1": boxes[j, 0], "y1": boxes[j, 1], "x2": boxes[j, 2], "y2": boxes[j, 3],
                                 "x": b[0], "y": b[1], "z": b[2], "h": b[3], "w": b[4], "l": b[5], "yaw": b[6]})
        return make_tracks(rows, source="centernet detections") if rows else empty_tracks()

    def lift_frames(self, seq: Video, boxes: dict[int, tuple[np.ndarray, list[str]]], ctx: RunContext
                    ) -> dict[int, LiftedFrame]:
        indices = sorted(boxes)
        lifted = {}
        for t, (raw, kmat, sx, sy) in zip(indices, self._frames(seq, indices, ctx), strict=True):
            boxes2d, names = boxes[t]
            dets = self._detect(raw, kmat, sx, sy)
            det_names = [self.classes_[int(c)] for c in dets.cls]
            scale = np.array([sx, sy, sx, sy])
            fallback = heads_at(raw, 0, boxes2d * scale, kmat)
            # The fallback's confidence: the heatmap's own belief in an object of that class at the box centre.
            hm = torch.sigmoid(raw["hm"][0]).cpu().numpy()
            ct = ((boxes2d[:, :2] + boxes2d[:, 2:]) / 2 * scale[:2] / DOWN).astype(np.int64)
            ct[:, 0] = ct[:, 0].clip(0, hm.shape[2] - 1)
            ct[:, 1] = ct[:, 1].clip(0, hm.shape[1] - 1)
            cls_idx = np.array([self.classes_.index(n) if n in self.classes_ else 0 for n in names], dtype=np.int64)
            fallback_conf = hm[cls_idx, ct[:, 1], ct[:, 0]] if len(ct) else np.zeros(0)
            lifted[t] = match_detections(boxes2d, names, dets.boxes3d, det_names, dets.score, seq.intrinsics[t],
                                         seq.image_size, fallback, fallback_conf, float(self.params["match_iou"]))
        return lifted

    # ---- checkpoint ----
    def state_dict(self) -> dict[str, Any] | None:
        if not hasattr(self, "model_"):
            return None
        state = {f"model.{k}": v.detach().cpu() for k, v in self.model_.state_dict().items()}
        state["meta.classes"] = _encode_names(self.classes_)
        for key in ARCH_KEYS:
            state[f"meta.{key}"] = torch.tensor(self.config_[key]).reshape(-1)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.classes_ = _decode_names(state["meta.classes"])
        cfg = self._config()
        for key in ARCH_KEYS:
            value = tuple(int(v) for v in np.asarray(state[f"meta.{key}"]).reshape(-1))
            cfg[key] = value if key in ("input_size", "depth") else value[0]
        self.config_ = cfg
        self.model_ = build_model(cfg, len(self.classes_))
        self.model_.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
        self.model_.eval()
