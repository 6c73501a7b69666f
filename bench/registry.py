"""Names -> things, resolved lazily: one :class:`Registry` type for every kind of plug-in.

Each kind (methods, datasets, protocols, data formats, ``bench eval`` loaders, CLI commands) is one
``Registry``: a name maps to a lazy ``"module:attribute"`` string (or ``"module"`` for a whole module),
or to the object itself, so a heavy plug-in costs nothing until it is chosen. The same rules hold for
every kind:

- an unknown name raises :class:`RegistryError` with one did-you-mean hint (:func:`did_you_mean`);
- registering a name that is taken raises unless ``replace=True`` (registering the very same target
  again is no change, so importing a plug-in module twice is harmless);
- entry points (``[project.entry-points."bench.<kind>s"]`` of an installed package) join the built-in
  entries; an entry point whose name a built-in entry (or another package's entry point) already has
  is an error naming both, never a silent shadowing;
- on first load, the object is checked (a method must be a bench Labeler, Learner or Method, a
  protocol callable, ...), and a broken target names itself in the error.

bench's own methods are entry points of the ``bench.methods`` group in ``pyproject.toml``, declared
exactly as a third-party package declares its own (README: "ship it in your own package"). The
registries of the other kinds live with their owners (``bench.metrics.protocols.PROTOCOLS``,
``bench.data.formats.FORMATS``, ``bench.cli.eval.LOADERS``, ``bench.cli.COMMANDS``); the module-level
functions below are the methods and datasets registries' short forms.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")

METHODS_GROUP = "bench.methods"
DATASETS_GROUP = "bench.datasets"
# Kept for callers of the old names.
ENTRY_POINT_GROUP = METHODS_GROUP
DATASET_ENTRY_POINT_GROUP = DATASETS_GROUP


class RegistryError(KeyError):
    """An unknown, taken or broken name. ``str()`` gives the readable message (KeyError would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def close_names(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names close to a mistyped one, closest first (the one similarity rule bench uses)."""
    return difflib.get_close_matches(name, sorted(known), n=n, cutoff=0.5)


def did_you_mean(kind: str, name: str, known: Iterable[str]) -> RegistryError:
    """The one unknown-name error: the close names first, then every known one."""
    known = sorted(known)
    close = close_names(name, known)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return RegistryError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known) or '(none)'}")


def import_target(target: str, what: str) -> Any:
    """``"module:attribute"`` -> the attribute; ``"module"`` -> the module."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute) if attribute else module
    except (ImportError, AttributeError) as err:
        raise RegistryError(f"{what}: cannot import {target!r}: {err}") from err


class Registry(Generic[T]):
    """One kind of plug-in: names -> lazy targets, with collision, type and did-you-mean errors.

    ``builtin``: the entries bench itself provides: a mapping, or the lazy ``"module:MAPPING"`` of one
    (imported on first use, so that the registry module never imports what it registers). ``group``: the
    entry-point group third-party packages add entries through. ``check(obj)``: raises TypeError when a
    loaded object is not of this kind (e.g. not a bench Method).
    """

    def __init__(self, kind: str, builtin: Mapping[str, str | T] | str = {},  # noqa: B006 - never mutated
                 *, group: str | None = None, check: Callable[[Any], None] | None = None) -> None:
        self.kind = kind
        self.group = group
        self._builtin = builtin
        self._check = check
        self._targets: dict[str, str | T] = {}
        self._origins: dict[str, str] = {}  # name -> where it was declared, for collision messages
        self._loaded: dict[str, T] = {}
        self._ready = False

    # ---- building the table ----
    def _entry_points(self) -> Iterator[tuple[str, str, str]]:
        if self.group is None:
            return
        seen: dict[str, tuple[str, str]] = {}
        for ep in entry_points(group=self.group):
            dist = ep.dist.name if ep.dist is not None else "an unknown package"
            if ep.name in seen:
                if seen[ep.name][0] == ep.value:  # the same package seen twice (e.g. two install records)
                    continue
                raise RegistryError(f"{self.kind} {ep.name!r} is declared twice as a {self.group!r} entry point: "
                                    f"{seen[ep.name][0]!r} by {seen[ep.name][1]} and {ep.value!r} by {dist}; "
                                    "rename one of them")
            seen[ep.name] = (ep.value, dist)
            yield ep.name, ep.value, f"entry point {ep.value!r} of package {dist}"

    def _load_table(self) -> None:
        if self._ready:
            return
        self._ready = True
        builtin = self._builtin
        if isinstance(builtin, str):
            builtin = import_target(builtin, f"the built-in {self.kind}s")
        for name, target in dict(builtin).items():
            self._targets[name], self._origins[name] = target, "built in"
        for name, value, origin in self._entry_points():
            if name in self._targets and self._targets[name] != value:
                del self._targets[name]  # neither wins silently: looking the name up names both
                self._origins[name] = f"COLLISION: {self._origins[name]} and {origin}"
                continue
            self._targets[name], self._origins[name] = value, origin

    def register(self, name: str, target: str | T, *, replace: bool = False) -> None:
        """Add ``name`` -> ``target`` (an object, or a lazy ``"module:attribute"``); a taken name raises
        RegistryError unless ``replace`` (the same target again is no change)."""
        self._load_table()
        if name in self._origins and not replace:
            if name in self._targets and (self._targets[name] is target or self._targets[name] == target):
                return
            raise RegistryError(f"{self.kind} {name!r} is taken ({self._origins[name]}); "
                                "register(..., replace=True) to replace it on purpose")
        self._targets[name], self._origins[name] = target, "registered at run time"
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        self._load_table()
        self._targets.pop(name, None)
        self._origins.pop(name, None)
        self._loaded.pop(name, None)

    # ---- looking up ----
    def names(self) -> list[str]:
        self._load_table()
        return sorted(self._targets)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, name: object) -> bool:
        self._load_table()
        return name in self._targets

    def _require(self, name: str) -> str | T:
        self._load_table()
        if name not in self._targets:
            origin = self._origins.get(name, "")
            if origin.startswith("COLLISION"):
                raise RegistryError(f"{self.kind} {name!r} is declared twice: {origin[len('COLLISION: '):]}; "
                                    "rename the entry point")
            raise did_you_mean(self.kind, name, self._targets)
        return self._targets[name]

    def target(self, name: str) -> str:
        """The ``"module:attribute"`` a name points at, without importing it."""
        target = self._require(name)
        if isinstance(target, str):
            return target
        module = getattr(target, "__module__", "?")
        return f"{module}:{getattr(target, '__qualname__', getattr(target, '__name__', repr(target)))}"

    def get(self, name: str) -> T:
        """The object registered as ``name``, imported on first use and checked to be of this kind."""
        if name in self._loaded:
            return self._loaded[name]
        target = self._require(name)
        obj = import_target(target, f"{self.kind} {name!r}") if isinstance(target, str) else target
        if self._check is not None:
            try:
                self._check(obj)
            except TypeError as err:
                raise RegistryError(f"{self.kind} {name!r}: {err}") from err
        self._loaded[name] = obj
        return obj


# ---- methods ----------------------------------------------------------------------------------------
def _check_method(obj: Any) -> None:
    from bench.interface import kind_of

    if not isinstance(obj, type):
        raise TypeError(f"{obj!r} is not a class")
    kind_of(obj)  # TypeError unless a Labeler, Learner or Method


LIFTERS_GROUP = "bench.lifters"


def _check_lifter(obj: Any) -> None:
    from bench.lift import Lifter

    if not (isinstance(obj, type) and issubclass(obj, Lifter)):
        raise TypeError(f"{obj!r} is not a bench.lift.Lifter (a 3D detector with lift_frames)")


# 3D lifters: the ``B`` of a composed method ``A+B`` (bench/lift.py). Entry points of ``bench.lifters``.
lifters: Registry[type] = Registry("lifter", group=LIFTERS_GROUP, check=_check_lifter)


class MethodRegistry(Registry[type]):
    """The methods registry, which also resolves composed names: ``A+B`` is 2D tracker ``A`` (any method whose
    outputs are 2d-tracks) lifted to 3D by lifter ``B`` (:data:`lifters`), built by :func:`bench.lift.compose`.

    A composed name is never stored: it is valid whenever both parts are, and a wrong part is a did-you-mean
    error naming that part's role. A plain name containing ``+`` that is registered as such wins."""

    def parts(self, name: str) -> tuple[str, str] | None:
        """(A, B) when ``name`` is a composed name (not registered as itself), else None; checks both parts."""
        self._load_table()
        if "+" not in name or name in self._targets:
            return None
        source, _, lifter = name.partition("+")
        if source not in self._targets:
            raise RegistryError(f"in the composed method {name!r} (2D tracker + lifter): "
                                f"{did_you_mean('method', source, self._targets)}")
        if lifter not in lifters:
            raise RegistryError(f"in the composed method {name!r} (2D tracker + lifter): "
                                f"{did_you_mean('lifter', lifter, lifters.names())}")
        return source, lifter

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str) and "+" in name:
            try:
                return self.parts(name) is not None or super().__contains__(name)
            except RegistryError:
                return False
        return super().__contains__(name)

    def target(self, name: str) -> str:
        parts = self.parts(name)
        if parts is None:
            return super().target(name)
        return f"bench.lift:compose({super().target(parts[0])}, {lifters.target(parts[1])})"

    def get(self, name: str) -> type:
        parts = self.parts(name)
        if parts is None or name in self._loaded:
            return self._loaded[name] if name in self._loaded else super().get(name)
        from bench.lift import compose

        source, lifter = parts
        try:
            cls = compose(source, super().get(source), lifter, lifters.get(lifter))
        except TypeError as err:
            raise RegistryError(f"method {name!r}: {err}") from err
        self._loaded[name] = cls
        return cls


# bench's own methods are entry points too (pyproject.toml), so nothing is built in here.
methods: MethodRegistry = MethodRegistry("method", group=METHODS_GROUP, check=_check_method)


def composed_parts(name: str) -> tuple[str, str] | None:
    """(2D tracker, lifter) of a composed method name ``A+B``; None for a plain name (see :class:`MethodRegistry`)."""
    return methods.parts(name)


# ---- datasets ----------------------------------------------------------------------------------------
def _check_callable(obj: Any) -> None:
    if not callable(obj):
        raise TypeError(f"{obj!r} is not callable")


# bench.data.datasets owns the table of its datasets (name -> loader); read lazily by name, so this module,
# which the data layer's own registries import, imports nothing of the data layer.
datasets: Registry[Callable[..., Any]] = Registry("dataset", "bench.data.datasets:LOADERS", group=DATASETS_GROUP,
                                                  check=_check_callable)


# ---- short forms ------------------------------------------------------------------------------------
def register(name: str, target: str | type, *, replace: bool = False) -> None:
    """Register a method under ``name``: a class or a lazy ``"module:Class"`` string."""
    methods.register(name, target, replace=replace)


def register_dataset(name: str, loader: str | Callable[..., Any], *, replace: bool = False) -> None:
    """Register a dataset loader ``(scale=..., seed=..., root=..., progress=...) -> Dataset`` (or its "module:func")."""
    datasets.register(name, loader, replace=replace)


def unregister(name: str) -> None:
    methods.unregister(name)
    datasets.unregister(name)


def method_names() -> list[str]:
    return methods.names()


def dataset_names() -> list[str]:
    return datasets.names()


def method_target(name: str) -> str:
    """The ``"module:Class"`` a method name points at (without importing it)."""
    return methods.target(name)


def get_method(name: str) -> type[Any]:
    """The class registered as ``name``."""
    return methods.get(name)


def get_dataset_loader(name: str) -> Callable[..., Any]:
    """A callable ``(scale=..., seed=..., root=..., progress=...) -> Dataset`` for ``name``."""
    return datasets.get(name)
