"""Inference speed: warm-up, device synchronisation, median of timed repeats, device name recorded."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class FpsResult:
    fps_median: float  # inputs per second, from the median repeat
    times: list[float]  # seconds per repeat (each repeat runs fn over all inputs)
    device_name: str
    n_inputs: int = 0


def device_name(device: str) -> str:
    """A human-readable name of the device that ran the timing (GPU model or CPU)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine() or "cpu"


def _synchronize(device: str) -> None:
    # CUDA kernels run asynchronously; without a sync the clock stops before the work is done.
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(torch.device(device))


def measure_fps(fn: Callable[[Any], Any], inputs: Sequence[Any], warmup: int = 3, repeats: int = 10,
                device: str = "cpu") -> FpsResult:
    """Call ``fn`` on every input ``repeats`` times after ``warmup`` untimed passes; FPS of the median pass."""
    if not len(inputs):
        raise ValueError("measure_fps needs at least one input")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        for x in inputs:
            fn(x)
    _synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for x in inputs:
            fn(x)
        _synchronize(device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    fps = len(inputs) / median if median > 0 else float("inf")
    return FpsResult(fps_median=fps, times=times, device_name=device_name(device), n_inputs=len(inputs))
