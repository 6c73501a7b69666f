"""The protocols registry: name -> the callable that scores a prediction, imported lazily.

Each callable has the signature ``(gt, pred, *, sequences=None, **options) -> MetricResult``. A metric
module adds its protocol with one line in :data:`PROTOCOLS`' built-in table, or a package through the
``bench.protocols`` entry-point group; :func:`evaluate` scores by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.data.sequence import Sequence
from bench.metrics.base import MetricResult
from bench.registry import Registry


def _check_protocol(obj: Any) -> None:
    if not callable(obj):
        raise TypeError(f"{obj!r} is not callable: a protocol is a function (gt, pred, *, sequences, **options)")


PROTOCOLS: Registry[Callable[..., MetricResult]] = Registry("protocol", {
    "kitti-2d": "bench.metrics.kitti:evaluate_kitti_2d",
    "kitti-2d-scaled": "bench.metrics.kitti:evaluate_kitti_2d_scaled",
    "2d-iou": "bench.metrics.tracking:evaluate_2d_iou",
    "3d-iou": "bench.metrics.tracking:evaluate_3d_iou",
    "bev-center": "bench.metrics.tracking:evaluate_bev_center",
    "mot17": "bench.metrics.mot17:evaluate_mot17",
    "pseudolabel": "bench.metrics.pseudolabel:evaluate_protocol",
    "nuscenes": "bench.metrics.nuscenes_tracking:evaluate_protocol",
    "nuscenes-fixed-interp": "bench.metrics.nuscenes_tracking:evaluate_protocol_fixed_interp",
    "waymo-let": "bench.metrics.let_ap:evaluate_protocol",
    "tapvid3d": "bench.metrics.tapvid3d:evaluate_protocol",
    "depth-error": "bench.metrics.depth_error:evaluate_protocol",
    "conf-calibration": "bench.metrics.calibration:evaluate_protocol",
}, group="bench.protocols", check=_check_protocol)


def get_protocol(name: str) -> Callable[..., MetricResult]:
    """The evaluation callable for ``name``; an unknown name raises RegistryError (a KeyError) with a hint."""
    return PROTOCOLS.get(name)


def evaluate(protocol: str, gt: Any, pred: Any, *, sequences: dict[str, Sequence] | None = None,
             **options: Any) -> MetricResult:
    """Score ``pred`` against ``gt`` (track tables, or point tracks for tapvid3d) under the named protocol."""
    return get_protocol(protocol)(gt, pred, sequences=sequences, **options)


__all__ = ["PROTOCOLS", "evaluate", "get_protocol"]
