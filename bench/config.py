"""Profiles (YAML) + ``--set key=value`` overrides -> one resolved config per run.

A profile (``bench/profiles/<name>.yaml``: smoke, quick, paper) gives data scale, runner
settings, the protocols to score and per-method parameters. For a run, :func:`resolve_config`
picks the method's (and base's) parameters out of the profile and applies the overrides; the
result is saved with the run and hashed into its key. Overrides use dotted keys into that
resolved config (``method.conf_halflife=3``, ``data.scale=smoke``, ``eval.protocols.3d-tracks=[3d-iou]``)
and their values are parsed as YAML, so ``3`` is an int, ``[a, b]`` a list and ``null`` None.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

PROFILES_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "quick"


# The sections of a resolved config, and the settings the runner itself reads from its own sections
# (a profile may add more; "method" and "base" hold the classes' constructor parameters).
CONFIG_SECTIONS: tuple[str, ...] = ("profile", "data", "runner", "eval", "method", "base")
RUNNER_KEYS: dict[str, tuple[str, ...]] = {
    "data": ("scale", "seed", "root"),
    "runner": ("deterministic",),
    "eval": ("protocols", "datasets", "pseudolabel"),
}


class ConfigError(ValueError):
    """A bad profile file or override; the message names it and says what was expected."""


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


_profiles: dict[tuple[Path, float], dict[str, Any]] = {}


def load_profile(name: str) -> dict[str, Any]:
    """The profile's YAML as a dict (a profile name, or a path to a YAML file). Returns a fresh copy."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PROFILES_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown profile {name!r}: no {path}; known profiles: {', '.join(profile_names())}")
    # Parsed once per file version: a 1000-cell sweep resolves the same profile 1000 times.
    key = (path.resolve(), path.stat().st_mtime)
    if key not in _profiles:
        _profiles[key] = load_yaml(path)
    return copy.deepcopy(_profiles[key])


def method_params(profile: str, method: str) -> dict[str, Any]:
    """A profile's constructor parameters for one method (its ``methods.<name>`` section; {} when none)."""
    return copy.deepcopy(load_profile(profile).get("methods", {}).get(method) or {})


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3). The value is YAML, so types come out right."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: expected key=value with a dotted key, e.g. method.lr=0.01")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {err}") from None
    return key.split("."), parsed


def apply_overrides(config: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A deep copy of ``config`` with each ``key=value`` set (intermediate mappings are created)."""
    out = copy.deepcopy(dict(config))
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is a {type(child).__name__}, not a mapping")
            node = child
        node[path[-1]] = value
    return out


def resolve_config(profile: str, method: str, base: str | None = None,
                   overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The full config of one run: profile settings, the method's (and base's) parameters, overrides."""
    prof = load_profile(profile)
    params = prof.get("methods", {}) or {}
    config: dict[str, Any] = {
        "profile": profile,
        "data": copy.deepcopy(prof.get("data", {})),
        "runner": copy.deepcopy(prof.get("runner", {})),
        "eval": copy.deepcopy(prof.get("eval", {})),
        "method": _method_section(params, method),
        "base": copy.deepcopy(params.get(base, {}) or {}) if base else None,
    }
    return apply_overrides(config, overrides)


def _method_section(params: Mapping[str, Any], method: str) -> dict[str, Any]:
    """A method's profile parameters. A composed method ``A+B`` (bench.lift) takes its parts' own sections, each
    declared once (``methods.A`` as ``tracker``, ``methods.B`` as ``lifter``), under its own section's settings."""
    from bench.registry import RegistryError, composed_parts

    try:
        parts = composed_parts(method)
    except RegistryError:
        parts = None  # a wrong part is reported where the method is looked up, with its did-you-mean
    own = copy.deepcopy(params.get(method, {}) or {})
    if parts is None:
        return own
    return {"tracker": copy.deepcopy(params.get(parts[0], {}) or {}),
            "lifter": copy.deepcopy(params.get(parts[1], {}) or {}), **own}


def dump_config(config: Mapping[str, Any]) -> str:
    # libyaml's dumper when present: the pure-Python one costs ~15 ms of CPU per run.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(dict(config), Dumper=dumper, sort_keys=True)
