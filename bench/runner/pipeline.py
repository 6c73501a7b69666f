"""One planned job through its stages, inside whichever process an executor chose.

labels -> pseudolabels -> training -> prediction -> metrics, one function per stage. Each stage is
skipped when its artifacts are complete (:mod:`bench.runner.stages`; the files themselves:
:mod:`bench.runner.artifacts`), so a killed run resumes at its first unfinished stage. Method code
only ever runs inside :func:`bench.firewall.guard` with views of the data; the ground truth the
runner needs for labels and scoring stays in this module's local variables and the loaded dataset
is released before any method code runs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import firewall
from bench.config import dump_config
from bench.data.masks import label_masks
from bench.data.sequence import PointTracks
from bench.interface import Labeler, Learner, RunContext, SplitView, TrainView, kind_of
from bench.labels.manifest import LabelManifest, label_cost
from bench.locks import LOCK_FILE, run_lock
from bench.ownership import claim_dir
from bench.runner.artifacts import (
    WEIGHT_MAPS,
    check_output,
    check_weight_maps,
    load_point_tracks,
    load_weight_maps,
    metric_rows,
    read_metrics,
    save_point_tracks,
    save_weight_maps,
    write_metrics,
)
from bench.runner.environment import peak_memory_mb, resolve_device, seed_everything
from bench.runner.jobs import PlannedJob, budget_labels, load_dataset_for
from bench.runner.keys import code_version, identity_overrides
from bench.runner.manifest import collect_manifest
from bench.runner.reuse import copy_stage, find_donor, pseudolabel_identity
from bench.runner.stages import (
    STAGES,
    StageDir,
    load_checkpoint,
    read_parquet,
    save_checkpoint,
    write_parquet,
    write_text,
)
from bench.store import MetricRow, RunRecord, Store

Progress = Callable[[int, int, str], None]
PSEUDOLABELS_FROM = "pseudolabels_from.txt"  # in a run folder: the run whose pseudolabels it copied


# ---- scoring ------------------------------------------------------------------------------------------
def score(planned: PlannedJob, gt: dict[str, Any], views: dict[str, SplitView],
          outputs: dict[str, Any]) -> list[MetricRow]:
    """Metric rows for the stored outputs: pseudolabels on train, predictions on val."""
    from bench.metrics import evaluate

    rows: list[MetricRow] = []
    if "pseudolabels" in outputs:
        for protocol in pseudolabel_protocols(planned):
            result = evaluate(protocol, gt["train"], outputs["pseudolabels"], sequences=views["train"].sequences)
            rows += metric_rows("train-pseudolabel", result)
    if "predictions" in outputs:
        learner = planned.base_cls or planned.method_cls
        truth = gt["val_points"] if learner.outputs == "point-tracks" else gt["val"]
        for protocol in protocols_for(planned.config, planned.job.dataset, learner.outputs):
            result = evaluate(protocol, truth, outputs["predictions"], sequences=views["val"].sequences)
            rows += metric_rows("val", result)
    return rows


def pseudolabel_protocols(planned: PlannedJob) -> list[str]:
    """The protocols that score a labeler's pseudolabels on the training videos.

    3D pseudolabels: ``eval.pseudolabel`` (3D tracking + box quality). A 2D tracker's pseudolabels (``spot``,
    ``sam2``: labels on the training videos before any lifter) have no 3D box to match, so they are scored as
    the dataset's 2D tracks are (kitti-2d on synth-kitti: recall DetRe, precision DetPr, IDF1, MOTA). A labeler
    declaring ``calibrated_conf`` is also scored with ``conf-calibration``."""
    if planned.method_cls.outputs == "2d-tracks":
        return protocols_for(planned.config, planned.job.dataset, "2d-tracks")
    protocols = list(planned.config.get("eval", {}).get("pseudolabel", ["pseudolabel"]))
    if getattr(planned.method_cls, "calibrated_conf", False) and "conf-calibration" not in protocols:
        protocols.append("conf-calibration")  # its confidences claim to be probabilities: check them
    return protocols


def protocols_for(config: dict[str, Any], dataset: str, output: str) -> list[str]:
    """The protocols that score ``output`` on ``dataset``: a dataset-specific entry, else the default."""
    cfg = config.get("eval", {})
    specific = (cfg.get("datasets") or {}).get(dataset) or {}
    if output in specific:
        return list(specific[output])
    return list((cfg.get("protocols") or {}).get(output, []))


# ---- the stages ---------------------------------------------------------------------------------------
@contextmanager
def _timed(planned: PlannedJob, what: str) -> Iterator[None]:
    """Add the block's wall time to ``planned.timings[what]`` (stored in the run's manifest)."""
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        timings = planned.timings
        timings[what] = timings.get(what, 0.0) + time.perf_counter() - start
        cpu_key = what.replace("_s", "_cpu_s")  # CPU time too: wall time on a shared machine is noisy
        timings[cpu_key] = timings.get(cpu_key, 0.0) + time.process_time() - cpu


def _announce(progress: Progress | None, what: str) -> None:
    """Name the stage on the progress display (a 0-of-1 bar until the method reports its own steps)."""
    if progress is not None:
        progress(0, 1, what)


def labels_stage(planned: PlannedJob) -> tuple[dict[str, Any], dict[str, SplitView]]:
    """Load the dataset, cut (or reload) the budget's labels, build the firewalled views; keep only the GT tables.

    The budget was decided at planning (``planned.job.budget``: None = every label, for a method that sees
    the ground truth); the label sample drawn there is reused when it is at hand."""
    with _timed(planned, "data_s"):
        dataset = load_dataset_for(planned.loader, planned.config["data"])
        for split in (dataset.train, dataset.val):
            for seq in split.sequences.values():
                seq.load_images()  # the views hand out pixels, never paths into the dataset folder
    if str(dataset.data_hash) != planned.data_hash:
        raise RuntimeError(f"dataset {planned.job.dataset} changed since planning "
                           f"({dataset.data_hash} != {planned.data_hash}); plan again")
    budget = planned.job.budget
    regime = getattr(planned.method_cls, "label_regime", "3d-budget")
    labels_dir = StageDir(planned.run_dir, "labels")
    seqs_3d: tuple[str, ...] | None = None
    if labels_dir.is_done():
        labels = read_parquet(labels_dir.file("labels.parquet"))
        if regime == "2d-all":
            seqs_3d = LabelManifest.read(labels_dir.file("manifest.json")).seqs_3d
    else:
        with _timed(planned, "labels_s"):
            manifest = planned.manifest if budget is not None else None
            if manifest is not None and manifest.sha256 == planned.manifest_hash:  # sampled while planning
                labels = manifest.labels(dataset.train.tracks)
            else:
                labels, manifest = budget_labels(dataset.train.tracks, budget, planned.job.seed, regime)
        if manifest is not None and regime == "2d-all":
            seqs_3d = manifest.seqs_3d
        labels_dir.start()
        write_parquet(labels_dir.file("labels.parquet"), labels)
        files = ["labels.parquet"]
        if manifest is not None:
            manifest.write(labels_dir.file("manifest.json"))
            files.append("manifest.json")
        labels_dir.mark_done(files)
    gt: dict[str, Any] = {"train": dataset.train.tracks.copy(), "val": dataset.val.tracks.copy(),
                          "val_points": dict(dataset.val.points)}
    masks, mask_source = label_masks(dataset.name, dataset.train.layers, labels, dataset.train.sequences)
    train = firewall.train_view(dataset.train, labels, dataset.frame_rate, budget,
                                identities=planned.method_cls.sees_identities,
                                boxes_2d=planned.method_cls.sees_2d_ground_truth,
                                points=planned.method_cls.sees_ground_truth, seqs_3d=seqs_3d,
                                masks=masks, mask_source=mask_source)
    del masks
    views: dict[str, SplitView] = {"train": train, "val": firewall.split_view(dataset.val, dataset.frame_rate)}
    planned.label_cost = label_cost(train.labels, train.tracks_2d)  # what the method was handed, 2D and 3D apart
    planned.data_root = str(dataset.root) if dataset.root else None
    # Drop the runner's reference: the Split objects (hidden tracks, points, layers) are freed by
    # reference counting here, before any method code runs (no gc.collect needed: no cycles).
    del dataset
    return gt, views


@dataclass
class MethodSandbox:
    """Where method code runs: its scratch folder, the paths the firewall forbids, and its RunContext."""

    planned: PlannedJob
    device: str
    work: Path
    forbidden: list[Path | str]
    progress: Progress | None = None
    contexts: dict[str, RunContext] = field(default_factory=dict)
    cache: Path | None = None

    @classmethod
    def for_run(cls, planned: PlannedJob, device: str, runs_root: Path, progress: Progress | None) -> MethodSandbox:
        work = planned.run_dir / "work"
        work.mkdir(parents=True, exist_ok=True)
        forbidden: list[Path | str] = [runs_root] + ([planned.data_root] if planned.data_root else [])
        forbidden += [p for p in os.environ.get("BENCH_DATA_DIR", "").split(os.pathsep) if p]
        # Shared by the runs of this store, for what methods build from no benchmark data (RunContext.cache_dir).
        cache = claim_dir(Path(runs_root) / ".cache" / "methods", "method cache", "--runs-dir")
        return cls(planned, device, work, forbidden, progress, cache=cache)

    def guard(self) -> AbstractContextManager[Any]:
        return firewall.guard(self.forbidden, allowed=[self.work] + ([self.cache] if self.cache else []))

    def context(self, section: str) -> RunContext:
        """A fresh RunContext for the ``method`` or ``base`` section of the config (its notes: the run's)."""
        context = RunContext(device=self.device, seed=self.planned.job.seed,
                             config=dict(self.planned.config.get(section) or {}), work_dir=self.work,
                             cache_dir=self.cache, notes=self.planned.method_notes)
        if self.progress is not None:
            context.progress = self.progress
        return context

    def build(self, cls: type[Any], section: str) -> Any:
        with self.guard():  # constructors are method code too
            return cls(**(self.planned.config.get(section) or {}))


def pseudolabels_stage(planned: PlannedJob, labeler: Labeler, train: TrainView, sandbox: MethodSandbox,
                       runs_root: Path, reuse: bool = True
                       ) -> tuple[pd.DataFrame, dict[tuple[str, int], np.ndarray] | None]:
    """The labeler's pseudolabels on the training videos (and its FNComp weight maps, if any): stored, copied
    from a finished run that made them identically (``reuse``, :mod:`bench.runner.reuse`: another base), or made."""
    stage = StageDir(planned.run_dir, "pseudolabels")
    maps_file = stage.file(f"{WEIGHT_MAPS}.npz")
    maps: dict[tuple[str, int], np.ndarray] | None = None
    if reuse and not stage.is_done():
        donor = find_donor(planned, runs_root, pseudolabel_identity(planned, sandbox.device))
        if donor is not None:
            stage.start()
            stage.mark_done(copy_stage(StageDir(donor[0], "pseudolabels"), stage))
            planned.method_notes.update(donor[1])
            write_text(planned.run_dir / PSEUDOLABELS_FROM, os.path.relpath(donor[0], runs_root))
    if stage.is_done():
        pseudo = read_parquet(stage.file("pseudolabels.parquet"))
        if maps_file.exists():  # listed in the stage marker, so a done stage has it complete
            maps = load_weight_maps(maps_file)
        return pseudo, maps
    stage.start()
    (planned.run_dir / PSEUDOLABELS_FROM).unlink(missing_ok=True)  # left by an earlier attempt (--force)
    _announce(sandbox.progress, f"pseudolabels ({planned.job.method})")
    with _timed(planned, "method_s"), sandbox.guard():
        labeler.fit(train, sandbox.context("method"))
        made = labeler.label(train, sandbox.context("method"))
    what = f"{planned.job.method}.label"
    made = check_output(made, what, stage.path)
    if made.attrs.get(WEIGHT_MAPS) is not None:
        maps = check_weight_maps(made.attrs[WEIGHT_MAPS], train.sequences, what)
    # attrs stay out of the parquet file (pandas would try to write them as JSON metadata).
    pseudo = made.copy()
    pseudo.attrs = {}
    write_parquet(stage.file("pseudolabels.parquet"), pseudo)
    files = ["pseudolabels.parquet"]
    if maps is not None:
        save_weight_maps(maps_file, maps)
        files.append(maps_file.name)
    stage.mark_done(files)
    return pseudo, maps


def training_stage(planned: PlannedJob, learner: Learner, train: TrainView, labels: pd.DataFrame, section: str,
                   sandbox: MethodSandbox) -> None:
    """Fit the learner on ``labels``, or restore it from the stored checkpoint."""
    training = StageDir(planned.run_dir, "training")
    if training.is_done():
        state = load_checkpoint(training.file("model.pt"))
        with sandbox.guard():
            learner.load_state_dict(state)
        return
    training.start()
    _announce(sandbox.progress, "training")
    with _timed(planned, "method_s"), sandbox.guard():
        learner.fit(train, firewall.copy_labels(labels), sandbox.context(section))
        new_state = learner.state_dict()
    if new_state is not None:
        save_checkpoint(training.file("model.pt"), new_state)
        training.mark_done(["model.pt"])


def _predictions_file(learner: type[Any] | Any) -> str:
    return "predictions.npz" if learner.outputs == "point-tracks" else "predictions.parquet"


def stored_predictions(planned: PlannedJob, learner: Any) -> tuple[Any, float | None] | None:
    """A finished prediction stage's predictions and frames per second, or None."""
    prediction = StageDir(planned.run_dir, "prediction")
    if not prediction.is_done():
        return None
    name = _predictions_file(learner)
    stored = (load_point_tracks(prediction.file(name)) if name.endswith(".npz")
              else read_parquet(prediction.file(name)))
    return stored, json.loads(prediction.file("timing.json").read_text()).get("fps")


def prediction_stage(planned: PlannedJob, learner: Learner, val: SplitView, section: str,
                     sandbox: MethodSandbox) -> tuple[Any, float | None]:
    """The learner's predictions on the val videos, timed; written with their frames per second."""
    prediction = StageDir(planned.run_dir, "prediction")
    name = _predictions_file(learner)
    prediction.start()
    _announce(sandbox.progress, "prediction")
    start = time.perf_counter()
    with _timed(planned, "method_s"), sandbox.guard():
        predictions = learner.predict(val, sandbox.context(section))
    elapsed = time.perf_counter() - start
    fps = val.num_frames / elapsed if elapsed > 0 else None
    if name.endswith(".npz"):
        if not (isinstance(predictions, dict) and all(isinstance(v, PointTracks) for v in predictions.values())):
            raise TypeError(f"{planned.job.method}.predict declares point-tracks: return {{seq: PointTracks}}, "
                            f"got {type(predictions).__name__}")
        save_point_tracks(prediction.file(name), predictions)
    else:
        predictions = check_output(predictions, f"{planned.job.method}.predict", prediction.path)
        write_parquet(prediction.file(name), predictions)
    write_text(prediction.file("timing.json"), json.dumps({"predict_s": elapsed, "fps": fps}))
    prediction.mark_done([name, "timing.json"])
    return predictions, fps


def run_stages(planned: PlannedJob, device: str, runs_root: Path, progress: Progress | None = None,
               reuse: bool = True) -> tuple[dict[str, Any], float | None, dict[str, Any], dict[str, SplitView]]:
    """Every stage before scoring: (outputs, frames per second, ground truth, views). ``reuse``: a labeler's
    pseudolabels may be copied from a finished run that made them identically (not under ``--force``)."""
    _announce(progress, "data and labels")
    gt, views = labels_stage(planned)
    train = views["train"]
    assert isinstance(train, TrainView)
    sandbox = MethodSandbox.for_run(planned, device, runs_root, progress)
    outputs: dict[str, Any] = {}
    method = sandbox.build(planned.method_cls, "method")
    if isinstance(method, Labeler):
        outputs["pseudolabels"], maps = pseudolabels_stage(planned, method, train, sandbox, runs_root, reuse)
        if planned.base_cls is None:
            return outputs, None, gt, views
        learner = sandbox.build(planned.base_cls, "base")
        labels = outputs["pseudolabels"].copy()
        labels.attrs = {} if maps is None else {WEIGHT_MAPS: maps}
        section = "base"
    else:
        learner, labels, section = method, train.labels, "method"
    stored = stored_predictions(planned, learner)
    if stored is not None:
        outputs["predictions"], fps = stored
        return outputs, fps, gt, views
    training_stage(planned, learner, train, labels, section, sandbox)
    outputs["predictions"], fps = prediction_stage(planned, learner, views["val"], section, sandbox)
    return outputs, fps, gt, views


# ---- one job, start to end ------------------------------------------------------------------------------
def record_for(planned: PlannedJob, status: str, device: str, started: float, **kw: Any) -> RunRecord:
    job = planned.job
    return RunRecord(key=planned.key, method=job.method, base=job.base, dataset=job.dataset, budget=job.budget,
                     seed=job.seed, profile=job.profile, protocol_version=planned.protocol_version, status=status,
                     started_at=started, device=device, config=planned.config, run_dir=str(planned.run_dir),
                     variant=job.variant, overrides=identity_overrides(job.overrides), **kw)


def execute(planned: PlannedJob, runs_root: Path, store_path: Path | None, device: str = "auto",
            force: bool = False, progress: Progress | None = None) -> RunRecord:
    """Run (or resume) one job; the outcome, failures included, is written to the store and returned.

    With ``store_path=None`` nothing is written to a store: the metric rows are left in ``planned.rows``
    for the caller (the Ray driver) to store.

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
                    progress: Progress | None) -> RunRecord:
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
        for stage in STAGES:
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
            rows = read_metrics(metrics_dir)
            timing = StageDir(planned.run_dir, "prediction").file("timing.json")
            fps = json.loads(timing.read_text()).get("fps") if timing.exists() else None
        else:
            outputs, fps, gt, views = run_stages(planned, device, runs_root, progress, reuse=not force)
            manifest["label_cost"] = planned.label_cost
            manifest["method_notes"] = _method_notes(planned)
            donor = planned.run_dir / PSEUDOLABELS_FROM
            if donor.exists():
                manifest["pseudolabels_from"] = donor.read_text()
            _announce(progress, "metrics")
            with _timed(planned, "score_s"):
                rows = score(planned, gt, views, outputs)
            write_metrics(metrics_dir, rows)
            if progress is not None:
                progress(1, 1, "metrics")  # the last stage is done: the stage bar closes
        planned.rows = rows
        if store is not None:
            store.add_metrics(planned.key, rows)
        status, error = "ok", None
    except Exception:
        status, error, fps = "failed", traceback.format_exc(), None
    wall = time.perf_counter() - t0
    manifest["timings"] = {**planned.timings, "wall_s": wall}
    record = record_for(planned, status, device, started, error=error, finished_at=time.time(), wall_s=wall,
                        peak_mem_mb=peak_memory_mb(), fps=fps, manifest=manifest)
    write_text(planned.run_dir / "run.json", json.dumps(record.__dict__, default=str, indent=1))
    if store is not None:
        store.upsert_run(record)
    return record


def _method_notes(planned: PlannedJob) -> dict[str, Any]:
    """The notes the method recorded (RunContext.notes), kept in the run folder so that a run resumed after its
    method's stage (which then does not run again) still reports them."""
    path = planned.run_dir / "method_notes.json"
    if planned.method_notes:
        write_text(path, json.dumps(planned.method_notes, indent=1, sort_keys=True, default=str))
        return dict(planned.method_notes)
    return json.loads(path.read_text()) if path.exists() else {}


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
    # A run stopped before its base tracker or method predicted (killed mid-training) has pseudolabels only: scoring
    # them must not make it a finished run (status ok) that a sweep would then skip and a table would show.
    if "predictions" not in outputs and (planned.base_cls is not None or kind_of(planned.method_cls) != "labeler"):
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
