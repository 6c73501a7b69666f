"""EM by gradient: the negative marginal log-likelihood of the detections under soft assignments.

One training step takes a window of T consecutive frames of public detections and runs a *soft* tracker
over it, differentiably:

1. frame 0: every detection starts a track (state at rest, :meth:`AssociationNet.prior`);
2. frame t: the tracks are Kalman-predicted; the network scores every (track, detection) pair and Sinkhorn
   with dustbins turns the scores into assignment probabilities ``W`` (a detection's column: which track
   produced it, or a birth; a track's row: which detection it produced, or none);
3. each track is updated with the ``W``-weighted mean of the detections and a measurement noise divided by
   its probability of being observed; a detection's birth probability starts a new track with that
   existence; tracks whose existence (decayed by misses) falls under ``prune`` are dropped: the number of
   objects is not fixed;
4. (E-step) the RTS smoother runs backwards over every track's life in the window;
5. (M-step) the loss is the negative evidence lower bound of the detections: for every detection, the
   expected log density under its soft assignment (the smoothed track's Gaussian and the appearance model,
   or the newborn density), the detection probability of observed and missed tracks, plus the entropy of
   the assignment. Its minimum over ``W`` is the negative marginal log-likelihood, reached when ``W`` is
   the posterior, so the network learns to predict the posterior of the association: no identity label
   is used anywhere. With ``smoother=False`` (the ablation) the box term is the filter's prediction-error
   density, the exact marginal likelihood of the filter.

The supervised twin runs the same network and filter on the same windows but updates with the identity
labels' assignment and trains the scores by cross-entropy against it (its noise by the same likelihood).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from methods.nkf_em.features import pair_mahalanobis
from methods.nkf_em.kalman import innovation, predict, rts_step, update
from methods.nkf_em.model import AssociationNet, Frame, cv_matrices
from methods.nkf_em.sinkhorn import bordered, log_sinkhorn


@dataclass(frozen=True)
class EMConfig:
    sinkhorn_iters: int = 20
    smoother: bool = True
    p_detect: float = 0.9  # probability that an existing track is detected in a frame
    p_survive: float = 0.7  # existence kept per missed frame
    birth_min: float = 0.1  # detections less likely than this to be births start no track
    prune: float = 0.1  # tracks with existence under this are dropped
    app_rate: float = 0.5  # weight of a new observation in a track's running appearance


def _targets(gid_tracks: torch.Tensor, gid_dets: torch.Tensor) -> torch.Tensor:
    """The identity labels' assignment as a bordered 0/1 matrix (N+1, M+1)."""
    n, m = len(gid_tracks), len(gid_dets)
    A = torch.zeros(n + 1, m + 1, dtype=torch.float64)
    same = (gid_tracks[:, None] == gid_dets[None, :]) & (gid_tracks[:, None] >= 0)
    A[:n, :m] = same.to(torch.float64)
    A[:n, m] = 1.0 - A[:n, :m].sum(1)
    A[n, :m] = 1.0 - A[:n, :m].sum(0)
    return A


def window_loss(net: AssociationNet, frames: list[Frame], cfg: EMConfig, supervised: bool = False
                ) -> tuple[torch.Tensor, int]:
    """The summed loss of one window and the number of detections it scores (frames 1..T-1)."""
    F, H = cv_matrices(torch.float64)
    first = frames[0]
    x, P = net.prior(first.z)
    app = first.app.clone()
    exist = torch.ones(len(first.z), dtype=torch.float64)
    gid = first.gid.clone() if supervised and first.gid is not None else torch.full((len(first.z),), -1)
    filtered: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (x, P, kept indices) per frame
    steps: list[dict] = []
    log_birth_box = net.birth_box_loglik()
    for t in range(1, len(frames)):
        frame = frames[t]
        n, m = len(x), len(frame.z)
        h = x[:, 3].clamp(min=1e-3)  # noise scales with the estimated height (differentiated too)
        xp, Pp = predict(x, P, F, net.process_noise(h))
        R = net.measurement_noise(h)
        zhat, S = innovation(xp, Pp, H, R)
        if n and m:
            scores, miss, birth, d2, logdet = net.logits(zhat, S, app, frame)
            log_p = log_sinkhorn(bordered(scores, miss, birth), cfg.sinkhorn_iters)
        else:
            log_p = torch.zeros(n + 1, m + 1, dtype=torch.float64)
            d2, logdet = torch.zeros(n, m, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
        if supervised:
            assert frame.gid is not None
            W = _targets(gid, frame.gid)
        else:
            W = torch.exp(log_p)
        observed = W[:n, :m].sum(1)
        steps.append({"n": n, "W": W, "log_p": log_p, "zhat": zhat, "S": S, "R": R, "d2": d2, "logdet": logdet,
                      "app": app, "xp": xp, "Pp": Pp, "frame": frame, "log_birth_box": log_birth_box})
        z_mean = (W[:n, :m] @ frame.z) / observed.clamp(min=1e-6)[:, None]
        x, P = update(xp, Pp, z_mean, H, R / observed.clamp(min=1e-3)[:, None, None])
        app = app + cfg.app_rate * (W[:n, :m] @ frame.app - observed[:, None] * app)
        exist = (observed + (1 - observed) * exist * cfg.p_survive).detach()
        births = W[n, :m].detach()
        born = births > (0.5 if supervised else cfg.birth_min)
        xb, Pb = net.prior(frame.z[born])
        x, P = torch.cat([x, xb]), torch.cat([P, Pb])
        app = torch.cat([app, frame.app[born]])
        exist = torch.cat([exist, births[born]])
        born_gid = frame.gid[born] if supervised and frame.gid is not None else torch.full((int(born.sum()),), -1)
        gid = torch.cat([gid, born_gid])
        keep = torch.nonzero(exist >= cfg.prune).squeeze(1)
        filtered.append((x, P, keep))
        x, P, app, exist, gid = x[keep], P[keep], app[keep], exist[keep], gid[keep]

    # E-step: RTS smoothing backwards over each track's life (the first len(keep) tracks of frame t+1 are
    # the kept tracks of frame t, in order; tracks that end at t keep their filtered state).
    smoothed: list[tuple[torch.Tensor, torch.Tensor]] = [(filtered[-1][0], filtered[-1][1])] if filtered else []
    if cfg.smoother:
        for k in range(len(filtered) - 2, -1, -1):
            xf, Pf, keep = filtered[k]
            nxt = steps[k + 1]
            xs_next, Ps_next = smoothed[0]
            q = len(keep)
            if q:
                xs_k, Ps_k = rts_step(xf[keep], Pf[keep], nxt["xp"], nxt["Pp"], xs_next[:q], Ps_next[:q], F)
                xf, Pf = xf.index_copy(0, keep, xs_k), Pf.index_copy(0, keep, Ps_k)
            smoothed.insert(0, (xf, Pf))

    loss = torch.zeros((), dtype=torch.float64)
    count = 0
    log_pd, log_miss = math.log(cfg.p_detect), math.log(1 - cfg.p_detect)
    for k, st in enumerate(steps):
        n, frame, W, log_p = st["n"], st["frame"], st["W"], st["log_p"]
        m = len(frame.z)
        count += m
        if m == 0:
            continue
        if n and cfg.smoother:
            # The smoothed state of each associated track at this frame (before any birth of this frame).
            xs, Ps = smoothed[k][0][:n], smoothed[k][1][:n]
            zs, Ss = innovation(xs, Ps, H, st["R"])
            d2, logdet = pair_mahalanobis(zs, Ss, frame.z)
        else:
            d2, logdet = st["d2"], st["logdet"]
        box_ll = -0.5 * (d2 + logdet[:, None]) if n else torch.zeros(0, m, dtype=torch.float64)
        app_ll = net.app_loglik(st["app"], frame.app)
        birth_ll = st["log_birth_box"] + net.birth_app_loglik(frame.app)
        if supervised:
            # Cross-entropy of the network's assignment against the labels' one, plus the motion and appearance
            # likelihood of the labelled assignment (it fits the noise the way the unsupervised loss does).
            loss = loss - (W * log_p).sum() - (W[:n, :m] * (box_ll + app_ll)).sum()
        else:
            elbo = ((W[:n, :m] * (box_ll + app_ll + log_pd)).sum() + (W[n, :m] * birth_ll).sum()
                    + (W[:n, m] * log_miss).sum() - (W[:, :m] * log_p[:, :m]).sum())
            loss = loss - elbo
    return loss, count


def train(net: AssociationNet, sequences: list[list[Frame]], *, steps: int, window: int, lr: float, seed: int,
          cfg: EMConfig, supervised: bool = False,
          progress: Callable[[int, int, str], None] | None = None) -> list[float]:
    """Adam on random windows (seeded) for ``steps`` steps; returns the per-detection loss of each step."""
    usable = [s for s in sequences if len(s) >= 2]
    if not usable:
        raise ValueError("nkf-em needs at least one training video of 2 or more frames with detections")
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    history: list[float] = []
    for step in range(steps):
        seq = usable[int(rng.integers(len(usable)))]
        start = int(rng.integers(max(1, len(seq) - window + 1)))
        loss, count = window_loss(net, seq[start:start + window], cfg, supervised)
        if count:
            opt.zero_grad()
            (loss / count).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            history.append(float(loss.detach()) / count)
        if progress is not None:
            progress(step + 1, steps, "nkf-em EM" if not supervised else "nkf-em supervised")
    return history
