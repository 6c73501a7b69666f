"""What the small detectors' training loops share (centernet, fcos3d): the step budget, Adam with one lr drop, the
endless shuffled pass over the labelled frames, and one optimiser step. No clock decides anything here."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def step_budget(cfg: dict[str, Any], n_frames: int) -> int:
    """``cfg["steps"]``, or ``cfg["epochs"]`` passes over ``n_frames`` labelled frames in batches."""
    if cfg.get("steps"):
        return int(cfg["steps"])
    return math.ceil(float(cfg["epochs"]) * n_frames / int(cfg["batch_size"]))


def adam_with_drop(model: torch.nn.Module, cfg: dict[str, Any], steps: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Adam at ``cfg["lr"]``, dropped x0.1 after ``cfg["lr_step"]`` of the steps (CenterNet's schedule)."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    return opt, torch.optim.lr_scheduler.MultiStepLR(opt, [max(1, int(steps * cfg["lr_step"]))], gamma=0.1)


def shuffled_forever(rng: np.random.Generator, n: int) -> Iterator[int]:
    """Indices 0..n-1 in a fresh random order each pass, without end. The permutations are drawn from ``rng`` only
    when a pass starts, so the draws interleave with the caller's own (flips) as a hand-written loop's would."""
    while True:
        yield from (int(i) for i in rng.permutation(n))


def optimiser_step(loss: torch.Tensor, model: torch.nn.Module, opt: torch.optim.Optimizer,
                   sched: torch.optim.lr_scheduler.LRScheduler, clip: float = 35.0) -> None:
    """Backward, gradient clipping (CenterNet's 35), one optimiser and one scheduler step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    sched.step()
