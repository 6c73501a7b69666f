"""CLEAR MOT (MOTA, MOTP, MODA, sMOTA, IDSW, Frag, MT/PT/ML) through TrackEval's ``CLEAR`` class."""

from __future__ import annotations

from typing import Any, ClassVar

from trackeval.metrics import CLEAR

from bench.metrics.base import TrackEvalMetric


class ClearMetric(TrackEvalMetric):
    """Per-sequence CLEAR MOT plus an explicit combine step, delegating the maths to TrackEval.

    ``threshold`` is the similarity a match needs (TrackEval compares with ``>= threshold - eps``).
    """

    # Our canonical name -> TrackEval's field name.
    FIELDS: ClassVar[dict[str, str]] = {
        "MOTA": "MOTA", "MOTP": "MOTP", "MODA": "MODA", "sMOTA": "sMOTA", "IDSW": "IDSW", "Frag": "Frag",
        "MT": "MT", "PT": "PT", "ML": "ML", "TP": "CLR_TP", "FP": "CLR_FP", "FN": "CLR_FN",
    }

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._metric = CLEAR({"THRESHOLD": threshold, "PRINT_CONFIG": False})

    def summary(self, result: dict[str, Any]) -> dict[str, float]:
        out = {name: float(result[field]) for name, field in self.FIELDS.items()}
        if result["CLR_TP"] == 0:  # a mean over no matches: TrackEval's 0/max(1, 0) placeholder is undefined, not 0
            out["MOTP"] = float("nan")
        return out
