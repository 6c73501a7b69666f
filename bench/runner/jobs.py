"""Jobs, sweep grids and planning (keys, folders, what to skip).

A :class:`Job` is what a user asks for: (method, base, dataset, budget, seed, profile,
overrides, variant). Planning resolves it into a :class:`PlannedJob`: the resolved config, the method
classes, the content hashes that make up its key, its run folder, and whether it must run.

Base tracker: ``base=None`` means "not given": a labeler with a ``default_base`` gets that base
tracker (its paper's evaluation), any other method none; ``base="none"`` means no base at all.
A ``variant`` is a named set of overrides from a sweep preset (an ablation row such as ``"A1"``);
it is kept with the run and, when set, is part of its key.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bench import firewall, registry
from bench.config import CONFIG_SECTIONS, RUNNER_KEYS, ConfigError, load_profile, load_yaml, resolve_config
from bench.data.sequence import DataError
from bench.interface import Labeler, kind_of
from bench.locks import is_running
from bench.metrics.protocols import PROTOCOLS
from bench.runner.keys import code_version, run_key, run_path
from bench.runner.stages import StageDir
from bench.store import MetricRow

if TYPE_CHECKING:
    from bench.labels import LabelManifest

SWEEPS_DIR = Path(__file__).resolve().parents[1] / "sweeps"
FULL_LABELS = "full"  # manifest hash of the complete training labels (methods that see ground truth)
NO_BASE = "none"  # --base none: do not train a base tracker, even for a labeler with a default one


@dataclass(frozen=True)
class Job:
    method: str
    dataset: str = "synth-kitti"
    budget: int | None = 4
    seed: int = 0
    profile: str = "quick"
    base: str | None = None  # None: the labeler's default_base, if any; NO_BASE ("none"): no base
    overrides: tuple[str, ...] = ()
    variant: str = ""  # a sweep preset's variant name ("" = none)
    # The variant's own overrides, applied after ``overrides``; kept apart so a run records which
    # overrides its user (or sweep preset) set, and `bench check` can match cells by them.
    variant_overrides: tuple[str, ...] = ()

    def all_overrides(self) -> tuple[str, ...]:
        return tuple(self.overrides) + tuple(self.variant_overrides)

    def describe(self) -> str:
        name = self.method if self.base in (None, NO_BASE) else f"{self.method}+{self.base}"
        extra = f" {' '.join(self.overrides)}" if self.overrides else ""
        variant = f" <{self.variant}>" if self.variant else ""
        return f"{self.dataset} {name}{variant} b{self.budget} s{self.seed} [{self.profile}]{extra}"


@dataclass
class PlannedJob:
    """A job resolved for running: its config, classes, key and folder, and what running it adds.

    Every field is typed: planning sets the first group and ``manifest`` (the budget's label sample, when
    planning drew it, so the labels stage does not draw it again) and ``base_note``; running sets
    ``data_root``, ``timings`` (seconds per part, stored in the run's manifest) and ``rows`` (the metric rows,
    for an executor whose worker writes no store).
    """

    job: Job
    config: dict[str, Any]
    key: str
    run_dir: Path
    method_cls: type[Any]
    base_cls: type[Any] | None
    loader: Callable[..., Any]
    data_hash: str
    manifest_hash: str
    protocol_version: str
    previous: str | None = None  # status in the store before this sweep
    action: str = "run"  # "run" | "skip"
    reason: str = ""
    manifest: LabelManifest | None = None
    base_note: str = ""  # "base: centertrack (sparse3dtrack's default; ...)" when a default base was picked
    data_root: str | None = None  # the dataset's folder (guarded from method code while it runs)
    timings: dict[str, float] = field(default_factory=dict)
    # Annotation cost of the labels the method was handed (bench.labels.label_cost: 2D and 3D boxes apart).
    label_cost: dict[str, int] = field(default_factory=dict)
    rows: list[MetricRow] | None = None
    # Facts the method recorded through RunContext.notes (a pretraining corpus's data hash), for the manifest.
    method_notes: dict[str, Any] = field(default_factory=dict)


def protocol_version() -> str:
    try:
        import bench.metrics as metrics
    except ImportError:
        return "1"
    return str(getattr(metrics, "PROTOCOL_VERSION", "1"))


def split_variant(name: str, overrides: Iterable[str]) -> tuple[int | None, tuple[str, ...]]:
    """A variant's ``budget=N`` entry (its own label budget, e.g. an ablation over labels per track) and
    the remaining config overrides. No ``budget=`` entry: (None, overrides); the grid's budgets apply."""
    budget: int | None = None
    rest: list[str] = []
    for text in overrides:
        if not isinstance(text, str):
            raise ConfigError(f"variant {name!r}: override {text!r} is not a 'key=value' string")
        key, sep, value = text.partition("=")
        if key.strip() == "budget":
            try:
                budget = int(value)
            except ValueError:
                raise ConfigError(f"variant {name!r}: {text!r} must name an integer budget, e.g. budget=2") from None
            if budget < 1:
                raise ConfigError(f"variant {name!r}: budget must be >= 1, got {budget}")
        else:
            if not sep:
                raise ConfigError(f"variant {name!r}: override {text!r}: expected key=value, "
                                  "e.g. method.use_depth=false")
            rest.append(text)
    return budget, tuple(rest)


def expand_grid(methods: Iterable[str], budgets: Iterable[int | None], datasets: Iterable[str],
                seeds: Iterable[int], profile: str = "quick", base: str | None = None,
                overrides: Iterable[str] = (), variants: dict[str, list[str]] | None = None) -> list[Job]:
    """Every combination, in a stable order (dataset, method, budget, seed), once per variant.

    ``variants`` maps a name to its overrides (applied after ``overrides``); a variant's ``budget=N``
    entry replaces the grid's budgets for that variant. No variants: one plain cell per combination."""
    overrides = tuple(overrides)
    budgets, methods, datasets, seeds = list(budgets), list(methods), list(datasets), list(seeds)
    if not variants:
        return [Job(method=m, dataset=d, budget=b, seed=s, profile=profile, base=base, overrides=overrides)
                for d, m, b, s in itertools.product(datasets, methods, budgets, seeds)]
    parsed = {name: split_variant(name, extra) for name, extra in variants.items()}
    jobs = []
    for d, m in itertools.product(datasets, methods):
        for name, (own_budget, extra) in parsed.items():
            for b, s in itertools.product(budgets if own_budget is None else [own_budget], seeds):
                jobs.append(Job(method=m, dataset=d, budget=b, seed=s, profile=profile, base=base,
                                overrides=overrides, variant=name, variant_overrides=extra))
    return jobs


def load_sweep(name_or_path: str) -> dict[str, Any]:
    """A sweep preset (``bench/sweeps/<name>.yaml`` or a path): methods, budgets, datasets, seeds, profile."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SWEEPS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown sweep preset {name_or_path!r}: no {path}; known presets: {known}")
    data = load_yaml(path)
    for key in ("methods", "budgets", "datasets", "seeds"):
        if key not in data or not isinstance(data[key], list):
            raise ConfigError(f"{path}: expected a list under {key!r}")
    # One base tracker (``base``) or several (``bases``: every labeler's cells once per base, Table 1's two halves).
    if "bases" in data and ("base" in data or not isinstance(data["bases"], list) or not data["bases"]):
        raise ConfigError(f"{path}: 'bases' must be a non-empty list of base trackers, and not beside 'base'")
    variants = data.get("variants")
    if variants is not None:
        if not isinstance(variants, dict) or not variants:
            raise ConfigError(f"{path}: 'variants' must map a name to a list of overrides, e.g. "
                              "{A1: [method.mining=[support]]}")
        for name, extra in variants.items():
            if not isinstance(extra, list):
                raise ConfigError(f"{path}: variant {name!r}: expected a list of overrides, got "
                                  f"{type(extra).__name__}")
            split_variant(str(name), extra)  # reject malformed entries now, not cell by cell
        data["variants"] = {str(k): list(v) for k, v in variants.items()}
    return data


# ---- planning ---------------------------------------------------------------------------------
@dataclass
class _DataInfo:
    data_hash: str
    # (budget, seed, regime) -> the manifest's hash, and the manifest when planning sampled it (listing
    # (seq, frame, track_id) only: no ground truth beyond which boxes are labelled).
    manifests: dict[tuple[int | None, int, str], tuple[str, LabelManifest | None]]
    tracks: pd.DataFrame | None  # kept only while planning, dropped before any method runs


_data_info: dict[tuple[Any, ...], _DataInfo] = {}


def budget_labels(tracks: pd.DataFrame, budget: int | None, seed: int,
                  regime: str = "3d-budget") -> tuple[pd.DataFrame, Any]:
    """The budget's label rows and manifest (None budget: every label; manifest None)."""
    if budget is None:
        return tracks, None
    manifest = _make(tracks, budget, seed, regime)
    return manifest.labels(tracks), manifest


def _make(tracks: pd.DataFrame, budget: int, seed: int, regime: str) -> LabelManifest:
    from bench.labels import make_2d_manifest, make_manifest

    return make_2d_manifest(tracks, budget, seed) if regime == "2d-all" else make_manifest(tracks, budget, seed)


# Time spent sampling label manifests while planning, for the runner-overhead benchmark.
PLANNING_TIMINGS: dict[str, float] = {"labels_s": 0.0, "labels_cpu_s": 0.0, "data_s": 0.0, "data_cpu_s": 0.0}


def sample_manifest(tracks: pd.DataFrame, budget: int, seed: int, regime: str = "3d-budget") -> LabelManifest:
    """The budget's label sample (timed for the runner-overhead benchmark)."""
    start, cpu = time.perf_counter(), time.process_time()
    manifest = _make(tracks, budget, seed, regime)
    PLANNING_TIMINGS["labels_s"] += time.perf_counter() - start
    PLANNING_TIMINGS["labels_cpu_s"] += time.process_time() - cpu
    return manifest


def _labels_code() -> str:
    import bench.labels

    return code_version(bench.labels.LabelManifest)


def cached_manifest_hash(cache_dir: Path | None, data_hash: str, tracks_fn: Callable[[], pd.DataFrame],
                         budget: int, seed: int, write: bool = True, regime: str = "3d-budget"
                         ) -> tuple[str, LabelManifest | None]:
    """The label manifest's sha256, remembered on disk per (data hash, budget, seed, sampler code), and the
    manifest itself when it had to be sampled (None when the hash came from the disk cache).

    Sampling is a pure function of those, so a re-planned sweep need not load and sample again.
    ``write=False`` (a dry run, possibly on a read-only runs folder) reads the cache but adds nothing.
    """
    path = None
    if cache_dir is not None:
        tag = "" if regime == "3d-budget" else f"{regime}-"  # the default regime's cache names stay as they were
        path = cache_dir / "manifests" / data_hash[:32] / _labels_code() / f"{tag}b{budget}-s{seed}.sha256"
        if path.exists():
            text = path.read_text().strip()
            if len(text) == 64:
                return text, None
    manifest = sample_manifest(tracks_fn(), budget, seed, regime)
    sha = str(manifest.sha256)
    if path is not None and write:
        from bench.runner.stages import write_text

        write_text(path, sha)
    return sha, manifest


def _load(loader: Callable[..., Any], data_cfg: dict[str, Any]) -> Any:
    return loader(scale=data_cfg.get("scale", "quick"), seed=int(data_cfg.get("seed", 0)),
                  root=data_cfg.get("root"), progress=False)


def load_dataset_for(loader: Callable[..., Any], data_cfg: dict[str, Any]) -> Any:
    return _load(loader, data_cfg)


def _hashes(job: Job, loader: Callable[..., Any], data_cfg: dict[str, Any], cache_dir: Path | None,
            write_cache: bool = True, regime: str = "3d-budget") -> tuple[str, str, LabelManifest | None]:
    """The data hash, the labels' hash (FULL_LABELS without a budget) and the manifest if sampled here."""
    cache_key = (job.dataset, repr(sorted(data_cfg.items())))
    info = _data_info.get(cache_key)
    if info is None:
        start, cpu = time.perf_counter(), time.process_time()
        dataset = _load(loader, data_cfg)
        PLANNING_TIMINGS["data_s"] += time.perf_counter() - start
        PLANNING_TIMINGS["data_cpu_s"] += time.process_time() - cpu
        info = _data_info[cache_key] = _DataInfo(str(dataset.data_hash), {}, dataset.train.tracks)
        del dataset
    cell = (job.budget, job.seed, regime)
    if cell not in info.manifests:
        if job.budget is None:
            info.manifests[cell] = (FULL_LABELS, None)
        else:
            def tracks() -> pd.DataFrame:
                if info.tracks is None:  # dropped after an earlier planning pass: load again
                    info.tracks = _load(loader, data_cfg).train.tracks
                return info.tracks

            info.manifests[cell] = cached_manifest_hash(cache_dir, info.data_hash, tracks, job.budget, job.seed,
                                                        write=write_cache, regime=regime)
    return info.data_hash, *info.manifests[cell]


def forget_planning_data() -> None:
    """Drop the ground truth planning kept for label sampling (hashes stay cached)."""
    for info in _data_info.values():
        info.tracks = None


def resolve_base(job: Job, method_cls: type[Any]) -> tuple[Job, str]:
    """The job with its base tracker decided, and a one-line note when a labeler's default was used.

    ``base=None`` (not given) takes the labeler's ``default_base``; ``"none"`` (any case) means no base."""
    if job.base is not None and job.base.strip().lower() == NO_BASE:
        return dataclasses.replace(job, base=None), ""
    if job.base is None and kind_of(method_cls) == "labeler":
        default = getattr(method_cls, "default_base", None)
        if default:
            note = f"base: {default} ({job.method}'s default; --base none to skip)"
            return dataclasses.replace(job, base=str(default)), note
    return job, ""


def _unknown(what: str, name: str, known: Iterable[str]) -> ConfigError:
    known = sorted(known)
    close = registry.close_names(name, known)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"unknown {what} {name!r}.{hint} Known: {', '.join(known) or '(none)'}")


def _check_protocols(where: str, value: Any, protocols: list[str]) -> None:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ConfigError(f"{where} must be a list of protocol names, e.g. [kitti-2d], got {value!r}")
    for name in value:
        if name not in protocols:
            raise _unknown(f"protocol in {where}:", name, protocols)


_BASE_CLASS = Labeler.__mro__[-2]  # bench.interface._Base: the constructor that stores any parameters


def check_params(cls: type[Any], params: Any, section: str, name: str,
                 forbidden: Iterable[Path | str] = ()) -> None:
    """Refuse unknown or bad parameters of a method (``section`` "method") or base tracker ("base").

    The constructor's signature is the schema (scikit-learn's contract): names are checked against it
    here, with a close name for a typo; a class that also takes ``**settings`` (sparse3dtrack's
    per-module knobs) checks those names in its constructor. Values are checked by building the object:
    constructors only store and check their parameters, so this runs no training and touches no data
    (the firewall guards it as at run time).
    """
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ConfigError(f"{section}: expected a mapping of {name}'s parameters, got {params!r}")
    fields = inspect.signature(cls).parameters.values()
    # A class without a constructor of its own (e.g. sparse and oracle) takes no parameters.
    if cls.__init__ is getattr(_BASE_CLASS, "__init__", None) and params:
        raise ConfigError(f"{name} takes no parameters; got {section}.{next(iter(params))}")
    if not any(p.kind is p.VAR_KEYWORD for p in fields):
        known = [p.name for p in fields if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        for key in params:
            if key not in known:
                raise _unknown(f"{section} parameter of {name} ({section}.{key}):", key, known)
    try:
        with firewall.guard(forbidden):
            cls(**params)
    except (ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"{section} parameters of {name}: {err}") from None


def check_config(job: Job, config: dict[str, Any], method_cls: type[Any], base_cls: type[Any] | None,
                 forbidden: Iterable[Path | str] = ()) -> None:
    """Every setting of a resolved config is one the runner or the method knows, with a sound value.

    The one place bad input is refused at plan time: before any data is made, any method code runs or
    the store is written, with one line that names the setting (and a close name for a typo).
    """
    if isinstance(job.seed, bool) or not isinstance(job.seed, int) or job.seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {job.seed!r}")
    for key in config:
        if key not in CONFIG_SECTIONS:
            raise _unknown("config section (--set SECTION.KEY=...)", key, CONFIG_SECTIONS)
    profile = load_profile(job.profile)
    for section, names in RUNNER_KEYS.items():
        value = config.get(section)
        if value is None:
            value = config[section] = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{section}: expected a mapping of settings, got {value!r}")
        known = set(names) | set(profile.get(section) or {})
        for key in value:
            if key not in known:
                raise _unknown(f"setting {section}.{key}:", key, known)
    data = config["data"]
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"data.seed must be an integer >= 0 (the dataset's own seed), got {seed!r}")
    scale = data.get("scale", "quick")
    if not isinstance(scale, str):
        raise ConfigError(f"data.scale must be a scale name, got {scale!r}")
    if job.dataset.startswith("synth-"):
        from bench.data.synth.presets import SCALES

        if scale not in SCALES:
            raise _unknown("data.scale", scale, SCALES)
    if data.get("root") is not None and not isinstance(data["root"], str):
        raise ConfigError(f"data.root must be a folder path, got {data['root']!r}")
    if not isinstance(config["runner"].get("deterministic", False), bool):
        raise ConfigError(f"runner.deterministic must be true or false, got {config['runner']['deterministic']!r}")
    evaluation = config["eval"]
    protocols = PROTOCOLS.names()
    for kind, names in (evaluation.get("protocols") or {}).items():
        _check_protocols(f"eval.protocols.{kind}", names, protocols)
    for dataset, kinds in (evaluation.get("datasets") or {}).items():
        if not isinstance(kinds, dict):
            raise ConfigError(f"eval.datasets.{dataset}: expected a mapping output kind -> protocols, got {kinds!r}")
        for kind, names in kinds.items():
            _check_protocols(f"eval.datasets.{dataset}.{kind}", names, protocols)
    if "pseudolabel" in evaluation:
        _check_protocols("eval.pseudolabel", evaluation["pseudolabel"], protocols)
    check_params(method_cls, config.get("method"), "method", job.method, forbidden)
    if base_cls is not None:
        check_params(base_cls, config.get("base"), "base", str(job.base), forbidden)
    elif config.get("base"):
        raise ConfigError(f"base.* settings given, but {job.method} runs without a base tracker "
                          f"(--base NAME to train one)")


@dataclass
class CheckedJob:
    """A job whose names, budget and config were checked: what planning and validation share."""

    job: Job
    method_cls: type[Any]
    base_cls: type[Any] | None
    config: dict[str, Any]
    loader: Callable[..., Any]
    base_note: str = ""


def decide_budget(job: Job, method_cls: type[Any]) -> Job:
    """The one place the label budget is decided: the job with the budget its run uses.

    A method that declares ``sees_ground_truth`` (the oracle upper bound) has no budget, whatever was asked:
    one cell ("all"), and every later stage reads ``job.budget`` (None: every training label). Any other
    method needs a budget k >= 1."""
    if method_cls.sees_ground_truth:
        return dataclasses.replace(job, budget=None) if job.budget is not None else job
    if getattr(method_cls, "label_regime", "3d-budget") == "2d-all":
        # BA²-Det's regime: 2D boxes everywhere, 3D boxes on budget % of the sequences (0 % allowed; 100 % is
        # every box, but still through the regime's manifest, so the run says which regime it used).
        if job.budget is None or not 0 <= job.budget <= 100:
            raise ConfigError(f"{job.method!r} uses the label regime 2d-all (2D boxes on every frame): its budget is "
                              f"the share of sequences with 3D boxes, 0..100 %, e.g. --budget 0% or --budget 10%; "
                              f"got {'all' if job.budget is None else job.budget}")
        return job
    if job.budget is None:
        raise ConfigError(f"budget 'all' (every training label) is only for methods that declare "
                          f"sees_ground_truth (the oracle upper bound); {job.method!r} needs a budget k >= 1")
    if job.budget < 1:
        raise ConfigError(f"label budget must be >= 1 label per track, got {job.budget}")
    return job


def check_job(job: Job, runs_root: Path) -> CheckedJob:
    """Resolve and check a job without touching data, store or runs folder: a bad name, budget, seed or
    setting raises ConfigError / RegistryError here, before any work (``run_sweep`` checks every job first)."""
    method_cls = registry.get_method(job.method)
    job, base_note = resolve_base(job, method_cls)
    base_cls = registry.get_method(job.base) if job.base else None
    kind = kind_of(method_cls)
    if base_cls is not None:
        if kind != "labeler":
            raise ConfigError(f"--base is for labelers; {job.method!r} is a {kind}")
        if kind_of(base_cls) != "learner":
            raise ConfigError(f"base {job.base!r} must be a learner (base tracker), not a {kind_of(base_cls)}")
        if method_cls.outputs == "2d-tracks" and base_cls.outputs != "2d-tracks":
            # A 2D tracker's pseudolabels have no 3D boxes: a 3D base tracker would train on NaN.
            raise ConfigError(f"{job.method!r} labels 2D tracks and base {job.base!r} trains on 3D labels: lift them "
                              f"to 3D first (a composed name such as {job.method}+LIFTER) or run --base none")
    job = decide_budget(job, method_cls)
    config = resolve_config(job.profile, job.method, job.base, job.all_overrides())
    loader = registry.get_dataset_loader(job.dataset)
    forbidden: list[Path | str] = [runs_root, *(p for p in os.environ.get("BENCH_DATA_DIR", "").split(os.pathsep) if p)]
    check_config(job, config, method_cls, base_cls, forbidden)
    return CheckedJob(job, method_cls, base_cls, config, loader, base_note)


def plan_job(job: Job, runs_root: Path, write_cache: bool = True) -> PlannedJob:
    """Resolve and check a job, and compute its key and run folder.

    ``write_cache=False`` (a dry run) writes nothing into the runs folder."""
    checked = check_job(job, runs_root)
    job, method_cls, base_cls, config, loader = (checked.job, checked.method_cls, checked.base_cls, checked.config,
                                                 checked.loader)
    try:
        data_hash, labels_hash, manifest = _hashes(job, loader, config["data"], Path(runs_root) / ".cache",
                                                   write_cache, getattr(method_cls, "label_regime", "3d-budget"))
    except DataError:
        raise
    except ValueError as err:  # a dataset loader's own parameter check (DataError says more and passes as is)
        raise ConfigError(f"dataset {job.dataset}: {err}") from None
    version = protocol_version()
    key = run_key(config=config, method=job.method, method_code=code_version(method_cls), base=job.base,
                  base_code=code_version(base_cls) if base_cls else None, dataset=job.dataset, data_hash=data_hash,
                  budget=job.budget, seed=job.seed, labels=labels_hash, protocol_version=version,
                  variant=job.variant)
    run_dir = run_path(runs_root, job.dataset, job.method, job.base, job.budget, job.seed, key)
    return PlannedJob(job=job, config=config, key=key, run_dir=run_dir, method_cls=method_cls, base_cls=base_cls,
                      loader=loader, data_hash=data_hash, manifest_hash=labels_hash, protocol_version=version,
                      manifest=manifest, base_note=checked.base_note)


def decide(planned: PlannedJob, statuses: dict[str, str], force: bool, rerun_failed: bool) -> None:
    """Set ``planned.action``: finished runs (and, unless asked, failed ones) are skipped."""
    previous = statuses.get(planned.key)
    planned.previous = previous
    if force:
        planned.action, planned.reason = "run", "forced"
    elif previous == "ok" and StageDir(planned.run_dir, "metrics").is_done():
        planned.action, planned.reason = "skip", "finished"
    elif previous == "failed" and not rerun_failed:
        planned.action, planned.reason = "skip", "failed before (--rerun-failed to retry)"
    else:
        planned.action = "run"
        planned.reason = "resume" if previous in ("running", "ok", "failed") else "new"
        if previous == "running" and is_running(planned.run_dir):
            planned.reason = "running in another process (waits for it, then reuses its result)"
