"""The process a job runs in: its device, its seeds, its peak memory."""

from __future__ import annotations

import os
import random
import resource
import sys
from pathlib import Path

import numpy as np


def _nvidia_present() -> bool:
    # Checking the driver's device nodes first spares a CPU-only machine the seconds of importing torch.
    return any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl", "/proc/driver/nvidia"))


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; explicit choices are checked."""
    if device == "cpu" or (device == "auto" and not _nvidia_present()):
        return "cpu"
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if device.startswith("cuda") and not has_cuda:
        raise RuntimeError(f"--device {device}: torch sees no CUDA GPU (install the CUDA build of torch)")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise RuntimeError(f"--device {device}: expected auto, cpu or cuda[:N]")
    return device


def seed_everything(seed: int, deterministic: bool) -> dict[str, bool]:
    """Seed python, numpy and torch separately; optionally force deterministic torch kernels.

    torch is seeded only when it is already imported (method modules that use it import it at the
    top, and the registry imported them while planning): importing torch costs seconds, which a
    numpy-only method should not pay. The returned flags go into the run's manifest.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        # Setting the flag imports torch's compiler stack (seconds): only touch it when it changes.
        if torch.are_deterministic_algorithms_enabled() != bool(deterministic):
            torch.use_deterministic_algorithms(bool(deterministic), warn_only=True)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return {"python": True, "numpy": True, "torch": torch is not None, "deterministic": bool(deterministic)}


def peak_memory_mb() -> float:
    """Peak resident memory of this (worker) process: ru_maxrss is KiB on Linux."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
