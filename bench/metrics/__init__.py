"""Tracking and pseudolabel metrics, computed by (or proven equal to) the official tools.

Use ``evaluate(protocol, gt, pred)``; ``PROTOCOLS`` lists the protocol names.
"""

from bench.metrics.base import MetricResult
from bench.metrics.protocols import PROTOCOLS, evaluate, get_protocol

__all__ = ["PROTOCOLS", "MetricResult", "evaluate", "get_protocol"]
