"""Registry of evaluation protocols: name -> "module:callable", imported lazily.

Each callable has the signature ``(gt, pred, *, sequences=None, **options) -> MetricResult``.
Other metric modules register themselves by adding one line here.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

PROTOCOLS: dict[str, str] = {
    "kitti-2d": "bench.metrics.clear:evaluate_kitti_2d",
    "3d-iou": "bench.metrics.clear:evaluate_3d_iou",
    "bev-center": "bench.metrics.clear:evaluate_bev_center",
    "mot17": "bench.metrics.clear:evaluate_mot17",
    "pseudolabel": "bench.metrics.pseudolabel:evaluate_protocol",
}


def get_protocol(name: str) -> Callable[..., Any]:
    """Return the evaluation callable for ``name``; unknown names get a did-you-mean hint."""
    if name not in PROTOCOLS:
        close = difflib.get_close_matches(name, PROTOCOLS, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown protocol {name!r}.{hint} Known: {', '.join(sorted(PROTOCOLS))}")
    module, attribute = PROTOCOLS[name].split(":")
    return getattr(importlib.import_module(module), attribute)
