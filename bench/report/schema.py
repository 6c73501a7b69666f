"""Metric metadata from ``leaderboards/metrics.yaml``: display name, direction, units, protocol specs."""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def _leaderboards_dir() -> Path:
    """The installed ``leaderboards`` data package (a wheel puts it beside ``bench``), else the source checkout's."""
    try:
        return Path(str(resources.files("leaderboards")))
    except ModuleNotFoundError:  # an editable install made before leaderboards/ became a package
        return Path(__file__).resolve().parents[2] / "leaderboards"


LEADERBOARDS_DIR = _leaderboards_dir()
DEFAULT_SCHEMA_PATH = LEADERBOARDS_DIR / "metrics.yaml"
# How every table, page and summary shows a value that is undefined (NaN: nothing matched, nothing stored) or
# a field that is empty: never 0 or 100, never "nan" or "None".
MISSING = "-"


def signed(value: float, decimals: int) -> str:
    """``+1.20`` / ``-0.35``; a difference that rounds to zero is ``+0.00``, never ``-0.00``."""
    return f"{round(value, decimals) + 0.0:+.{decimals}f}"  # -0.0 + 0.0 is +0.0


@dataclass(frozen=True)
class MetricInfo:
    """How one metric is shown and compared (for one protocol)."""

    name: str
    display: str
    higher_is_better: bool | None  # None: neither direction is better; never bolded, never a regression
    unit: str
    scale: float
    decimals: int
    unit_label: str

    @property
    def header(self) -> str:
        """Column/axis title, e.g. ``MOTA (%)`` or ``AMOTP (m)``."""
        return f"{self.display} ({self.unit_label})" if self.unit_label else self.display

    def shown(self, value: float) -> float:
        """A stored value in display units (fractions become percent, radians degrees...)."""
        return value * self.scale

    def format(self, mean: float | None, std: float | None = None) -> str:
        """``29.71 ± 0.52`` in display units; std is left out when missing (one seed)."""
        if mean is None or (isinstance(mean, float) and math.isnan(mean)):
            return MISSING
        text = f"{self.shown(mean):.{self.decimals}f}"
        if std is not None and not math.isnan(std):
            text += f" ± {self.shown(std):.{self.decimals}f}"
        return text


@dataclass(frozen=True)
class ProtocolSpec:
    name: str
    title: str
    headline: str | None
    metrics: tuple[str, ...]


class MetricSchema:
    """The parsed schema file. ``info(metric, protocol)`` never fails: unknown metrics get a neutral default."""

    def __init__(self, data: dict[str, Any], source: str = "<dict>") -> None:
        self.source = source
        self.units: dict[str, dict[str, Any]] = data.get("units", {})
        self.metrics: dict[str, dict[str, Any]] = data.get("metrics", {})
        self.protocols: dict[str, dict[str, Any]] = data.get("protocols", {})
        self.reference_methods: frozenset[str] = frozenset(data.get("reference_methods", []))
        self.aliases: dict[str, str] = {str(k): str(v) for k, v in (data.get("aliases") or {}).items()}
        self._lowercase = {name.lower(): name for name in self.metrics}
        for name, meta in self.metrics.items():
            self._check_unit(meta.get("unit", "number"), f"metric {name}")
        for proto, spec in self.protocols.items():
            for name, meta in (spec.get("overrides") or {}).items():
                if "unit" in meta:
                    self._check_unit(meta["unit"], f"protocol {proto} override {name}")
        self._cache: dict[tuple[str, str | None], MetricInfo] = {}

    def _check_unit(self, unit: str, where: str) -> None:
        if unit not in self.units:
            raise ValueError(f"{self.source}: {where}: unknown unit {unit!r}; expected one of {sorted(self.units)}")

    @classmethod
    def load(cls, path: Path | str | None = None) -> MetricSchema:
        path = Path(path) if path is not None else DEFAULT_SCHEMA_PATH
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML: {error}") from error
        if not isinstance(data, dict) or "metrics" not in data or "units" not in data:
            raise ValueError(f"{path}: expected a mapping with 'units' and 'metrics' keys")
        return cls(data, source=str(path))

    def _protocol_entry(self, protocol: str | None) -> dict[str, Any]:
        # Exact name first, then glob patterns such as "nuscenes*".
        if protocol is None:
            return {}
        if protocol in self.protocols:
            return self.protocols[protocol]
        for pattern, spec in self.protocols.items():
            if fnmatch.fnmatchcase(protocol, pattern):
                return spec
        return {}

    def canonical(self, metric: str) -> str:
        """The schema's name for a stored metric name: as is, via aliases, or case-insensitively."""
        if metric in self.metrics:
            return metric
        if metric in self.aliases:
            return self.aliases[metric]
        return self._lowercase.get(metric.lower(), metric)

    def info(self, metric: str, protocol: str | None = None) -> MetricInfo:
        key = (metric, protocol)
        if key not in self._cache:
            # "AMOTA/car" -> AMOTA's metadata, shown as "AMOTA car".
            base, _, qualifier = metric.partition("/")
            name = self.canonical(base)
            meta = dict(self.metrics.get(name, {}))
            meta.update((self._protocol_entry(protocol).get("overrides") or {}).get(name, {}))
            display = str(meta.get("display", base)) + (f" {qualifier}" if qualifier else "")
            unit = meta.get("unit", "number")
            unit_meta = self.units.get(unit, {"scale": 1, "decimals": 3, "label": ""})
            self._cache[key] = MetricInfo(
                name=metric,
                display=display,
                higher_is_better=meta.get("higher_is_better"),
                unit=unit,
                scale=float(unit_meta.get("scale", 1)),
                decimals=int(unit_meta.get("decimals", 3)),
                unit_label=str(unit_meta.get("label", "")),
            )
        return self._cache[key]

    def protocol(self, protocol: str) -> ProtocolSpec:
        entry = self._protocol_entry(protocol)
        return ProtocolSpec(
            name=protocol,
            title=str(entry.get("title", protocol)),
            headline=entry.get("headline"),
            metrics=tuple(entry.get("metrics", ())),
        )

    def metric_order(self, protocol: str, present: list[str] | set[str]) -> list[str]:
        """The metrics present, in the protocol's order (headline first), then the rest alphabetically."""
        spec = self.protocol(protocol)
        by_name: dict[str, str] = {}
        for stored in sorted(present):
            if "/" not in stored:
                by_name.setdefault(self.canonical(stored), stored)
        wanted = ((spec.headline,) if spec.headline else ()) + spec.metrics
        ordered = list(dict.fromkeys(by_name[m] for m in wanted if m in by_name))
        return ordered + sorted(set(present) - set(ordered))
