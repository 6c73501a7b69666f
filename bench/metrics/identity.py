"""Identity metrics (IDF1, IDP, IDR) through TrackEval's ``Identity`` class."""

from __future__ import annotations

from typing import Any, ClassVar

from trackeval.metrics import Identity

from bench.metrics.base import TrackEvalMetric


class IdentityMetric(TrackEvalMetric):
    """Global ID assignment per sequence; combine sums IDTP/IDFP/IDFN. ``threshold``: similarity >= threshold."""

    FIELDS: ClassVar[dict[str, str]] = {"IDF1": "IDF1", "IDP": "IDP", "IDR": "IDR", "IDTP": "IDTP", "IDFP": "IDFP",
                              "IDFN": "IDFN"}

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._metric = Identity({"THRESHOLD": threshold, "PRINT_CONFIG": False})

    def summary(self, result: dict[str, Any]) -> dict[str, float]:
        out = {name: float(result[field]) for name, field in self.FIELDS.items()}
        if result["IDTP"] + result["IDFP"] == 0:  # precision of no predictions: undefined, not TrackEval's 0
            out["IDP"] = float("nan")
        return out
