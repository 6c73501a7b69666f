"""Sinkhorn normalisation with a dustbin row and column (births and deaths), in log space.

Scores ``(N, M)`` between N tracks and M detections are bordered by a dustbin column (track i is not
observed: missed or dead) and a dustbin row (detection j is explained by no track: a birth or a false
positive). Row i < N has mass 1, column j < M mass 1, the dustbin row mass M and the dustbin column mass N
(SuperGlue's optimal transport with a bin). After the iterations every real row and every real column of
``exp(log_p)`` sums to one: row i is the distribution of track i over {detections, missed}, column j that
of detection j over {tracks, birth}.
"""

from __future__ import annotations

import math

import torch


def bordered(scores: torch.Tensor, miss: torch.Tensor, birth: torch.Tensor) -> torch.Tensor:
    """``(N+1, M+1)`` logits: scores, the dustbin column ``miss`` (N,), the dustbin row ``birth`` (M,), a 0 corner."""
    n, m = scores.shape
    top = torch.cat([scores, miss.reshape(n, 1)], 1)
    bottom = torch.cat([birth.reshape(1, m), scores.new_zeros(1, 1)], 1)
    return torch.cat([top, bottom], 0)


def log_sinkhorn(logits: torch.Tensor, iters: int = 20) -> torch.Tensor:
    """Log assignment probabilities of a bordered ``(N+1, M+1)`` logit matrix (see the module docstring).

    ``iters=0`` replaces the transport by an independent softmax per detection column (the ablation "Sinkhorn
    off": no track may refuse two detections), with the dustbin column's rows normalised the same way.
    """
    n, m = logits.shape[0] - 1, logits.shape[1] - 1
    if n == 0 or m == 0:  # nothing to match: every detection is a birth, every track missed
        return logits.new_zeros(logits.shape)
    if iters == 0:
        cols = torch.log_softmax(logits[:, :m], dim=0)
        miss = torch.log_softmax(logits[:n], dim=1)[:, m:]
        return torch.cat([torch.cat([cols[:n], miss], 1), torch.cat([cols[n:], logits.new_zeros(1, 1)], 1)], 0)
    norm = -math.log(n + m)
    log_mu = torch.cat([logits.new_full((n,), norm), logits.new_full((1,), math.log(m) + norm)])
    log_nu = torch.cat([logits.new_full((m,), norm), logits.new_full((1,), math.log(n) + norm)])
    u = torch.zeros_like(log_mu)
    v = torch.zeros_like(log_nu)
    for _ in range(iters):
        u = log_mu - torch.logsumexp(logits + v[None, :], dim=1)
        v = log_nu - torch.logsumexp(logits + u[:, None], dim=0)
    # Scale back so that each real row and column is a probability distribution (total mass N + M).
    return logits + u[:, None] + v[None, :] - norm
