"""Names -> methods and datasets, resolved lazily.

Methods are registered as ``"module:Class"`` strings (in ``baselines/__init__.py`` and
``methods/__init__.py``, or by third-party packages through the ``bench.methods`` entry-point
group), so a heavy method costs nothing until it is chosen. Unknown names get a did-you-mean
error. Tests and notebooks can also :func:`register` a class or a loader directly.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "bench.methods"
DATASET_ENTRY_POINT_GROUP = "bench.datasets"

# Datasets the data package provides (bench.data.datasets.load_dataset takes the name).
BUILTIN_DATASETS: tuple[str, ...] = ("synth-kitti", "synth-nuscenes", "synth-waymo", "synth-mot", "synth-dense")

_methods: dict[str, str | type] = {}
_datasets: dict[str, str | Callable[..., Any]] = {}
_loaded_builtin = False


class RegistryError(KeyError):
    """An unknown or broken name. ``str()`` gives the readable message (KeyError would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _did_you_mean(kind: str, name: str, known: Iterable[str]) -> RegistryError:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return RegistryError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known) or '(none)'}")


def _load_builtin() -> None:
    global _loaded_builtin
    if _loaded_builtin:
        return
    _loaded_builtin = True
    for package in ("baselines", "methods"):
        try:
            module = importlib.import_module(package)
        except ModuleNotFoundError:
            continue
        for name, target in getattr(module, "METHODS", {}).items():
            _methods.setdefault(name, target)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _methods.setdefault(ep.name, ep.value)
    try:
        datasets_module = importlib.import_module("bench.data.datasets")
        names = getattr(datasets_module, "DATASETS", None) or BUILTIN_DATASETS
    except ModuleNotFoundError:
        names = BUILTIN_DATASETS
    for name in names:
        _datasets.setdefault(name, "bench.data.datasets:load_dataset")
    for ep in entry_points(group=DATASET_ENTRY_POINT_GROUP):
        _datasets.setdefault(ep.name, ep.value)


def register(name: str, target: str | type) -> None:
    """Register a method under ``name``: a class or a lazy ``"module:Class"`` string."""
    _load_builtin()
    _methods[name] = target


def register_dataset(name: str, loader: str | Callable[..., Any]) -> None:
    """Register a dataset loader ``(scale=..., seed=..., root=...) -> Dataset`` (or its "module:func")."""
    _load_builtin()
    _datasets[name] = loader


def unregister(name: str) -> None:
    _methods.pop(name, None)
    _datasets.pop(name, None)


def _import(target: str, what: str) -> Any:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute)
    except (ImportError, AttributeError) as err:
        raise RegistryError(f"{what}: cannot import {target!r}: {err}") from err


def method_names() -> list[str]:
    _load_builtin()
    return sorted(_methods)


def dataset_names() -> list[str]:
    _load_builtin()
    return sorted(_datasets)


def method_target(name: str) -> str:
    """The ``"module:Class"`` a name points at (without importing it)."""
    _load_builtin()
    if name not in _methods:
        raise _did_you_mean("method", name, _methods)
    target = _methods[name]
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def get_method(name: str) -> type[Any]:
    """The class registered as ``name``."""
    _load_builtin()
    if name not in _methods:
        raise _did_you_mean("method", name, _methods)
    target = _methods[name]
    cls = _import(target, f"method {name!r}") if isinstance(target, str) else target
    from bench.interface import kind_of

    try:
        kind_of(cls)
    except TypeError as err:
        raise RegistryError(f"method {name!r}: {err}") from err
    return cls


def get_dataset_loader(name: str) -> Callable[..., Any]:
    """A callable ``(scale=..., seed=..., root=..., progress=...) -> Dataset`` for ``name``."""
    _load_builtin()
    if name not in _datasets:
        raise _did_you_mean("dataset", name, _datasets)
    target = _datasets[name]
    if not isinstance(target, str):
        return target
    loader = _import(target, f"dataset {name!r}")
    if target == "bench.data.datasets:load_dataset":
        return lambda **kw: loader(name, **kw)
    return loader


def protocol_names() -> list[str]:
    from bench.metrics.protocols import PROTOCOLS

    return sorted(PROTOCOLS)
