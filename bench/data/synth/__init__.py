"""The synthetic driving world: seeded, deterministic monocular driving videos with complete ground truth.

>>> ds = generate("synth-kitti", "smoke", seed=0)

``ds.train`` / ``ds.val`` hold in-memory sequences; each Split carries the GT track table, the
rendered layers (``depth`` metres, inf for sky; ``instance`` track id or -1; ``surface`` the hit
point in the object's KITTI box frame: x forward, y down, z left, origin at the bottom centre, NaN
off objects) and, for synth-dense, dense 3D point tracks. ``ds.meta["box_extras"]`` adds per box
``num_lidar_pts``, world velocity ``vx, vy`` and the visible fraction; synth-mot adds noisy
``ds.meta["public_detections"]`` per split. See docs/benchmarks.md ("Synthetic world") for statistics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bench.data.sequence import Dataset, Sequence, Split
from bench.data.synth.labels import dense_point_tracks, frame_labels, point_tracks, public_detections, video_depth
from bench.data.synth.presets import PRESET_REVISIONS, PRESETS, SCALES, WorldConfig, config_for
from bench.data.synth.render import Renderer, intrinsics_for
from bench.data.synth.world import build_world
from bench.data.tracks import DONTCARE, empty_tracks, make_tracks, sort_tracks

__all__ = ["GENERATOR_VERSION", "PRESETS", "SCALES", "WorldConfig", "config_for", "data_hash", "generate", "stats"]

# Bump when the generated content changes, so cached datasets and run keys are invalidated.
GENERATOR_VERSION = "3"


def data_hash(preset: str, scale: str, seed: int) -> str:
    """Content hash of a generated dataset: generator version, preset (and its revision), scale and seed."""
    revision = PRESET_REVISIONS.get(preset)
    name = f"{preset}@r{revision}" if revision else preset  # unrevised presets keep their earlier hashes
    return hashlib.sha256(f"bench-synth/{GENERATOR_VERSION}/{name}/{scale}/{seed}".encode()).hexdigest()


def _sequence(cfg: WorldConfig, name: str, seed_key: list[int]) -> tuple[Sequence, dict, list, list, object, dict]:
    world = build_world(np.random.default_rng(seed_key), cfg, cfg.frames)
    K = intrinsics_for(cfg.width, cfg.height, cfg.focal_ratio)
    renderer = Renderer(world, K, cfg.width, cfg.height)
    noise_rng = np.random.default_rng(seed_key + [1])
    t = len(world.times)
    images = np.empty((t, cfg.height, cfg.width, 3), dtype=np.uint8)
    layers = {"depth": np.empty((t, cfg.height, cfg.width), dtype=np.float32),
              "instance": np.empty((t, cfg.height, cfg.width), dtype=np.int32),
              "surface": np.empty((t, cfg.height, cfg.width, 3), dtype=np.float32)}
    rows, extras = [], []
    for i in range(t):
        frame = renderer.render(i, noise_rng)
        images[i] = frame.rgb
        layers["depth"][i], layers["instance"][i], layers["surface"][i] = frame.depth, frame.instance, frame.surface
        r, e = frame_labels(world, frame, i, K, cfg, name, i)
        rows += r
        extras += e
    sequence = Sequence(name=name, images=images, intrinsics=K, cam_to_world=world.cam_to_world,
                        timestamps=world.times, image_size=(cfg.width, cfg.height),
                        meta={"block_size": world.block, "lanes": world.lanes})
    points = None
    if cfg.point_tracks:
        points = point_tracks(world, layers["depth"], layers["instance"], layers["surface"], K, cfg.point_tracks,
                              np.random.default_rng(seed_key + [2]))
    elif cfg.dense_tracks:
        points = dense_point_tracks(world, layers["depth"], layers["instance"], layers["surface"], K,
                                    cfg.dense_tracks)
    if cfg.video_depth:
        sequence.meta["video_depth"] = video_depth(layers["depth"], np.random.default_rng(seed_key + [3]))
    attrs = {ob.track_id: (ob.cls, ob.model if ob.cls in ("Car", "Van", "Truck") else -1 - ob.track_id, ob.motion)
             for ob in world.objects}
    return sequence, layers, rows, extras, points, attrs


def generate(preset: str, scale: str = "quick", seed: int = 0, progress: bool = False) -> Dataset:
    """Generate the synthetic dataset ``preset`` at ``scale`` from ``seed`` (same arguments, same arrays)."""
    cfg = config_for(preset, scale)
    preset_index = PRESETS.index(preset)
    plan = [("train", i) for i in range(cfg.train_seqs)] + [("val", i) for i in range(cfg.val_seqs)]
    splits: dict[str, dict] = {s: {"sequences": {}, "layers": {}, "points": {}, "depth": {}, "rows": [], "extras": []}
                               for s in ("train", "val")}
    attrs_rows = []

    def run(task: Any, advance: Callable[..., Any] | None) -> None:
        for n, (split, i) in enumerate(plan):
            name = f"{n:04d}"  # unique across splits, so both can live in one KITTI-style folder
            key = [int(seed), preset_index, 0 if split == "train" else 1, i]
            sequence, layers, rows, extras, points, attrs = _sequence(cfg, name, key)
            bucket = splits[split]
            bucket["sequences"][name] = sequence
            bucket["layers"][name] = layers
            bucket["rows"] += rows
            bucket["extras"] += [{"split": split, **e} for e in extras]
            if points is not None:
                bucket["points"][name] = points
            if "video_depth" in sequence.meta:  # an input of the task, kept apart from the hidden layers
                bucket["depth"][name] = sequence.meta.pop("video_depth")
            attrs_rows.extend([{"split": split, "seq": name, "track_id": tid, "cls": c, "appearance": m, "motion": mo}
                           for tid, (c, m, mo) in attrs.items()])
            if advance is not None:
                advance(task, advance=1)

    if progress:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"generating {preset} ({scale})", total=len(plan))
            run(task, bar.update)
    else:
        run(None, None)

    extras_cols = ["split", "seq", "frame", "track_id", "num_lidar_pts", "vx", "vy", "visible_fraction"]
    box_extras = pd.DataFrame([e for s in splits.values() for e in s["extras"]], columns=extras_cols)
    box_extras = box_extras.set_index(["split", "seq", "frame", "track_id"]).sort_index()
    out_splits = {}
    public = {}
    for split, bucket in splits.items():
        tracks = sort_tracks(make_tracks(bucket["rows"], f"synthetic {preset} {split}")) if bucket["rows"] \
            else empty_tracks()
        out_splits[split] = Split(name=split, sequences=bucket["sequences"], tracks=tracks,
                                  points=bucket["points"], layers=bucket["layers"], depth=bucket["depth"])
        if cfg.public_detections:
            real = tracks[tracks["cls"] != DONTCARE]
            keys = list(zip([split] * len(real), real["seq"], real["frame"], real["track_id"], strict=True))
            vis = (box_extras["visible_fraction"].reindex(pd.MultiIndex.from_tuples(keys)).to_numpy() if keys
                   else np.zeros(0))
            rng = np.random.default_rng([int(seed), preset_index, 0 if split == "train" else 1, 10_000])
            public[split] = public_detections(tracks, vis, cfg.width, cfg.height, rng)
    meta = {"preset": preset, "scale": scale, "seed": int(seed), "image_size": (cfg.width, cfg.height),
            "generator_version": GENERATOR_VERSION, "box_extras": box_extras,
            "track_attrs": pd.DataFrame(attrs_rows, columns=["split", "seq", "track_id", "cls", "appearance",
                                                             "motion"]),
            "sim_rate": cfg.sim_rate, "config": cfg}
    if cfg.public_detections:
        meta["public_detections"] = public
    return Dataset(name=preset, train=out_splits["train"], val=out_splits["val"], frame_rate=cfg.frame_rate,
                   data_hash=data_hash(preset, scale, seed), meta=meta)


def stats(ds: Dataset) -> dict:
    """Counts and difficulty statistics of a generated dataset (what ``bench data info`` prints)."""
    from bench.data.synth.summary import dataset_stats

    return dataset_stats(ds)
