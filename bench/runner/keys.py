"""Run keys and run folders.

A run's key is the sha256 of everything that decides its result: the resolved config, the code
version of the method (and base), the dataset's content hash, the label manifest's hash, the
budget, seed and the metric protocol version. Change any of them and the run is a new cell;
change none and a sweep skips it.

Settings that only decide how a run executes leave the key (:data:`EXECUTION_ONLY`): torch threads,
and the data folder (its content is in the key as ``data_hash``). Jobs, executor and progress are
sweep options and never were in the config. So the same experiment run with 1 or 4 threads is one cell.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_code_versions: dict[type, str] = {}
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def code_version(cls: type) -> str:
    """sha256 (16 hex) of the source files of the package (or module) that defines ``cls``, and of every package
    of ``baselines/`` or ``methods/`` those files import (transitively).

    Hashing the whole package catches edits to helper modules a method imports from its own package; following
    its imports of other method packages catches edits to code it borrows (centernet and deft build on
    CenterTrack's network and targets). A class defined outside any file (an interactive session) hashes its
    qualified name.
    """
    if cls in _code_versions:
        return _code_versions[cls]
    digest = hashlib.sha256()
    module = sys.modules.get(cls.__module__)
    source_file = getattr(module, "__file__", None) if module is not None else None
    files: list[Path] = []
    if source_file:
        path = Path(source_file)
        package = getattr(module, "__package__", "") or ""
        # A module inside a sub-package of baselines/ or methods/ (one package per method): hash that package.
        if path.name == "__init__.py" or package.count(".") >= 1:
            files = sorted(path.parent.rglob("*.py"))
        else:
            files = [path]
        files = _with_borrowed_code(files)
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    if not files:
        try:
            digest.update(inspect.getsource(cls).encode())
        except (OSError, TypeError):
            digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
    _code_versions[cls] = digest.hexdigest()[:16]
    return _code_versions[cls]


_BORROWED = re.compile(r"^\s*(?:from|import)\s+((?:baselines|methods)\.[A-Za-z0-9_]+)", re.MULTILINE)


def _with_borrowed_code(files: list[Path]) -> list[Path]:
    """``files`` plus the source files of the baselines/methods packages (or modules) they import, transitively;
    the method's own files first, then the borrowed ones by path."""
    import importlib.util

    own = list(files)
    seen_files = set(own)
    seen_names: set[str] = set()
    queue = list(own)
    borrowed: list[Path] = []
    while queue:
        text = queue.pop().read_text(errors="replace")
        for name in _BORROWED.findall(text):
            if name in seen_names:
                continue
            seen_names.add(name)
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                continue
            if spec is None or not spec.origin:
                continue
            origin = Path(spec.origin)
            found = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
            for file in found:
                if file not in seen_files:
                    seen_files.add(file)
                    borrowed.append(file)
                    queue.append(file)
    return own + sorted(borrowed)


# (config section, key) pairs that change how a run executes, never what it computes.
EXECUTION_ONLY: tuple[tuple[str, str], ...] = (("method", "threads"), ("base", "threads"), ("data", "root"))
COMPOSED_PARTS = ("tracker", "lifter")  # the sections of a composed method's parameters (bench.lift.Lifted)


def key_config(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config without :data:`EXECUTION_ONLY` settings: what the run key hashes."""
    out = dict(config)
    for section, name in EXECUTION_ONLY:
        if isinstance(out.get(section), dict) and name in out[section]:
            out[section] = {k: v for k, v in out[section].items() if k != name}
    # A composed method (bench.lift, ``A+B``) holds its parts' parameters one level down: their threads too.
    method = out.get("method")
    if isinstance(method, dict) and any(isinstance(method.get(p), dict) for p in COMPOSED_PARTS):
        out["method"] = {k: ({kk: vv for kk, vv in v.items() if kk != "threads"}
                             if k in COMPOSED_PARTS and isinstance(v, dict) else v) for k, v in method.items()}
    return out


def run_key(*, config: dict[str, Any], method: str, method_code: str, base: str | None, base_code: str | None,
            dataset: str, data_hash: str, budget: int | None, seed: int, labels: str, protocol_version: str,
            variant: str = "") -> str:
    """The run key of a planned job (and of a stored run, from its record: the store's re-keying migration)."""
    parts: dict[str, Any] = {
        "config": key_config(config),
        "method": method, "method_code": method_code,
        "base": base, "base_code": base_code,
        "dataset": dataset, "data_hash": data_hash,
        "budget": budget, "seed": seed, "labels": labels,
        "protocol_version": protocol_version,
    }
    if variant:  # only when set, so the keys of runs without a variant stay what they were
        parts["variant"] = variant
    return job_key(parts)


# Parameters that stand for a code change: a planted regression (bench.labels.degrade) is a different run
# (it is in the key) but the same cell for `bench check`, whose power is measured by planting one.
STANDS_FOR_CODE: tuple[str, ...] = ("drop_pseudolabels",)


def identity_overrides(overrides: Iterable[str]) -> list[str]:
    """``--set`` overrides as a run records them: ``section.key=<JSON value>``, sorted, the last of
    repeated keys winning, execution-only settings and :data:`STANDS_FOR_CODE` left out. `bench check`
    matches cells by this list, so ``--set base.threads=1`` never splits a cell, and values are compared
    as parsed (``3`` and ``03`` alike)."""
    from bench.config import parse_override

    latest: dict[str, Any] = {}
    for text in overrides:
        path, value = parse_override(text)
        if len(path) == 2 and ((path[0], path[1]) in EXECUTION_ONLY or path[1] in STANDS_FOR_CODE):
            continue
        if len(path) == 3 and path[0] == "method" and path[1] in COMPOSED_PARTS and path[2] == "threads":
            continue
        latest[".".join(path)] = value
    return sorted(f"{k}={json.dumps(v, sort_keys=True, default=str)}" for k, v in latest.items())


def job_key(parts: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``parts`` (sorted keys), as 64 hex digits."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def safe_name(name: str, max_len: int = 64) -> str:
    """A folder name that cannot escape its parent: ``[A-Za-z0-9._+-]`` only, no leading dot.

    A name that had to change gets a short hash of the original appended, so two distinct
    hostile names never share a folder.
    """
    text = str(name)
    cleaned = _SAFE.sub("_", text).lstrip(".") or "_"
    cleaned = cleaned[:max_len]
    if cleaned != text:
        cleaned = f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return cleaned


def run_path(root: Path, dataset: str, method: str, base: str | None, budget: int | None, seed: int,
             key: str) -> Path:
    """``<root>/<dataset>/<method>[+<base>]/b<k>/s<seed>/<key[:16]>``, guaranteed inside ``root``."""
    label = method if base is None else f"{method}+{base}"
    path = (Path(root) / safe_name(dataset) / safe_name(label) / f"b{'all' if budget is None else int(budget)}"
            / f"s{int(seed)}" / key[:16])
    resolved_root = Path(root).resolve()
    if not path.resolve().is_relative_to(resolved_root):  # defence in depth; safe_name already ensures it
        raise ValueError(f"run folder {path} would leave the runs folder {resolved_root}")
    return path
