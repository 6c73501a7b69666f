"""Stage 1 of BA²-Det, complete -> partial: G_theta, a PointNet that predicts an object's full box from its points.

Paper 002, Sec. 3.2 and A.3.5: clusters whose fitted box is between sigma_0 = 3 m and sigma_1 = 10 m long count as
well reconstructed ("complete"); G_theta learns on them to predict the full box from partial point sets, made by
cutting regions off the complete clusters, and then predicts the box of every cluster.

Our reading, at our scale:

- Input: the cluster's points, centred on its initial (fitted) box and rotated into that box's frame, so the
  network sees every object in one canonical pose; ``num_points`` points drawn with replacement (seeded).
- Output: the box centre offset in that frame and the log of (length, width, height). The heading stays the
  orientation search's (the paper's G_theta also predicts r_y; we keep the fit's, which is already searched).
- Partial views: a random half-space cut through a random point of the cluster removes 30-70 % of its points;
  the initial box is fitted again to what is left (as at inference), and the target is the complete cluster's
  box expressed in that partial box's frame.
- Loss: smooth L1 (the paper's L_reg), Adam, a fixed number of steps (no clock), a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from methods.ba2det.bev_box import WorldBox, fit_box


@dataclass(frozen=True)
class CompletionConfig:
    min_length: float = 3.0  # sigma_0 (m)
    max_length: float = 10.0  # sigma_1 (m)
    min_complete: int = 3  # fewer complete clusters than this: stage 1 is skipped (nothing to learn from)
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    num_points: int = 64
    seed: int = 0


class GTheta(nn.Module):
    """PointNet: a shared per-point MLP, max-pooling, and a head to (dx, dy, dz, log l, log w, log h)."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.point = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 2 * width), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(), nn.Linear(width, 6))

    def forward(self, points: torch.Tensor) -> torch.Tensor:  # (B, N, 3) -> (B, 6)
        return self.head(self.point(points).max(dim=1).values)


def canonical(points: np.ndarray, box: WorldBox) -> np.ndarray:
    """World points in the frame of ``box``: centred on it, x along its heading, z up."""
    c, s = np.cos(box.heading), np.sin(box.heading)
    d = points - box.centre
    return np.stack([d[:, 0] * c + d[:, 1] * s, -d[:, 0] * s + d[:, 1] * c, d[:, 2]], axis=1)


def target(full: WorldBox, partial: WorldBox) -> np.ndarray:
    """``full`` box in ``partial``'s frame: (dx, dy, dz, log l, log w, log h)."""
    offset = canonical(full.centre[None], partial)[0]
    return np.concatenate([offset, np.log(np.maximum([full.length, full.width, full.height], 1e-2))])


def apply(prediction: np.ndarray, box: WorldBox) -> WorldBox:
    """The box that ``prediction`` (in ``box``'s frame) describes, in the world."""
    c, s = np.cos(box.heading), np.sin(box.heading)
    dx, dy, dz = prediction[:3]
    centre = box.centre + np.array([dx * c - dy * s, dx * s + dy * c, dz])
    length, width, height = np.exp(prediction[3:6])
    return WorldBox(centre=centre, length=float(length), width=float(width), height=float(height),
                    heading=box.heading)


def _sample(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return points[rng.integers(0, len(points), n)]


def _cut(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A partial view: the points on one side of a random vertical plane through a random point, 30-70 % kept."""
    for _ in range(10):
        angle = rng.uniform(0, 2 * np.pi)
        normal = np.array([np.cos(angle), np.sin(angle)])
        pivot = points[rng.integers(len(points)), :2]
        keep = (points[:, :2] - pivot) @ normal > 0
        if 0.3 <= keep.mean() <= 0.7 and keep.sum() >= 3:
            return points[keep]
    return points


def is_complete(box: WorldBox, config: CompletionConfig) -> bool:
    return config.min_length <= box.length <= config.max_length


def train_gtheta(clusters: list[np.ndarray], config: CompletionConfig) -> tuple[GTheta, list[float]]:
    """Train G_theta on complete clusters (world points each) with partial views cut from them; returns the
    network and the loss of every step."""
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    boxes = [fit_box(c) for c in clusters]
    model = GTheta()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    losses = []
    for _ in range(config.steps):
        inputs, targets = [], []
        for _ in range(config.batch_size):
            i = int(rng.integers(len(clusters)))
            partial = _cut(clusters[i], rng) if rng.random() < 0.8 else clusters[i]  # some complete views too
            pbox = fit_box(partial)
            inputs.append(_sample(canonical(partial, pbox), config.num_points, rng))
            targets.append(target(boxes[i], pbox))
        x = torch.as_tensor(np.stack(inputs), dtype=torch.float32)
        y = torch.as_tensor(np.stack(targets), dtype=torch.float32)
        loss = nn.functional.smooth_l1_loss(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return model, losses


@torch.no_grad()
def refine(model: GTheta, points: np.ndarray, box: WorldBox, num_points: int = 64, seed: int = 0) -> WorldBox:
    """G_theta's full box for one cluster with initial box ``box``."""
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(_sample(canonical(points, box), num_points, rng)[None], dtype=torch.float32)
    return apply(model(x)[0].numpy().astype(np.float64), box)
