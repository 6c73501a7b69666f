"""The labeler's settings: profiles composing the modules' own profiles, and the paper's ablation rows.

A labeler run is described by flat parameters (constructor keywords, ``--set method.<name>=...``):

- the switches the paper ablates: ``mining`` (Table 2, A1-A4), ``use_depth`` (Table 3, D1/D2),
  ``yaw_mode`` (Table 3, Y1-Y3), ``conf_weighting`` and ``fncomp`` (Table 5, B1-B3); Table 4's
  Q1-Q4 are the run's budget (:data:`ABLATION_BUDGETS`), not a parameter;
- ``ablation``: a row name ("A1", "D1", ...) whose overrides apply first (explicit parameters win);
- ``weights`` (local ViT weights for the encoder; None = CNN from scratch), ``threads``, ``profile``
  (default: the run's profile);
- ``drop_pseudolabels``: a planted regression for measuring the gate's power (:mod:`bench.labels.degrade`):
  that share of the output boxes is dropped (seeded) before FNComp and the base tracker; 0 (default) changes nothing;
- per-module knobs as ``<module>_<key>`` with module one of matcher, depth, geometry, propagate,
  fncomp (e.g. ``matcher_steps=300``, ``fncomp_floor=0.2``), and the propagation thresholds by
  their short names (``conf_drop``, ``conf_update``, ``patience``, ``agree_iou``, ``dedupe_iou``).

:func:`resolve_params` turns (parameters, profile) into one cfg dict per module: the module's
``PROFILES[profile]``, then this file's per-profile extras, then the user's overrides.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.labels.degrade import check_share

# Labeler-level switches and their defaults: the paper's Table 1 model ("Ours" = ablation row B3, with
# FNComp). Without FNComp the base tracker learned to suppress objects here: on synth-kitti quick, seed 0,
# CenterTrack on B2 pseudolabels scored kitti-2d MOTA 0.053 (0.032 in a second run), B1 0.139, B3 0.226,
# against 0.110 for the sparse labels alone (docs/benchmarks.md). The ablation preset turns it off for the
# rows of Tables 3-5 that the paper reports without it (A4 = D2 = Y3 = B2 = Q2).
SWITCHES: dict[str, Any] = {
    "mining": ["support", "self", "cycle", "step"],
    "use_depth": True,
    "yaw_mode": "keypoints",
    "conf_weighting": True,
    "fncomp": True,
    "weights": None,
    "threads": None,
    "profile": None,
    "ablation": None,
    "drop_pseudolabels": 0.0,
}

# Module name in parameters -> the module file it configures.
MODULES: dict[str, str] = {
    "matcher": "methods.sparse3dtrack.matching",
    "depth": "methods.sparse3dtrack.depth",
    "geometry": "methods.sparse3dtrack.geometry",
    "propagate": "methods.sparse3dtrack.propagate",
    "fncomp": "methods.sparse3dtrack.fncomp",
}

# Short names for the propagation thresholds (the knobs tuned most).
ALIASES: dict[str, tuple[str, str]] = {
    key: ("propagate", key) for key in ("conf_drop", "conf_update", "patience", "agree_iou", "dedupe_iou")
}

PROFILE_NAMES: tuple[str, ...] = ("smoke", "quick", "paper")

# Per labeler profile: settings on top of each module's own PROFILES[profile] (modules without
# PROFILES, e.g. propagation, take only these). The quick profile's training budgets are step counts in
# the modules' own quick profiles (no clock decides what is computed: they are what the former CPU-second
# limits allowed on a free core); propagation's thresholds were tuned on synth-kitti quick (docs/benchmarks.md).
PROFILES: dict[str, dict[str, dict]] = {
    "smoke": {"propagate": {}, "fncomp": {}},
    "quick": {"propagate": {}, "fncomp": {}},
    "paper": {"propagate": {}, "fncomp": {}},
}

# The paper's ablation rows (Tables 2, 3, 5) as labeler parameter overrides; all but B3 are without FNComp, as printed.
ABLATIONS: dict[str, dict[str, Any]] = {
    "A1": {"mining": ["support"], "fncomp": False},
    "A2": {"mining": ["support", "self"], "fncomp": False},
    "A3": {"mining": ["support", "self", "cycle"], "fncomp": False},
    "A4": {"mining": ["support", "self", "cycle", "step"], "fncomp": False},
    "D1": {"use_depth": False, "fncomp": False},
    "D2": {"use_depth": True, "fncomp": False},
    "Y1": {"yaw_mode": "regression", "fncomp": False},
    "Y2": {"yaw_mode": "bins", "fncomp": False},
    "Y3": {"yaw_mode": "keypoints", "fncomp": False},
    "B1": {"conf_weighting": False, "fncomp": False},
    "B2": {"conf_weighting": True, "fncomp": False},
    "B3": {"conf_weighting": True, "fncomp": True},
}
# Table 4: the number of labels per track (the run's --budget).
ABLATION_BUDGETS: dict[str, int] = {"Q1": 2, "Q2": 4, "Q3": 8, "Q4": 16}


def _module(name: str) -> Any:
    return importlib.import_module(MODULES[name])


def module_profile(module: str, profile: str) -> dict:
    """The module's own settings for ``profile`` composed with this labeler's extras (a fresh dict)."""
    if profile not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {profile!r}; known: {list(PROFILE_NAMES)}")
    own = getattr(_module(module), "PROFILES", {}).get(profile, {})
    return {**own, **PROFILES[profile].get(module, {})}


def resolve_params(params: dict[str, Any], profile: str) -> dict[str, Any]:
    """(labeler parameters, profile) -> {"switches": {...}, "matcher": cfg, "depth": cfg, ...}.

    Raises ValueError naming the parameter for an unknown name, ablation row or switch value.
    """
    params = dict(params)
    ablation = params.get("ablation")
    if ablation is not None:
        if ablation in ABLATION_BUDGETS:
            raise ValueError(f"ablation {ablation!r} is a budget (--budget {ABLATION_BUDGETS[ablation]}), "
                             "not a labeler setting")
        if ablation not in ABLATIONS:
            raise ValueError(f"unknown ablation {ablation!r}; known: {sorted(ABLATIONS)}")
        params = {**ABLATIONS[ablation], **params}
    profile = params.get("profile") or profile
    switches = {key: params.pop(key, default) for key, default in SWITCHES.items()}
    switches["profile"] = profile
    modules = {name: module_profile(name, profile) for name in MODULES}
    for key, value in params.items():
        if key in ALIASES:
            module, sub = ALIASES[key]
        else:
            module, _, sub = key.partition("_")
            if module not in MODULES or not sub:
                raise ValueError(f"unknown sparse3dtrack parameter {key!r}; known: {sorted(SWITCHES)}, "
                                 f"{sorted(ALIASES)} and <module>_<setting> for modules {sorted(MODULES)}")
        known = getattr(_module(module), "DEFAULTS", {})
        if sub not in known:
            raise ValueError(f"unknown sparse3dtrack parameter {key!r}: {module} has no setting {sub!r}; "
                             f"known: {sorted(known)}")
        modules[module][sub] = value
    mining = switches["mining"]
    if isinstance(mining, str):
        mining = [m.strip() for m in mining.split(",") if m.strip()]
    all_mining = SWITCHES["mining"]
    bad = [m for m in mining if m not in all_mining]
    if bad or not mining:
        raise ValueError(f"mining must be a non-empty subset of {all_mining}, got {mining}")
    switches["mining"] = list(mining)
    if switches["yaw_mode"] not in ("regression", "bins", "keypoints"):
        raise ValueError(f"yaw_mode must be regression, bins or keypoints, got {switches['yaw_mode']!r}")
    for flag in ("use_depth", "conf_weighting", "fncomp"):
        if not isinstance(switches[flag], bool):
            raise ValueError(f"{flag} must be true or false, got {switches[flag]!r}")
    switches["drop_pseudolabels"] = check_share(switches["drop_pseudolabels"])
    if switches["threads"] is not None and int(switches["threads"]) < 1:
        raise ValueError(f"threads must be >= 1, got {switches['threads']}")
    return {"switches": switches, **modules}
