"""The metric contract.

A metric family is a :class:`Metric` in TrackEval's shape: ``eval_sequence`` turns one sequence into its own
result, ``combine_sequences`` combines the results of several sequences explicitly (summing counts and
recomputing ratios, or averaging, as the official tool does), and ``summary`` names the numbers reported.
A protocol (scoring by name: :mod:`.protocols`) runs one or more metrics and returns a :class:`MetricResult`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd


@dataclass
class MetricResult:
    """Scores of one protocol. Values are as the official tool reports them (fractions, not percent)."""

    protocol: str
    summary: dict[str, float]
    per_sequence: pd.DataFrame  # columns: seq, metric, value
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        return {
            "protocol": self.protocol,
            "summary": {k: _json_number(v) for k, v in self.summary.items()},
            "per_sequence": [
                {"seq": str(r.seq), "metric": str(r.metric), "value": _json_number(r.value)}
                for r in self.per_sequence.itertuples(index=False)
            ],
            "extras": _jsonable(self.extras),
        }


def per_sequence_frame(rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    """``{seq: {metric: value}}`` -> the long ``seq, metric, value`` table."""
    records = [(seq, name, float(value)) for seq, scores in rows.items() for name, value in scores.items()]
    return pd.DataFrame(records, columns=["seq", "metric", "value"]).astype({"seq": object, "metric": object})


def _json_number(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return _jsonable(value)
    return None if math.isnan(value) else value


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="records")
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


class Metric(ABC):
    """One metric family: per-sequence results in, combined numbers out (TrackEval's ``_BaseMetric`` shape).

    ``eval_sequence(...)`` takes whatever one sequence's inputs are for this family (a TrackEval data dict,
    a video's point tracks) and returns its result; ``combine_sequences({seq: result})`` combines them;
    ``summary(result)`` gives the reported numbers, whose names the class declares once in ``FIELDS``.
    Where the official tool's curves or thresholds need the whole split (nuScenes, Waymo), ``eval_sequence``
    does the truly per-sequence part and ``combine_sequences`` the rest. A family whose inputs come as one
    split-wide table may add ``eval_sequences(...) -> {seq: result}``, one vectorised pass that must equal
    ``eval_sequence`` on each sequence.
    """

    FIELDS: ClassVar[Mapping[str, str] | tuple[str, ...]] = ()

    @abstractmethod
    def eval_sequence(self, *inputs: Any) -> Any:
        """One sequence's result."""

    @abstractmethod
    def combine_sequences(self, results: dict[str, Any]) -> Any:
        """The results of several sequences (or classes) combined."""

    def summary(self, result: Any) -> dict[str, float]:
        return {str(k): float(v) for k, v in dict(result).items()}


class TrackEvalMetric(Metric):
    """One TrackEval metric class behind the :class:`Metric` contract.

    Subclasses set ``_metric`` (the TrackEval instance) and say in ``summary`` which of its fields
    bench reports under which name.
    """

    _metric: Any

    def eval_sequence(self, data: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        """TrackEval's raw per-sequence result for one TrackEval data dict."""
        return self._metric.eval_sequence(data)

    def combine_sequences(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Combine per-sequence (or per-class) results by summing counts and recomputing ratios."""
        return self._metric.combine_sequences(results)

    def summary(self, result: dict[str, Any]) -> dict[str, float]:
        raise NotImplementedError
