"""The neural Kalman filter's learnable parts: the association network and the noise of the motion model.

- :class:`AssociationNet`: an MLP on the pairwise features (:mod:`.features`) gives the association logit of
  every (track, detection) pair; the dustbin logits are affine in the detection's score (birth or false
  positive: low scores are rarely tracked objects) and a constant (a track not observed).
- The motion model is linear-Gaussian and constant-velocity on ``(cx, cy, w, h)`` in image heights; its
  process and measurement noise standard deviations are learnable and proportional to the track's height
  (a near pedestrian's box moves more pixels per frame than a far one's), as ByteTrack's filter scales them.
- The appearance of a detection given its track is Gaussian around the track's running appearance, with a
  learnable spread; a newborn's appearance follows the training detections' distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from methods.nkf_em.features import APPEARANCE_DIM, NUM_FEATURES, pair_features, pair_mahalanobis


@dataclass(frozen=True)
class Frame:
    """One frame's detections: measurements ``z`` (M, 4), appearance ``app`` (M, 6), ``score`` (M,) and, for
    the supervised twin only, ``gid`` (M,) the ground-truth identity matched to each detection (-1: none)."""

    z: torch.Tensor
    app: torch.Tensor
    score: torch.Tensor
    gid: torch.Tensor | None = None


def cv_matrices(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Constant-velocity ``F`` (8 x 8) and ``H`` (4 x 8) on (cx, cy, w, h, and their velocities)."""
    F = torch.eye(8, dtype=dtype)
    F[:4, 4:] = torch.eye(4, dtype=dtype)
    return F, torch.eye(4, 8, dtype=dtype)


class AssociationNet(nn.Module):
    """Association logits with dustbins, plus the learnable noise of the motion and appearance models."""

    def __init__(self, hidden: int = 32, use_appearance: bool = True, generative_prior: bool = False,
                 p_detect: float = 0.9) -> None:
        super().__init__()
        self.use_appearance = use_appearance
        # With the prior, a pair's logit is the generative model's own log posterior odds (detection
        # probability x motion density x appearance density, against the newborn density and a miss) plus the
        # network's learned correction, as a JPDA tracker would score it; without, the network alone.
        self.generative_prior = generative_prior
        self.p_detect = p_detect
        self.mlp = nn.Sequential(nn.Linear(NUM_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))
        self.birth = nn.Parameter(torch.tensor([0.0, -1.0]))  # birth logit = a + b * score
        self.miss = nn.Parameter(torch.tensor(0.0))
        # log std of position, size, velocity, size velocity (process) and position, size (measurement), in
        # track heights per frame; started near ByteTrack's 1/20 (measurement) and 1/160 (velocity).
        self.log_q = nn.Parameter(torch.log(torch.tensor([0.02, 0.02, 0.02, 0.01])))
        self.log_r = nn.Parameter(torch.log(torch.tensor([0.05, 0.08])))
        self.log_app = nn.Parameter(torch.tensor(math.log(0.05)))
        # The newborn appearance density (fitted once to the training detections; not learned by gradient).
        self.register_buffer("app_mean", torch.full((APPEARANCE_DIM,), 0.5))
        self.register_buffer("app_std", torch.full((APPEARANCE_DIM,), 0.25))
        self.register_buffer("aspect", torch.tensor(16 / 9))  # image width / height (newborn box density)

    def birth_box_loglik(self) -> torch.Tensor:
        """Newborn box density: uniform over the image centre (aspect x 1) and size (0.5 x 1 image heights)."""
        return -torch.log(0.5 * self.aspect)

    # ---- the linear-Gaussian motion model -------------------------------------------------------
    def process_noise(self, h: torch.Tensor) -> torch.Tensor:
        q = torch.exp(self.log_q)
        std = torch.stack([q[0], q[0], q[1], q[1], q[2], q[2], q[3], q[3]])
        return torch.diag_embed((std[None, :] * h[:, None]) ** 2)

    def measurement_noise(self, h: torch.Tensor) -> torch.Tensor:
        r = torch.exp(self.log_r)
        std = torch.stack([r[0], r[0], r[1], r[1]])
        return torch.diag_embed((std[None, :] * h[:, None]) ** 2)

    def prior(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """State and covariance of tracks born from measurements ``z`` (M, 4): at rest, uncertain velocity."""
        h = z[:, 3].detach()
        x = torch.cat([z, torch.zeros_like(z)], 1)
        r = torch.exp(self.log_r)
        std = torch.stack([r[0], r[0], r[1], r[1]]).expand(len(z), 4) * 2
        vel = z.new_tensor([0.1, 0.1, 0.02, 0.02]).expand(len(z), 4)
        P = torch.diag_embed((torch.cat([std, vel], 1) * h[:, None]) ** 2)
        return x, P

    # ---- association ------------------------------------------------------------------------------
    def app_loglik(self, app_track: torch.Tensor, app_det: torch.Tensor) -> torch.Tensor:
        """``log N(a_j; a_i, s^2 I)`` for every pair (N, M); 0 with appearance off."""
        if not self.use_appearance:
            return app_track.new_zeros(len(app_track), len(app_det))
        d2 = ((app_track[:, None, :] - app_det[None, :, :]) ** 2).sum(-1)
        var = torch.exp(2 * self.log_app)
        return -0.5 * (d2 / var + APPEARANCE_DIM * torch.log(2 * math.pi * var))

    def birth_app_loglik(self, app_det: torch.Tensor) -> torch.Tensor:
        if not self.use_appearance:
            return app_det.new_zeros(len(app_det))
        r = (app_det - self.app_mean) / self.app_std
        return -0.5 * (r ** 2 + torch.log(2 * math.pi * self.app_std ** 2)).sum(-1)

    def logits(self, zhat: torch.Tensor, S: torch.Tensor, app_track: torch.Tensor, frame: Frame
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scores (N, M), miss logits (N,), birth logits (M,), squared Mahalanobis distances and log det(2 pi S)."""
        d2, logdet = pair_mahalanobis(zhat, S, frame.z)
        feats = pair_features(zhat, S, frame.z, d2, app_track, frame.app, frame.score, self.use_appearance)
        scores = self.mlp(feats).squeeze(-1)
        miss = self.miss.expand(len(zhat))
        birth = self.birth[0] + self.birth[1] * frame.score
        if self.generative_prior:
            scores = scores + math.log(self.p_detect) - 0.5 * (d2 + logdet[:, None]) + self.app_loglik(app_track,
                                                                                                     frame.app)
            miss = miss + math.log(1 - self.p_detect)
            birth = birth + self.birth_box_loglik() + self.birth_app_loglik(frame.app)
        return scores, miss, birth, d2, logdet
