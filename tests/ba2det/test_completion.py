"""Stage 1 (G_theta): trained on complete clusters, it predicts full boxes from partial ones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_parts import car_surface  # noqa: E402

from methods.ba2det.bev_box import fit_box
from methods.ba2det.completion import CompletionConfig, _cut, refine, train_gtheta


def _cars(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [car_surface(centre=rng.uniform(-50, 50, 2), heading=float(rng.uniform(0, np.pi)),
                        length=float(rng.uniform(4.0, 5.0)), width=float(rng.uniform(1.7, 2.0)), step=0.2)
            for _ in range(n)]


def test_gtheta_loss_falls_and_completes_partial_cars():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    config = CompletionConfig(steps=150, batch_size=16, seed=0)
    model, losses = train_gtheta(_cars(8, rng), config)
    assert np.mean(losses[-15:]) < 0.5 * np.mean(losses[:15])
    # Unseen cars, cut in half: G_theta's length is closer to the truth than the tight fit of the partial points.
    fit_err, g_err = [], []
    for car in _cars(10, np.random.default_rng(1)):
        full = fit_box(car)
        partial = _cut(car, np.random.default_rng(2))
        box = fit_box(partial)
        fit_err.append(abs(box.length - full.length) + abs(box.width - full.width))
        out = refine(model, partial, box)
        g_err.append(abs(out.length - full.length) + abs(out.width - full.width))
    assert np.median(g_err) < np.median(fit_err)
