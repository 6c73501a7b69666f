"""``sam2``: SAM 2's video predictor as a 2D tracker of the training videos, prompted by the budget's boxes.

An adapter on the real ``sam2`` package (the optional extra ``pip install -e ".[sam2]"``; see
``docs/methods/sam2.md`` for what installs where). For every training video:

1. its frames are written as JPEG files into the run's scratch folder (SAM 2's ``init_state`` reads a folder
   of ``<index>.jpg``);
2. every budget label becomes a box prompt (``add_new_points_or_box``) of its track on its frame, the track
   id as SAM 2's object id: several labels of one track are several conditioning frames of one object;
3. ``propagate_in_video`` runs forwards from the earliest prompt and in reverse from the latest one;
4. each mask (logits > 0) becomes its bounding box; an empty mask is no box (SAM 2 says the object is not
   there). Between two labels a frame keeps the pass from the nearer label of its track (forwards on a tie),
   before a track's first label the reverse pass, after its last the forward pass; labelled frames keep the
   label itself (``conf`` 1). ``conf`` elsewhere is the mean mask probability inside the mask.

The weights come only from ``--set method.checkpoint=PATH`` (a SAM 2 ``.pt`` holding ``{"model": state}``,
read with ``torch.load(weights_only=True)``, or a ``.safetensors`` file): nothing is downloaded, and a run
without it stops at plan time with an error naming that flag.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.data.tracks import BOX2D_COLUMNS, DONTCARE, make_tracks, sort_tracks
from bench.interface import Labeler, RunContext, TrainView

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
MISSING_CHECKPOINT = ("sam2 needs SAM 2 weights on disk: pass --set method.checkpoint=PATH (e.g. sam2.1_hiera_tiny.pt "
                      "with --set method.config={config}); bench never downloads them")
MISSING_PACKAGE = ("sam2: the 'sam2' package is not installed; pip install -e \".[sam2]\" "
                   "(see docs/methods/sam2.md for the CPU torch caveat): {err}")


def mask_to_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """The pixel-edge bounding box ``(x1, y1, x2, y2)`` of a boolean ``(H, W)`` mask, None when it is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def nearer_pass(frame: int, label_frames: Iterable[int]) -> str | None:
    """Which pass a track's box on ``frame`` comes from: "label" on a labelled frame, "forward" when the nearest
    label before it is at least as near as the one after it (or there is none after), else "reverse"."""
    frames = sorted(label_frames)
    if frame in frames:
        return "label"
    before = [f for f in frames if f < frame]
    after = [f for f in frames if f > frame]
    if not before and not after:
        return None
    if before and (not after or frame - before[-1] <= after[0] - frame):
        return "forward"
    return "reverse"


def write_jpeg_folder(images: Iterable[np.ndarray], folder: Path, quality: int = 95) -> Path:
    """Frames as ``00000.jpg``, ``00001.jpg``, ... (SAM 2's video folder layout)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"{i:05d}.jpg", quality=quality)
    return folder


def track_video(predictor: Any, video_dir: Path, prompts: dict[int, dict[int, tuple[float, float, float, float]]],
                autocast: bool = True) -> dict[int, dict[int, tuple[tuple[float, float, float, float], float, str]]]:
    """Run SAM 2 on one video folder: ``prompts`` {object id: {frame index: box}} -> {object id: {frame index:
    (box, conf, pass)}} for every frame where the chosen pass has a non-empty mask (prompted frames included,
    their box as SAM 2 segmented it)."""
    import torch

    if not prompts:
        return {}
    first = min(f for boxes in prompts.values() for f in boxes)
    last = max(f for boxes in prompts.values() for f in boxes)
    # SAM 2 stores its memory in bfloat16 and expects autocast around inference (its README: CUDA autocast);
    # on a CPU the same holds with CPU autocast.
    device_type = "cuda" if str(getattr(predictor, "device", "cpu")).startswith("cuda") else "cpu"
    context = torch.autocast(device_type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    results: dict[str, dict[int, dict[int, tuple[tuple[float, float, float, float], float]]]] = {
        "forward": {}, "reverse": {}}
    with torch.inference_mode(), context:
        state = predictor.init_state(str(video_dir), offload_video_to_cpu=True, offload_state_to_cpu=True)
        for obj_id in sorted(prompts):
            for frame, box in sorted(prompts[obj_id].items()):
                predictor.add_new_points_or_box(state, frame_idx=int(frame), obj_id=int(obj_id),
                                                box=np.asarray(box, dtype=np.float32))
        for name, start, reverse in (("forward", first, False), ("reverse", last, True)):
            for frame, obj_ids, logits in predictor.propagate_in_video(state, start_frame_idx=start, reverse=reverse):
                probs = torch.sigmoid(logits.float()).cpu().numpy()[:, 0]
                for obj_id, prob in zip(obj_ids, probs, strict=True):
                    mask = prob > 0.5  # logits > 0
                    found = mask_to_box(mask)
                    if found is not None:
                        results[name].setdefault(int(obj_id), {})[int(frame)] = (found, float(prob[mask].mean()))
        predictor.reset_state(state)
    out: dict[int, dict[int, tuple[tuple[float, float, float, float], float, str]]] = {}
    for obj_id, labelled in prompts.items():
        frames = set(results["forward"].get(obj_id, {})) | set(results["reverse"].get(obj_id, {}))
        for frame in sorted(frames):
            which = nearer_pass(frame, labelled)
            if which is None:
                continue
            # A labelled frame is a conditioning frame: both passes return SAM 2's own mask of the prompt.
            got = results["forward" if which == "label" else which].get(obj_id, {}).get(frame)
            if got is None and which == "label":
                got = results["reverse"].get(obj_id, {}).get(frame)
            if got is not None:
                out.setdefault(obj_id, {})[frame] = (got[0], got[1], str(which))
    return out


def build_predictor(config: str, checkpoint: str | None, device: str = "cpu", image_size: int | None = None) -> Any:
    """SAM 2's video predictor from its package config; weights from ``checkpoint`` (None: random, tests only)."""
    try:
        from sam2.build_sam import build_sam2_video_predictor
    except ImportError as err:
        raise RuntimeError(MISSING_PACKAGE.format(err=err)) from None
    overrides = [f"++model.image_size={int(image_size)}"] if image_size else []
    predictor = build_sam2_video_predictor(config, None, device=device, hydra_overrides_extra=overrides)
    if checkpoint is not None:
        predictor.load_state_dict(load_weights(checkpoint), strict=True)
    return predictor.eval()


def load_weights(path: str) -> dict[str, Any]:
    """A SAM 2 state dict: ``.safetensors``, or a torch file holding ``{"model": state}`` / the state itself,
    read with ``weights_only=True`` (no pickle runs)."""
    import torch

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"sam2: checkpoint {path} does not exist (given by --set method.checkpoint)")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(file)))
    state = torch.load(file, map_location="cpu", weights_only=True)
    return dict(state["model"] if isinstance(state, dict) and "model" in state else state)


class Sam2(Labeler):
    """SAM 2 prompted with the budget's boxes, propagated both ways, masks to boxes, tracks by label."""

    outputs = "2d-tracks"

    def __init__(self, checkpoint: str | None = None, config: str = DEFAULT_CONFIG, image_size: int | None = None,
                 threads: int | None = 1) -> None:
        """``image_size``: SAM 2's input resolution (None: the config's, 1024); smaller only for CPU tests with
        random weights, never with real weights, which were trained at 1024."""
        super().__init__(checkpoint=checkpoint, config=config, image_size=image_size, threads=threads)
        if not checkpoint:
            raise ValueError(MISSING_CHECKPOINT.format(config=DEFAULT_CONFIG))
        if image_size is not None and (int(image_size) < 64 or int(image_size) % 16):
            raise ValueError(f"sam2: image_size must be a multiple of 16 and >= 64, got {image_size}")

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        import torch

        if self.params["threads"] is not None:
            torch.set_num_threads(int(self.params["threads"]))
        predictor = build_predictor(self.params["config"], self.params["checkpoint"], ctx.device,
                                    self.params["image_size"])
        labels = train.labels.copy()
        labels["conf"] = 1.0
        real = labels[(labels["cls"] != DONTCARE).to_numpy() & (labels["track_id"].to_numpy() >= 0)]
        rows: list[dict[str, Any]] = []
        names = sorted(set(real["seq"]))
        for n, name in enumerate(names):
            seq = train.sequences[name]
            index = {int(f): i for i, f in enumerate(seq.frame_ids)}
            mine = real[real["seq"] == name]
            prompts: dict[int, dict[int, tuple[float, float, float, float]]] = {}
            classes = {}
            for row in mine.itertuples(index=False):
                prompts.setdefault(int(row.track_id), {})[index[int(row.frame)]] = tuple(
                    float(getattr(row, c)) for c in BOX2D_COLUMNS)  # type: ignore[assignment]
                classes[int(row.track_id)] = str(row.cls)
            folder = write_jpeg_folder((seq.image(i) for i in range(seq.num_frames)), ctx.work_dir / "sam2" / name)
            tracked = track_video(predictor, folder, prompts, autocast=True)
            for obj_id, frames in tracked.items():
                for frame, (box, conf, which) in frames.items():
                    if which == "label":
                        continue  # the human label itself is kept
                    rows.append({"seq": name, "frame": int(seq.frame_ids[frame]), "track_id": obj_id,
                                 "cls": classes[obj_id], "score": conf, "conf": conf,
                                 "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3]})
            ctx.progress(n + 1, len(names), "sam2 propagation")
        out = pd.concat([labels, make_tracks(rows, source="sam2")], ignore_index=True) if rows else labels
        return sort_tracks(make_tracks(out, source="sam2"))
