"""Run keys and run folders.

A run's key is the sha256 of everything that decides its result: the resolved config, the code
version of the method (and base), the dataset's content hash, the label manifest's hash, the
budget, seed and the metric protocol version. Change any of them and the run is a new cell;
change none and a sweep skips it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

_code_versions: dict[type, str] = {}
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def code_version(cls: type) -> str:
    """sha256 (16 hex) of the source files of the package (or module) that defines ``cls``.

    Hashing the whole package catches edits to helper modules a method imports from its own
    package; a class defined outside any file (an interactive session) hashes its qualified name.
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
