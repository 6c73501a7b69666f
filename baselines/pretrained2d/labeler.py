"""``pretrained2d``: the SAM 2 role of Sparse3DTrack's Table 1, "a 2D video tracker trained on abundant 2D labels
from elsewhere", on synthetic data.

SAM 2's weights cannot be had here, and SAM 2 on synthetic images would not mean what it means on real ones, so
the role gets a method of its own. Tables label it "SAM2 role: 2D tracker pretrained on N synthetic sequences",
never SAM 2 (``--method sam2 --set method.checkpoint=PATH`` runs the real one where a user has its weights).

- **network**: SPOT's Siamese tracker (:mod:`baselines.spot.model`), the same kind of 2D propagator;
- **pretraining**: fully supervised on every box of a corpus of other worlds of the same generator
  (:mod:`baselines.pretrained2d.corpus`: world seeds >= 1000, never the benchmark's data seed 0 nor a development
  world), with absent pairs so that it can tell when its object is gone (:mod:`baselines.pretrained2d.train`);
  built once by bench and cached (:mod:`baselines.pretrained2d.checkpoint`), shared by every run and seed, as one
  set of SAM 2 weights is; the corpus's data hash goes into the checkpoint and the run's manifest
  (``method_notes``). The budget's labels are never trained on: they are prompts, as SAM 2's boxes are.
- **at run time**: each labelled track is propagated from its labels forwards and backwards (SPOT's chains,
  :func:`baselines.spot.track.run_chains`; between two labels each frame takes the nearer label's chain); a frame
  whose foreground score is under ``presence_threshold`` gets no box (SAM 2's empty mask: the object is not
  there), and the chain goes on from where it was.

Output ``2d-tracks`` on the training videos: the budget's labels (``conf`` 1, their 3D boxes kept), the
propagated boxes (3D NaN, ``conf`` = predicted IoU, ``score`` = foreground score) and the budget's DontCare rows.
A lifter composes it to 3D: ``pretrained2d+centernet``, ``pretrained2d+fcos3d``, ``pretrained2d+sparse3dtrack``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from baselines.pretrained2d.checkpoint import load_or_build
from baselines.pretrained2d.corpus import check_disjoint, corpus_size, parse_worlds
from baselines.pretrained2d.train import PretrainConfig
from baselines.spot.labeler import labelled_tracks, video_tensor
from baselines.spot.model import SiameseTracker
from baselines.spot.relay import TrackRelay
from baselines.spot.track import chains_for, run_chains
from bench.data.synth import SCALES
from bench.data.tracks import make_tracks, sort_tracks
from bench.interface import Labeler, RunContext, TrainView

# Two worlds of each Table 1 dataset's preset (the SAM 2 role is one tracker for both, as SAM 2 is): 48 + 32 = 80
# sequences at the quick scale. Seeds: the first free ones above MIN_CORPUS_SEED; never tuned.
DEFAULT_CORPUS = ("synth-kitti:1001", "synth-kitti:1002", "synth-nuscenes:1001", "synth-nuscenes:1002")


def role_label(corpus: list[str] | tuple[str, ...], scale: str) -> str:
    """How every table and report names this method's row."""
    return f"SAM2 role: 2D tracker pretrained on {corpus_size(parse_worlds(corpus), scale)} synthetic sequences"


class Pretrained2D(Labeler):
    """SAM2 role: SPOT's tracker pretrained on other synthetic worlds' 2D tracks, prompted by the budget's labels."""

    outputs = "2d-tracks"

    def __init__(self, corpus: list[str] | tuple[str, ...] = DEFAULT_CORPUS, corpus_scale: str = "quick",
                 steps: int = 1500, batch: int = 16, negatives: int = 4, lr: float = 2e-3, weight_decay: float = 1e-4,
                 max_gap: int = 15, min_height: float = 6.0, pretrain_seed: int = 0, width: int = 32,
                 template_size: int = 32, search_size: int = 80, window_influence: float = 0.4,
                 presence_threshold: float = 0.5, min_size: float = 2.0, threads: int | None = 1) -> None:
        """``corpus``: worlds as ``"<preset>:<seed>"`` at ``corpus_scale`` (the benchmark's scale: the same image
        sizes). ``pretrain_seed`` seeds the pretraining, not the run: every run seed shares one checkpoint.
        ``presence_threshold`` (foreground probability under which a propagated frame has no box): 0.5, the
        midpoint of a probability, not tuned. ``window_influence`` 0.4: SPOT's."""
        super().__init__(corpus=list(corpus), corpus_scale=corpus_scale, steps=steps, batch=batch,
                         negatives=negatives, lr=lr, weight_decay=weight_decay, max_gap=max_gap, min_height=min_height,
                         pretrain_seed=pretrain_seed, width=width, template_size=template_size,
                         search_size=search_size, window_influence=window_influence,
                         presence_threshold=presence_threshold, min_size=min_size, threads=threads)
        self.worlds = parse_worlds(list(corpus))
        if corpus_scale not in SCALES:
            raise ValueError(f"pretrained2d: corpus_scale must be one of {SCALES}, got {corpus_scale!r}")
        if steps < 0 or batch < 1 or not 0 <= negatives < batch or max_gap < 1:
            raise ValueError("pretrained2d: steps >= 0, batch >= 1, 0 <= negatives < batch and max_gap >= 1")
        if not (0 <= window_influence <= 1 and 0 <= presence_threshold <= 1):
            raise ValueError("pretrained2d: window_influence and presence_threshold must be in [0, 1]")
        SiameseTracker(width, template_size, search_size)  # checks the crop sizes now, at plan time
        self.config = PretrainConfig(steps=int(steps), batch=int(batch), negatives=int(negatives), lr=float(lr),
                                     weight_decay=float(weight_decay), max_gap=int(max_gap),
                                     min_height=float(min_height))
        self.network = {"width": int(width), "template_size": int(template_size), "search_size": int(search_size)}
        self.model_: SiameseTracker | None = None
        self.meta_: dict[str, Any] = {}

    def _threads(self) -> None:
        if self.params["threads"] is not None:
            torch.set_num_threads(int(self.params["threads"]))

    def fit(self, train: TrainView, ctx: RunContext) -> None:
        """Load (or build once) the pretrained checkpoint; nothing is learnt from the budget's labels."""
        self._threads()
        cache = ctx.cache_dir if ctx.cache_dir is not None else ctx.work_dir / "cache"
        self.model_, self.meta_ = load_or_build(cache, self.worlds, str(self.params["corpus_scale"]), self.network,
                                                self.config, int(self.params["pretrain_seed"]), ctx.progress)
        # The corpus must hold none of the videos this run is given (pixel fingerprints, whatever their names).
        check_disjoint(self.meta_["fingerprints"], {name: np.asarray([seq.image(i) for i in range(seq.num_frames)])
                                                     for name, seq in train.sequences.items()})
        ctx.notes["pretrained2d"] = {k: self.meta_[k] for k in ("corpus_hash", "worlds", "sequences", "frames",
                                                                 "boxes", "key", "build_cpu_s")}
        ctx.notes["pretrained2d"]["label"] = role_label(self.params["corpus"], str(self.params["corpus_scale"]))
        ctx.logger.info("pretrained2d: checkpoint %s (corpus %s, %d sequences)", self.meta_["path"],
                        self.meta_["corpus_hash"][:12], self.meta_["sequences"])

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        if self.model_ is None:
            raise RuntimeError("pretrained2d: call fit before label")
        self._threads()
        labels = train.labels.copy()
        labels["conf"] = 1.0
        present = float(self.params["presence_threshold"])
        rows: list[dict[str, Any]] = []
        by_seq: dict[str, list[TrackRelay]] = {}
        for track in labelled_tracks(train.labels, train):
            by_seq.setdefault(track.seq, []).append(track)
        for n, (name, seq_tracks) in enumerate(sorted(by_seq.items())):
            video = train.sequences[name]
            chains = [c for i, t in enumerate(seq_tracks) for c in chains_for(t.keys, video.num_frames, i)]
            propagated = run_chains(self.model_, video_tensor(train, name), chains,
                                    float(self.params["window_influence"]), float(self.params["min_size"]))
            for i, index, box, score, iou in propagated:
                if score < present:
                    continue  # the tracker says its object is not in this frame
                track = seq_tracks[i]
                rows.append({"seq": name, "frame": int(video.frame_ids[index]), "track_id": track.track_id,
                             "cls": track.cls, "score": score, "conf": float(np.clip(iou, 0.0, 1.0)),
                             "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3]})
            ctx.progress(n + 1, len(by_seq), "pretrained2d propagation")
        out = pd.concat([labels, make_tracks(rows, source="pretrained2d")], ignore_index=True) if rows else labels
        return sort_tracks(make_tracks(out, source="pretrained2d"))
