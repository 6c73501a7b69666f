"""Running one planned job through its stages, inside whichever process an executor chose.

labels -> pseudolabels -> training -> prediction -> metrics. Each stage is skipped when its
artifacts are complete (see :mod:`bench.runner.stages`), so a killed run resumes at its first
unfinished stage. Method code only ever runs inside :func:`bench.firewall.guard` with views of
the data; the ground truth the runner needs for labels and scoring stays in this module's
local variables and the loaded dataset is released before any method code runs.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import firewall
from bench.config import dump_config
from bench.data.sequence import PointTracks
from bench.data.tracks import validate_tracks
from bench.interface import Labeler, RunContext, SplitView, TrainView
from bench.locks import LOCK_FILE, run_lock
from bench.runner.jobs import PlannedJob, budget_labels, load_dataset_for
from bench.runner.keys import code_version, identity_overrides
from bench.runner.manifest import collect_manifest
from bench.runner.stages import (
    StageDir,
    atomic_write,
    load_checkpoint,
    read_parquet,
    save_checkpoint,
    write_parquet,
    write_text,
)
from bench.store import MetricRow, RunRecord, Store


def _nvidia_present() -> bool:
    # Checking the driver's device nodes first spares a CPU-only machine the seconds of importing torch.
    return any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl", "/proc/driver/nvidia"))


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; explicit choices are checked."""
    if device == "cpu" or (device == "auto" and not _nvidia_present()):
        return "cpu"
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if device.startswith("cuda") and not has_cuda:
        raise RuntimeError(f"--device {device}: torch sees no CUDA GPU (install the CUDA build of torch)")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise RuntimeError(f"--device {device}: expected auto, cpu or cuda[:N]")
    return device


def seed_everything(seed: int, deterministic: bool) -> dict[str, bool]:
    """Seed python, numpy and torch separately; optionally force deterministic torch kernels.

    torch is seeded only when it is already imported (method modules that use it import it at the
    top, and the registry imported them while planning): importing torch costs seconds, which a
    numpy-only method should not pay. The returned flags go into the run's manifest.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        # Setting the flag imports torch's compiler stack (seconds): only touch it when it changes.
        if torch.are_deterministic_algorithms_enabled() != bool(deterministic):
            torch.use_deterministic_algorithms(bool(deterministic), warn_only=True)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return {"python": True, "numpy": True, "torch": torch is not None, "deterministic": bool(deterministic)}


def peak_memory_mb() -> float:
    """Peak resident memory of this (worker) process: ru_maxrss is KiB on Linux."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _metric_rows(split: str, result: Any) -> list[MetricRow]:
    rows = [MetricRow(split, result.protocol, "", str(k), float(v)) for k, v in result.summary.items()]
    for r in result.per_sequence.itertuples(index=False):
        rows.append(MetricRow(split, result.protocol, str(r.seq), str(r.metric), float(r.value)))
    return rows


def score(planned: PlannedJob, gt: dict[str, Any], views: dict[str, SplitView],
          outputs: dict[str, Any]) -> list[MetricRow]:
    """Metric rows for the stored outputs: pseudolabels on train, predictions on val."""
    from bench.metrics import evaluate

    cfg = planned.config.get("eval", {})
    rows: list[MetricRow] = []
    if "pseudolabels" in outputs:
        for protocol in cfg.get("pseudolabel", ["pseudolabel"]):
            result = evaluate(protocol, gt["train"], outputs["pseudolabels"], sequences=views["train"].sequences)
            rows += _metric_rows("train-pseudolabel", result)
    if "predictions" in outputs:
        learner = planned.base_cls or planned.method_cls
        truth = gt["val_points"] if learner.outputs == "point-tracks" else gt["val"]
        for protocol in protocols_for(planned.config, planned.job.dataset, learner.outputs):
            result = evaluate(protocol, truth, outputs["predictions"], sequences=views["val"].sequences)
            rows += _metric_rows("val", result)
    return rows


def protocols_for(config: dict[str, Any], dataset: str, output: str) -> list[str]:
    """The protocols that score ``output`` on ``dataset``: a dataset-specific entry, else the default."""
    cfg = config.get("eval", {})
    specific = (cfg.get("datasets") or {}).get(dataset) or {}
    if output in specific:
        return list(specific[output])
    return list((cfg.get("protocols") or {}).get(output, []))


def save_point_tracks(path: Path, tracks: dict[str, PointTracks]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, t in tracks.items():
        arrays[f"xyz::{name}"] = np.asarray(t.xyz)
        arrays[f"visible::{name}"] = np.asarray(t.visible)
        arrays[f"queries::{name}"] = np.asarray(t.queries)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]

    atomic_write(path, write)


def load_point_tracks(path: Path) -> dict[str, PointTracks]:
    with np.load(path, allow_pickle=False) as z:
        names = sorted(k.split("::", 1)[1] for k in z.files if k.startswith("xyz::"))
        return {n: PointTracks(z[f"xyz::{n}"], z[f"visible::{n}"], z[f"queries::{n}"]) for n in names}


WEIGHT_MAPS = "neg_weight_maps"  # labels.attrs key and the pseudolabels stage's file stem


def check_weight_maps(maps: Any, sequences: dict[str, Any], what: str) -> dict[tuple[str, int], np.ndarray]:
    """A labeler's FNComp maps, validated: {(seq, frame id) of a training frame: finite 2D array in [0, 1]}.

    Returns float32 copies (the labeler keeps no handle on what the base tracker reads)."""
    if not isinstance(maps, dict):
        raise TypeError(f"{what}: attrs[{WEIGHT_MAPS!r}] must be a dict {{(seq, frame id): 2D array}}, "
                        f"got {type(maps).__name__}")
    frames = {name: {int(f) for f in seq.frame_ids} for name, seq in sequences.items()}
    out: dict[tuple[str, int], np.ndarray] = {}
    for key, value in maps.items():
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str)
                and isinstance(key[1], int | np.integer)):
            raise ValueError(f"{what}: attrs[{WEIGHT_MAPS!r}] key {key!r} is not a (seq name, frame id) pair")
        seq, frame = key[0], int(key[1])
        if seq not in frames or frame not in frames[seq]:
            raise ValueError(f"{what}: attrs[{WEIGHT_MAPS!r}] has a map for {key!r}, which is not a frame of "
                             f"the training videos")
        array = np.asarray(value)
        if array.ndim != 2 or array.size == 0 or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{what}: attrs[{WEIGHT_MAPS!r}][{key!r}] must be a non-empty 2D numeric array, "
                             f"got shape {array.shape} dtype {array.dtype}")
        array = array.astype(np.float32)
        finite = np.isfinite(array)
        if not finite.all():
            raise ValueError(f"{what}: attrs[{WEIGHT_MAPS!r}][{key!r}] must hold finite weights in [0, 1], "
                             f"got {int((~finite).sum())} NaN/inf values")
        if array.min() < 0.0 or array.max() > 1.0:
            raise ValueError(f"{what}: attrs[{WEIGHT_MAPS!r}][{key!r}] must hold finite weights in [0, 1], "
                             f"got range [{array.min():.3g}, {array.max():.3g}]")
        out[(seq, frame)] = array
    return out


def save_weight_maps(path: Path, maps: dict[tuple[str, int], np.ndarray]) -> None:
    """Compressed ``.npz``: the (seq, frame) keys as two arrays beside one array per map (no pickles)."""
    keys = sorted(maps)
    arrays: dict[str, np.ndarray] = {"seqs": np.array([k[0] for k in keys], dtype=str),
                                     "frames": np.array([k[1] for k in keys], dtype=np.int64)}
    arrays.update({f"map{i}": maps[k] for i, k in enumerate(keys)})

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]

    atomic_write(path, write)


def load_weight_maps(path: Path) -> dict[tuple[str, int], np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        seqs, frames = z["seqs"], z["frames"]
        return {(str(seq), int(frame)): z[f"map{i}"] for i, (seq, frame) in enumerate(zip(seqs, frames, strict=True))}


def write_metrics(stage: StageDir, rows: list[MetricRow]) -> None:
    frame = pd.DataFrame([r.__dict__ for r in rows], columns=["split", "protocol", "seq", "metric", "value"])
    stage.start()
    write_parquet(stage.file("metrics.parquet"), frame)
    stage.mark_done(["metrics.parquet"])


def _check_output(frame: Any, what: str, path: Path) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must return a track table (pandas DataFrame), got {type(frame).__name__}")
    validate_tracks(frame, f"{what} output for {path}")
    return frame


@contextmanager
def _timed(planned: PlannedJob, what: str) -> Iterator[None]:
    """Add the block's wall time to ``planned.info["timings"][what]`` (stored in the run's manifest)."""
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        timings = planned.info.setdefault("timings", {})
        timings[what] = timings.get(what, 0.0) + time.perf_counter() - start
        cpu_key = what.replace("_s", "_cpu_s")  # CPU time too: wall time on a shared machine is noisy
        timings[cpu_key] = timings.get(cpu_key, 0.0) + time.process_time() - cpu


def _load_views(planned: PlannedJob) -> tuple[dict[str, Any], dict[str, SplitView], pd.DataFrame]:
    """Load the dataset, cut the labels, build the firewalled views, and keep only the GT tables."""
    with _timed(planned, "data_s"):
        dataset = load_dataset_for(planned.loader, planned.config["data"])
        for split in (dataset.train, dataset.val):
            for seq in split.sequences.values():
                seq.load_images()  # the views hand out pixels, never paths into the dataset folder
    if str(dataset.data_hash) != planned.data_hash:
        raise RuntimeError(f"dataset {planned.job.dataset} changed since planning "
                           f"({dataset.data_hash} != {planned.data_hash}); plan again")
    labels_dir = StageDir(planned.run_dir, "labels")
    if labels_dir.is_done():
        labels = read_parquet(labels_dir.file("labels.parquet"))
    else:
        budget = None if planned.method_cls.sees_ground_truth else planned.job.budget
        with _timed(planned, "labels_s"):
            manifest = planned.info.get("manifest") if budget is not None else None
            if manifest is not None and manifest.sha256 == planned.manifest_hash:  # sampled while planning
                labels = manifest.labels(dataset.train.tracks)
            else:
                labels, manifest = budget_labels(dataset.train.tracks, budget, planned.job.seed)
        labels_dir.start()
        write_parquet(labels_dir.file("labels.parquet"), labels)
        files = ["labels.parquet"]
        if manifest is not None:
            manifest.write(labels_dir.file("manifest.json"))
            files.append("manifest.json")
        labels_dir.mark_done(files)
    gt: dict[str, Any] = {"train": dataset.train.tracks.copy(), "val": dataset.val.tracks.copy(),
                          "val_points": dict(dataset.val.points)}
    views: dict[str, SplitView] = {
        "train": firewall.train_view(dataset.train, labels, dataset.frame_rate, planned.job.budget,
                                     identities=planned.method_cls.sees_identities),
        "val": firewall.split_view(dataset.val, dataset.frame_rate),
    }
    planned.info["data_root"] = str(dataset.root) if dataset.root else None
    # Drop the runner's reference: the Split objects (hidden tracks, points, layers) are freed by
    # reference counting here, before any method code runs (no gc.collect needed: no cycles).
    del dataset
    return gt, views, labels


def _stage(progress: Callable[[int, int, str], None] | None, what: str) -> None:
    """Name the stage on the progress display (a 0-of-1 bar until the method reports its own steps)."""
    if progress is not None:
        progress(0, 1, what)


def _run_stages(planned: PlannedJob, device: str, runs_root: Path,
                progress: Callable[[int, int, str], None] | None = None
                ) -> tuple[dict[str, Any], float | None, dict[str, Any], dict[str, SplitView]]:
    _stage(progress, "data and labels")
    gt, views, _labels = _load_views(planned)
    train = views["train"]
    assert isinstance(train, TrainView)
    work = planned.run_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    forbidden = [runs_root] + ([planned.info["data_root"]] if planned.info.get("data_root") else [])
    forbidden += [p for p in os.environ.get("BENCH_DATA_DIR", "").split(os.pathsep) if p]

    def ctx(section: str) -> RunContext:
        context = RunContext(device=device, seed=planned.job.seed,
                             config=dict(planned.config.get(section) or {}), work_dir=work)
        if progress is not None:
            context.progress = progress
        return context

    outputs: dict[str, Any] = {}
    fps: float | None = None
    with firewall.guard(forbidden, allowed=[work]):  # constructors are method code too
        method = planned.method_cls(**(planned.config.get("method") or {}))
    learner_labels = train.labels
    if isinstance(method, Labeler):
        stage = StageDir(planned.run_dir, "pseudolabels")
        maps_file = stage.file(f"{WEIGHT_MAPS}.npz")
        maps: dict[tuple[str, int], np.ndarray] | None = None
        if stage.is_done():
            outputs["pseudolabels"] = read_parquet(stage.file("pseudolabels.parquet"))
            if maps_file.exists():  # listed in the stage marker, so a done stage has it complete
                maps = load_weight_maps(maps_file)
        else:
            stage.start()
            _stage(progress, f"pseudolabels ({planned.job.method})")
            with _timed(planned, "method_s"), firewall.guard(forbidden, allowed=[work]):
                method.fit(train, ctx("method"))
                pseudo = method.label(train, ctx("method"))
            what = f"{planned.job.method}.label"
            pseudo = _check_output(pseudo, what, stage.path)
            if pseudo.attrs.get(WEIGHT_MAPS) is not None:
                maps = check_weight_maps(pseudo.attrs[WEIGHT_MAPS], train.sequences, what)
            # attrs stay out of the parquet file (pandas would try to write them as JSON metadata).
            outputs["pseudolabels"] = pseudo.copy()
            outputs["pseudolabels"].attrs = {}
            write_parquet(stage.file("pseudolabels.parquet"), outputs["pseudolabels"])
            files = ["pseudolabels.parquet"]
            if maps is not None:
                save_weight_maps(maps_file, maps)
                files.append(maps_file.name)
            stage.mark_done(files)
        if planned.base_cls is None:
            return outputs, fps, gt, views
        with firewall.guard(forbidden, allowed=[work]):
            learner = planned.base_cls(**(planned.config.get("base") or {}))
        learner_labels = outputs["pseudolabels"].copy()
        learner_labels.attrs = {} if maps is None else {WEIGHT_MAPS: maps}
        section = "base"
    else:
        learner, section = method, "method"

    prediction = StageDir(planned.run_dir, "prediction")
    points = learner.outputs == "point-tracks"
    predictions_file = "predictions.npz" if points else "predictions.parquet"
    if prediction.is_done():
        outputs["predictions"] = (load_point_tracks(prediction.file(predictions_file)) if points
                                  else read_parquet(prediction.file(predictions_file)))
        info = json.loads(prediction.file("timing.json").read_text())
        return outputs, info.get("fps"), gt, views
    training = StageDir(planned.run_dir, "training")
    if training.is_done():
        state = load_checkpoint(training.file("model.pt"))
        with firewall.guard(forbidden, allowed=[work]):
            learner.load_state_dict(state)
    else:
        training.start()
        _stage(progress, "training")
        with _timed(planned, "method_s"), firewall.guard(forbidden, allowed=[work]):
            learner.fit(train, firewall.copy_labels(learner_labels), ctx(section))
            state = learner.state_dict()
        if state is not None:
            save_checkpoint(training.file("model.pt"), state)
            training.mark_done(["model.pt"])
    prediction.start()
    _stage(progress, "prediction")
    start = time.perf_counter()
    with _timed(planned, "method_s"), firewall.guard(forbidden, allowed=[work]):
        predictions = learner.predict(views["val"], ctx(section))
    elapsed = time.perf_counter() - start
    fps = views["val"].num_frames / elapsed if elapsed > 0 else None
    if points:
        if not (isinstance(predictions, dict) and all(isinstance(v, PointTracks) for v in predictions.values())):
            raise TypeError(f"{planned.job.method}.predict declares point-tracks: return {{seq: PointTracks}}, "
                            f"got {type(predictions).__name__}")
        outputs["predictions"] = predictions
        save_point_tracks(prediction.file(predictions_file), predictions)
    else:
        outputs["predictions"] = _check_output(predictions, f"{planned.job.method}.predict", prediction.path)
        write_parquet(prediction.file(predictions_file), outputs["predictions"])
    write_text(prediction.file("timing.json"), json.dumps({"predict_s": elapsed, "fps": fps}))
    prediction.mark_done([predictions_file, "timing.json"])
    return outputs, fps, gt, views


def record_for(planned: PlannedJob, status: str, device: str, started: float, **kw: Any) -> RunRecord:
    job = planned.job
    return RunRecord(key=planned.key, method=job.method, base=job.base, dataset=job.dataset, budget=job.budget,
                     seed=job.seed, profile=job.profile, protocol_version=planned.protocol_version, status=status,
                     started_at=started, device=device, config=planned.config, run_dir=str(planned.run_dir),
                     variant=job.variant, overrides=identity_overrides(job.overrides), **kw)


def execute(planned: PlannedJob, runs_root: Path, store_path: Path | None, device: str = "auto",
            force: bool = False, progress: Callable[[int, int, str], None] | None = None) -> RunRecord:
    """Run (or resume) one job; the outcome, failures included, is written to the store and returned.

    With ``store_path=None`` nothing is written to a store: the metric rows are left in
    ``planned.info["rows"]`` for the caller (the Ray driver) to store.

    ``progress(done, total, what)`` receives the method's own progress reports (training steps...).

    The run's lock (:mod:`bench.locks`) is held throughout: a second process on the same cell waits,
    then reuses the finished run instead of computing it again (unless ``force``).
    """
    def waiting() -> None:
        print(f"{planned.job.describe()}: another process is running this cell; waiting for it "
              f"(lock {planned.run_dir / LOCK_FILE})", file=sys.stderr, flush=True)

    with run_lock(planned.run_dir, on_wait=waiting):
        if not force and store_path is not None:
            done = Store(store_path, readonly=True).run(planned.key) if Path(store_path).exists() else None
            if done is not None and done.status == "ok" and StageDir(planned.run_dir, "metrics").is_done():
                planned.action, planned.reason = "skip", "finished by another process"
                return done
        return _execute_locked(planned, runs_root, store_path, device, force, progress)


def _execute_locked(planned: PlannedJob, runs_root: Path, store_path: Path | None, device: str, force: bool,
                    progress: Callable[[int, int, str], None] | None) -> RunRecord:
    store = Store(store_path) if store_path is not None else None
    started = time.time()
    t0 = time.perf_counter()
    deterministic = bool(planned.config.get("runner", {}).get("deterministic", False))
    try:
        device = resolve_device(device)
    except RuntimeError as err:
        record = record_for(planned, "failed", device, started, error=str(err), finished_at=time.time())
        if store is not None:
            store.upsert_run(record)
        return record
    manifest = collect_manifest(device, deterministic)
    manifest.update(data_hash=planned.data_hash, labels_manifest=planned.manifest_hash,
                    method_code=code_version(planned.method_cls),
                    base_code=code_version(planned.base_cls) if planned.base_cls else None)
    if force:
        for stage in ("labels", "pseudolabels", "training", "prediction", "metrics"):
            StageDir(planned.run_dir, stage).clear()
        shutil.rmtree(planned.run_dir / "work", ignore_errors=True)  # the method's scratch from the last attempt
    planned.run_dir.mkdir(parents=True, exist_ok=True)
    write_text(planned.run_dir / "config.yaml", dump_config(planned.config))
    if store is not None:
        store.upsert_run(record_for(planned, "running", device, started, manifest=manifest))
    try:
        manifest["seeded"] = seed_everything(planned.job.seed, deterministic)
        metrics_dir = StageDir(planned.run_dir, "metrics")
        fps = None
        if metrics_dir.is_done():  # killed after scoring but before the store said "ok"
            stored = read_parquet(metrics_dir.file("metrics.parquet"))
            rows = [MetricRow(str(r.split), str(r.protocol), str(r.seq), str(r.metric), float(r.value))  # type: ignore[arg-type]
                    for r in stored.itertuples(index=False)]
            timing = StageDir(planned.run_dir, "prediction").file("timing.json")
            fps = json.loads(timing.read_text()).get("fps") if timing.exists() else None
        else:
            outputs, fps, gt, views = _run_stages(planned, device, runs_root, progress)
            _stage(progress, "metrics")
            with _timed(planned, "score_s"):
                rows = score(planned, gt, views, outputs)
            write_metrics(metrics_dir, rows)
            if progress is not None:
                progress(1, 1, "metrics")  # the last stage is done: the stage bar closes
        planned.info["rows"] = rows
        if store is not None:
            store.add_metrics(planned.key, rows)
        status, error = "ok", None
    except Exception:
        status, error, fps = "failed", traceback.format_exc(), None
    wall = time.perf_counter() - t0
    manifest["timings"] = {**planned.info.get("timings", {}), "wall_s": wall}
    record = record_for(planned, status, device, started, error=error, finished_at=time.time(), wall_s=wall,
                        peak_mem_mb=peak_memory_mb(), fps=fps, manifest=manifest)
    write_text(planned.run_dir / "run.json", json.dumps(record.__dict__, default=str, indent=1))
    if store is not None:
        store.upsert_run(record)
    return record


def rescore(planned: PlannedJob, store_path: Path) -> RunRecord | None:
    """Recompute a finished run's metrics from its stored pseudolabels/predictions (no method code runs)."""
    store = Store(store_path)
    record = store.run(planned.key)
    if record is None:
        return None
    outputs: dict[str, Any] = {}
    for stage, name in (("pseudolabels", "pseudolabels"), ("prediction", "predictions")):
        stage_dir = StageDir(planned.run_dir, stage)
        if stage_dir.is_done():
            npz = stage_dir.file(f"{name}.npz")
            outputs[name] = load_point_tracks(npz) if npz.exists() else read_parquet(stage_dir.file(f"{name}.parquet"))
    if not outputs:
        return None
    dataset = load_dataset_for(planned.loader, planned.config["data"])
    gt = {"train": dataset.train.tracks, "val": dataset.val.tracks, "val_points": dict(dataset.val.points)}
    views = {"train": firewall.split_view(dataset.train, dataset.frame_rate),
             "val": firewall.split_view(dataset.val, dataset.frame_rate)}
    rows = score(planned, gt, views, outputs)
    write_metrics(StageDir(planned.run_dir, "metrics"), rows)
    store.add_metrics(planned.key, rows)
    if record.status != "ok":
        record.status, record.error = "ok", None
        store.upsert_run(record)
    return record
