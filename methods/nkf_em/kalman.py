"""Linear-Gaussian Kalman filter and Rauch-Tung-Striebel smoother in torch, batched and differentiable.

Every function works on a batch of independent systems (leading dimension B): states ``(B, n)``,
covariances ``(B, n, n)``, measurements ``(B, m)``; ``F``, ``H`` are shared ``(n, n)`` / ``(m, n)``
matrices and ``Q``, ``R`` may be per system ``(B, n, n)`` / ``(B, m, m)``. Gradients flow to every input,
so the marginal likelihood of the measurements can be maximised over the noise (and, through the
measurements' weights, over whatever produced them).
"""

from __future__ import annotations

import math

import torch


def predict(x: torch.Tensor, P: torch.Tensor, F: torch.Tensor, Q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Time update: ``x' = F x``, ``P' = F P F^T + Q``."""
    return x @ F.T, F @ P @ F.T + Q


def innovation(x: torch.Tensor, P: torch.Tensor, H: torch.Tensor, R: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted measurement ``H x`` and its covariance ``S = H P H^T + R``."""
    return x @ H.T, H @ P @ H.T + R


def update(x: torch.Tensor, P: torch.Tensor, z: torch.Tensor, H: torch.Tensor, R: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Measurement update with ``z`` (Joseph form, so the covariance stays symmetric positive definite)."""
    zhat, S = innovation(x, P, H, R)
    gain = torch.linalg.solve(S, H @ P).transpose(-1, -2)  # K = P H^T S^-1 (S, P symmetric)
    x = x + (gain @ (z - zhat).unsqueeze(-1)).squeeze(-1)
    eye = torch.eye(P.shape[-1], dtype=P.dtype, device=P.device)
    a = eye - gain @ H
    P = a @ P @ a.transpose(-1, -2) + gain @ R @ gain.transpose(-1, -2)
    return x, P


def gaussian_loglik(r: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """``log N(r; 0, S)`` for residuals ``(..., m)`` and covariances ``(..., m, m)``."""
    chol = torch.linalg.cholesky(S)
    sol = torch.cholesky_solve(r.unsqueeze(-1), chol).squeeze(-1)
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * ((r * sol).sum(-1) + logdet + r.shape[-1] * math.log(2 * math.pi))


def kalman_filter(z: torch.Tensor, F: torch.Tensor, H: torch.Tensor, Q: torch.Tensor, R: torch.Tensor,
                  x0: torch.Tensor, P0: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Filter ``z`` ``(B, T, m)`` from the prior ``x0, P0`` (the state before the first measurement).

    Returns filtered means ``(B, T, n)`` and covariances ``(B, T, n, n)``, predicted ones (the same shapes;
    the prediction at t=0 is the prior) and the log marginal likelihood ``log p(z_1..T)`` per system ``(B,)``
    (the prediction-error decomposition: a sum of innovation log densities).
    """
    xs, Ps, xps, Pps = [], [], [], []
    loglik = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    x, P = x0, P0
    for t in range(z.shape[1]):
        if t > 0:
            x, P = predict(x, P, F, Q)
        xps.append(x)
        Pps.append(P)
        zhat, S = innovation(x, P, H, R)
        loglik = loglik + gaussian_loglik(z[:, t] - zhat, S)
        x, P = update(x, P, z[:, t], H, R)
        xs.append(x)
        Ps.append(P)
    return (torch.stack(xs, 1), torch.stack(Ps, 1), torch.stack(xps, 1), torch.stack(Pps, 1), loglik)


def rts_step(xf: torch.Tensor, Pf: torch.Tensor, xp_next: torch.Tensor, Pp_next: torch.Tensor,
             xs_next: torch.Tensor, Ps_next: torch.Tensor, F: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One backward step: the smoothed state at t from the filtered one at t and the smoothed one at t+1."""
    gain = torch.linalg.solve(Pp_next, F @ Pf).transpose(-1, -2)  # G = Pf F^T Pp^-1
    x = xf + (gain @ (xs_next - xp_next).unsqueeze(-1)).squeeze(-1)
    P = Pf + gain @ (Ps_next - Pp_next) @ gain.transpose(-1, -2)
    return x, P


def rts_smoother(xf: torch.Tensor, Pf: torch.Tensor, xp: torch.Tensor, Pp: torch.Tensor, F: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Smoothed means and covariances from :func:`kalman_filter`'s outputs (``(B, T, ...)``)."""
    T = xf.shape[1]
    xs, Ps = [xf[:, -1]], [Pf[:, -1]]
    for t in range(T - 2, -1, -1):
        x, P = rts_step(xf[:, t], Pf[:, t], xp[:, t + 1], Pp[:, t + 1], xs[0], Ps[0], F)
        xs.insert(0, x)
        Ps.insert(0, P)
    return torch.stack(xs, 1), torch.stack(Ps, 1)
