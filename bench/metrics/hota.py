"""HOTA (DetA, AssA, LocA, DetRe/Pr, AssRe/Pr) through TrackEval's ``HOTA`` class."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from trackeval.metrics import HOTA

from bench.metrics.base import TrackEvalMetric


class HotaMetric(TrackEvalMetric):
    """HOTA over the 19 thresholds alpha = 0.05..0.95; the summary is the mean over alpha, as TrackEval reports it."""

    FIELDS: ClassVar[tuple[str, ...]] = ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")
    ALPHAS: np.ndarray = np.arange(0.05, 0.99, 0.05)

    def __init__(self) -> None:
        self._metric = HOTA({"PRINT_CONFIG": False})

    def summary(self, result: dict[str, Any]) -> dict[str, float]:
        out = {name: float(np.mean(result[name])) for name in self.FIELDS}
        # Means over no matches are undefined. TrackEval fills them with placeholders (LocA 1e-10/1e-10 = 1,
        # i.e. "LocA 100 %" for a tracker that predicted nothing; AssA/AssRe/AssPr 0): report NaN ("-") instead.
        if np.sum(result["HOTA_TP"]) == 0:
            out.update(LocA=float("nan"), AssA=float("nan"), AssRe=float("nan"), AssPr=float("nan"))
        if np.sum(result["HOTA_TP"]) + np.sum(result["HOTA_FP"]) == 0:  # precision of no predictions
            out["DetPr"] = float("nan")
        return out
