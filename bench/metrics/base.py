"""The metric contract: every protocol returns a :class:`MetricResult` (scoring by name: :mod:`.protocols`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

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


class TrackEvalMetric:
    """One TrackEval metric class behind bench's per-sequence-then-combine contract.

    Subclasses set ``_metric`` (the TrackEval instance) and say in ``summary`` which of its fields
    bench reports under which name.
    """

    _metric: Any

    def eval_sequence(self, data: dict[str, Any]) -> dict[str, Any]:
        """TrackEval's raw per-sequence result for one TrackEval data dict."""
        return self._metric.eval_sequence(data)

    def combine(self, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Combine per-sequence (or per-class) results by summing counts and recomputing ratios."""
        return self._metric.combine_sequences(results)

    def summary(self, result: dict[str, Any]) -> dict[str, float]:
        raise NotImplementedError
