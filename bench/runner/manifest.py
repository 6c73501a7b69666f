"""What a run was made with: git commit and dirty flag, package versions, python, device, host and CPU."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("bench", "numpy", "pandas", "scipy", "torch", "trackeval", "motmetrics", "pyarrow")


@functools.cache
def git_state(repo: Path | None = None) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout bench runs from.

    Only a checkout whose top is ``repo`` counts: an installed bench sits in site-packages, often inside some
    other git work tree (a project's .venv), whose commit says nothing about bench's code; then both are None.
    """
    repo = (repo or Path(__file__).resolve().parents[2]).resolve()
    try:
        top = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        if Path(top).resolve() != repo:
            return {"commit": None, "dirty": None}
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        # Untracked files do not change what runs; modified tracked files do.
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return {"commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


@functools.cache
def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


@functools.cache
def cpu_info() -> dict[str, str]:
    """The CPU's model name and the SIMD level torch dispatches to.

    Why: float results of a trained network differ between CPUs (other SIMD kernels sum in another order), and
    2000 training steps turn that rounding into a different model: the same seed scored 0.404 kitti-2d MOTA on an
    AMD EPYC and 0.354 on an Intel Xeon (docs/benchmarks.md). A run must say which CPU it ran on.
    """
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    info = {"model": model}
    try:
        import torch

        info["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    except (ImportError, AttributeError):
        pass
    return info


def device_info(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"device": device}
    if device.startswith("cuda"):
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def collect_manifest(device: str, deterministic: bool) -> dict[str, Any]:
    return {
        "git": git_state(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": cpu_info(),
        "pid": os.getpid(),
        "deterministic": deterministic,
        **device_info(device),
    }
