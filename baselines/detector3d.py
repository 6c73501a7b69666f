"""What the monocular 3D detectors (CenterNet "ddd", FCOS3D) share as bench methods and lifters.

A subclass says how to build, train and read its network (:meth:`MonoDetector3D.build`, :meth:`train`,
:meth:`detect`, :meth:`fallback`); this class does the rest the same way for both: threads and device,
class names, the checkpoint (weights + architecture, tensors only), the per-frame forward pass at the
training input size, the prediction table (one row per detection; ``track_id`` numbers a frame's detections,
which have no identity; the 2D box is the 3D box's projection, clipped to the image) and ``lift_frames``
(match each tracked box to a detection by the projected box's 2D IoU and class, else the heads at its centre).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from baselines.centertrack.model import save_weights
from baselines.centertrack.targets import scale_intrinsics
from baselines.centertrack.train import NATIVE, normalise, resize_images, resolve_input_size
from bench.data.geometry import project_boxes_2d
from bench.data.sequence import Sequence
from bench.data.tracks import CLASSES, DONTCARE, empty_tracks, has_3d, make_tracks
from bench.interface import RunContext, SplitView, TrainView
from bench.lift import LiftedFrame, Lifter, match_detections

# (boxes3d (N, 7), scores (N,), class index (N,)) of one image
Found = tuple[np.ndarray, np.ndarray, np.ndarray]


def _encode_names(names: tuple[str, ...]) -> torch.Tensor:
    # State dicts hold tensors only (weights_only loading), so the class names travel as bytes.
    return torch.tensor(list("\n".join(names).encode()), dtype=torch.uint8)


def _decode_names(t: torch.Tensor) -> tuple[str, ...]:
    return tuple(bytes(t.tolist()).decode().split("\n"))


def network_config(params: dict[str, Any], run_keys: tuple[str, ...]) -> dict[str, Any]:
    """The flat settings dict a CenterNet-family network trains and decodes with: the constructor parameters
    without the run settings, sizes as tuples ("native" input is resolved against the training images later)."""
    cfg = {k: v for k, v in params.items() if k not in run_keys}
    if cfg["input_size"] != NATIVE:
        cfg["input_size"] = tuple(int(v) for v in cfg["input_size"])
    cfg["depth"] = tuple(int(v) for v in cfg["depth"])
    return cfg


def claim_device(name: str, threads: int | None, ctx: RunContext) -> str:
    """Set torch's thread count (when given) and check the run's device; returns it."""
    if threads:
        torch.set_num_threads(int(threads))
    if str(ctx.device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"{name}: device {ctx.device!r} asked for, but torch sees no CUDA device")
    return ctx.device


class MonoDetector3D(Lifter):
    """Base of the monocular 3D detectors; ``name`` and ``arch_keys`` (saved with the weights) per subclass."""

    outputs: ClassVar[str] = "3d-detections"
    name: ClassVar[str] = "detector"
    arch_keys: ClassVar[tuple[str, ...]] = ()
    run_keys: ClassVar[tuple[str, ...]] = ("classes", "weights", "threads")

    def _check_common(self) -> None:
        p = self.params
        if p.get("steps") is None and p.get("epochs") is None:
            raise ValueError(f"{self.name}: give steps or epochs (the training budget)")
        size = p["input_size"]
        if size != NATIVE and (isinstance(size, str) or len(size) != 2 or any(int(v) % 32 for v in size)):
            raise ValueError(f'{self.name}: input_size must be (width, height), multiples of 32, or "native"; '
                             f"got {size!r}")
        if not 0.0 <= float(p["flip"]) <= 1.0 or not 0.0 <= float(p["match_iou"]) <= 1.0:
            raise ValueError(f"{self.name}: flip and match_iou must lie in [0, 1]")

    # ---- what a subclass provides ----
    def build(self, cfg: dict[str, Any], num_classes: int) -> torch.nn.Module:
        raise NotImplementedError

    def train(self, train: TrainView, labels: pd.DataFrame, classes: tuple[str, ...], cfg: dict[str, Any],
              ctx: RunContext) -> tuple[torch.nn.Module, list[dict]]:
        raise NotImplementedError

    def detect(self, raw: Any, kmat: np.ndarray) -> Found:
        """Detections of one image from its raw outputs (``kmat``: input-size intrinsics)."""
        raise NotImplementedError

    def fallback(self, raw: Any, kmat: np.ndarray, boxes: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(3D boxes, confidences) read from the heads at given 2D boxes (input px) of class indices ``cls``."""
        raise NotImplementedError

    # ---- shared ----
    def config(self) -> dict[str, Any]:
        return network_config(self.params, self.run_keys)

    def _device(self, ctx: RunContext) -> str:
        return claim_device(self.name, self.params["threads"], ctx)

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        cfg = resolve_input_size(self.config(), train.sequences)
        usable = labels[has_3d(labels) | (labels["cls"] == DONTCARE).to_numpy()]
        present = set(usable["cls"]) - {DONTCARE}
        classes = tuple(self.params["classes"] or [c for c in CLASSES if c in present] + sorted(present - set(CLASSES)))
        if not classes:
            raise ValueError(f"{self.name}: the labels hold no object with a 3D box to train on")
        self._device(ctx)
        self.model_, self.history_ = self.train(train, usable, classes, cfg, ctx)
        self.classes_, self.config_ = classes, cfg
        Path(ctx.work_dir).mkdir(parents=True, exist_ok=True)
        save_weights(self.model_, str(Path(ctx.work_dir) / f"{self.name}.pt"))
        ctx.logger.info("%s trained %d steps, final loss %.3f", self.name, len(self.history_),
                        self.history_[-1]["total"])

    def _progress(self, ctx: RunContext) -> Any:
        def report(done: int, total: int, log: dict) -> None:
            ctx.progress(done, total, f"{self.name} step {done}/{total} loss {log['total']:.3f}")
        return report

    def _forward(self, seq: Sequence, indices: list[int], ctx: RunContext
                 ) -> Iterator[tuple[Any, np.ndarray, float, float]]:
        """(raw outputs, input-size intrinsics, sx, sy) of each frame index, one frame at a time (a video's raw
        outputs together would cost memory in proportion to its length)."""
        if not hasattr(self, "model_"):
            raise RuntimeError(f"{self.name}: predict/lift called before fit() or load_state_dict()")
        model = self.model_.to(self._device(ctx)).eval()
        size = tuple(self.config_["input_size"])
        sx, sy = size[0] / seq.image_size[0], size[1] / seq.image_size[1]
        images = resize_images(seq, size)  # type: ignore[arg-type]
        for t in indices:
            with torch.no_grad():
                raw = model(normalise(images[t:t + 1]).to(ctx.device))
            yield raw, scale_intrinsics(seq.intrinsics[t], sx, sy), sx, sy

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        rows = []
        for name in sorted(split.sequences):
            seq = split.sequences[name]
            for t, (raw, kmat, _, _) in enumerate(self._forward(seq, list(range(seq.num_frames)), ctx)):
                boxes3d, scores, cls = self.detect(raw, kmat)
                boxes = project_boxes_2d(boxes3d, seq.intrinsics[t], seq.image_size)
                for j in np.flatnonzero(np.isfinite(boxes).all(axis=1)):
                    b = boxes3d[j]
                    rows.append({"seq": name, "frame": int(seq.frame_ids[t]), "track_id": int(j),
                                 "cls": self.classes_[int(cls[j])], "score": float(scores[j]),
                                 "x1": boxes[j, 0], "y1": boxes[j, 1], "x2": boxes[j, 2], "y2": boxes[j, 3],
                                 "x": b[0], "y": b[1], "z": b[2], "h": b[3], "w": b[4], "l": b[5], "yaw": b[6]})
        return make_tracks(rows, source=f"{self.name} detections") if rows else empty_tracks()

    def lift_frames(self, seq: Sequence, boxes: dict[int, tuple[np.ndarray, list[str]]], ctx: RunContext
                    ) -> dict[int, LiftedFrame]:
        indices = sorted(boxes)
        lifted = {}
        for t, (raw, kmat, sx, sy) in zip(indices, self._forward(seq, indices, ctx), strict=True):
            boxes2d, names = boxes[t]
            boxes3d, scores, cls = self.detect(raw, kmat)
            cls_idx = np.array([self.classes_.index(n) if n in self.classes_ else 0 for n in names], dtype=np.int64)
            fb, fb_conf = self.fallback(raw, kmat, np.asarray(boxes2d, np.float64) * np.array([sx, sy, sx, sy]),
                                        cls_idx)
            det_names = [self.classes_[int(c)] for c in cls]
            lifted[t] = match_detections(boxes2d, names, boxes3d, det_names, scores, seq.intrinsics[t], seq.image_size,
                                         fb, fb_conf, float(self.params["match_iou"]))
        return lifted

    def state_dict(self) -> dict[str, Any] | None:
        if not hasattr(self, "model_"):
            return None
        state = {f"model.{k}": v.detach().cpu() for k, v in self.model_.state_dict().items()}
        state["meta.classes"] = _encode_names(self.classes_)
        for key in self.arch_keys:
            state[f"meta.{key}"] = torch.tensor(self.config_[key]).reshape(-1)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.classes_ = _decode_names(state["meta.classes"])
        cfg = self.config()
        for key in self.arch_keys:
            value = tuple(int(v) for v in np.asarray(state[f"meta.{key}"]).reshape(-1))
            cfg[key] = value if key in ("input_size", "depth") else value[0]
        self.config_ = cfg
        self.model_ = self.build(cfg, len(self.classes_))
        self.model_.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
        self.model_.eval()
