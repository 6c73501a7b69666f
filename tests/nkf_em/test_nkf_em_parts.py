"""nkf-em's parts against references: Sinkhorn marginals, Kalman filter + RTS smoother, likelihood gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.nkf_em.kalman import kalman_filter, rts_smoother
from methods.nkf_em.model import AssociationNet, Frame
from methods.nkf_em.sinkhorn import bordered, log_sinkhorn
from methods.nkf_em.train import EMConfig, window_loss


@pytest.mark.parametrize("n,m", [(1, 1), (3, 5), (7, 2), (12, 12)])
def test_sinkhorn_rows_and_columns_sum_to_one_with_dustbin(n: int, m: int) -> None:
    gen = torch.Generator().manual_seed(n * 100 + m)
    for _ in range(5):
        scores = torch.randn(n, m, generator=gen, dtype=torch.float64) * 3
        miss = torch.randn(n, generator=gen, dtype=torch.float64)
        birth = torch.randn(m, generator=gen, dtype=torch.float64)
        p = torch.exp(log_sinkhorn(bordered(scores, miss, birth), iters=2000))  # near-zero scores converge slowly
        assert p.shape == (n + 1, m + 1)
        np.testing.assert_allclose(p[:n].sum(1).numpy(), 1.0, atol=1e-6)  # track: a detection or missed
        np.testing.assert_allclose(p[:, :m].sum(0).numpy(), 1.0, atol=1e-9)  # detection: a track or a birth
        assert (p >= 0).all()
        # Sinkhorn off: still one distribution per detection column.
        q = torch.exp(log_sinkhorn(bordered(scores, miss, birth), iters=0))
        np.testing.assert_allclose(q[:, :m].sum(0).numpy(), 1.0, atol=1e-9)


def _numpy_filter_smoother(z, F, H, Q, R, x0, P0):
    """A direct textbook implementation (one system) to compare with the batched torch one."""
    T, n = len(z), len(x0)
    xf, Pf, xp, Pp = np.zeros((T, n)), np.zeros((T, n, n)), np.zeros((T, n)), np.zeros((T, n, n))
    x, P, loglik = x0, P0, 0.0
    for t in range(T):
        if t > 0:
            x, P = F @ x, F @ P @ F.T + Q
        xp[t], Pp[t] = x, P
        S = H @ P @ H.T + R
        r = z[t] - H @ x
        loglik += -0.5 * (r @ np.linalg.solve(S, r) + np.log(np.linalg.det(2 * np.pi * S)))
        K = P @ H.T @ np.linalg.inv(S)
        x = x + K @ r
        P = (np.eye(n) - K @ H) @ P
        xf[t], Pf[t] = x, P
    xs, Ps = xf.copy(), Pf.copy()
    for t in range(T - 2, -1, -1):
        G = Pf[t] @ F.T @ np.linalg.inv(Pp[t + 1])
        xs[t] = xf[t] + G @ (xs[t + 1] - xp[t + 1])
        Ps[t] = Pf[t] + G @ (Ps[t + 1] - Pp[t + 1]) @ G.T
    return xf, Pf, xs, Ps, loglik


def _spd(rng, k):
    a = rng.normal(size=(k, k))
    return a @ a.T + k * np.eye(k) * 0.1


@pytest.mark.parametrize("seed", range(5))
def test_kalman_filter_and_rts_smoother_equal_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m, T, B = 4, 2, 12, 3
    F = np.eye(n) + 0.1 * rng.normal(size=(n, n))
    H = rng.normal(size=(m, n))
    Q, R = np.stack([_spd(rng, n) for _ in range(B)]), np.stack([_spd(rng, m) for _ in range(B)])
    x0, P0 = rng.normal(size=(B, n)), np.stack([_spd(rng, n) for _ in range(B)])
    z = rng.normal(size=(B, T, m)) * 3
    t = torch.as_tensor
    xf, Pf, xp, Pp, ll = kalman_filter(t(z), t(F), t(H), t(Q), t(R), t(x0), t(P0))
    xs, Ps = rts_smoother(xf, Pf, xp, Pp, t(F))
    for b in range(B):
        rxf, rPf, rxs, rPs, rll = _numpy_filter_smoother(z[b], F, H, Q[b], R[b], x0[b], P0[b])
        np.testing.assert_allclose(xf[b].numpy(), rxf, rtol=0, atol=1e-8)
        np.testing.assert_allclose(Pf[b].numpy(), rPf, rtol=0, atol=1e-8)
        np.testing.assert_allclose(xs[b].numpy(), rxs, rtol=0, atol=1e-8)
        np.testing.assert_allclose(Ps[b].numpy(), rPs, rtol=0, atol=1e-8)
        assert float(ll[b]) == pytest.approx(rll, abs=1e-8)


def test_marginal_likelihood_gradient_matches_finite_differences() -> None:
    """The Kalman filter's log marginal likelihood, differentiated w.r.t. the noise (log std) parameters."""
    rng = np.random.default_rng(3)
    n, m, T = 4, 2, 8
    F = torch.as_tensor(np.eye(n) + np.eye(n, k=2))
    H = torch.as_tensor(np.eye(m, n))
    z = torch.as_tensor(np.cumsum(rng.normal(size=(1, T, m)), axis=1))

    def nll(log_std: torch.Tensor) -> torch.Tensor:
        Q = torch.diag_embed(torch.exp(2 * log_std[:n]))[None]
        R = torch.diag_embed(torch.exp(2 * log_std[n:]))[None]
        return -kalman_filter(z, F, H, Q, R, torch.zeros(1, n, dtype=torch.float64),
                              torch.eye(n, dtype=torch.float64)[None] * 4)[4].sum()

    params = torch.as_tensor(rng.normal(scale=0.3, size=n + m), dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(nll, (params,), eps=1e-6, atol=1e-6, rtol=1e-5)


def _toy_window(seed: int, frames: int = 5) -> list[Frame]:
    """Three boxes moving at constant speed with jitter, one miss, appearance features per object."""
    rng = np.random.default_rng(seed)
    starts = np.array([[0.3, 0.5, 0.05, 0.12], [0.9, 0.55, 0.06, 0.15], [1.4, 0.6, 0.04, 0.1]])
    speed = np.array([[0.02, 0.0, 0, 0], [-0.01, 0.005, 0, 0], [0.0, -0.01, 0, 0]])
    colour = rng.uniform(size=(3, 6))
    out = []
    for t in range(frames):
        keep = [i for i in range(3) if not (t == 2 and i == 1)]
        z = starts[keep] + t * speed[keep] + rng.normal(0, 0.003, (len(keep), 4))
        app = colour[keep] + rng.normal(0, 0.02, (len(keep), 6))
        out.append(Frame(torch.as_tensor(z), torch.as_tensor(app), torch.as_tensor(rng.uniform(0.5, 1, len(keep)))))
    return out


@pytest.mark.parametrize("smoother", [True, False])
def test_em_loss_gradient_matches_finite_differences(smoother: bool) -> None:
    """The whole window loss (soft tracker, Sinkhorn, filter, smoother) w.r.t. noise and dustbin parameters."""
    torch.manual_seed(0)
    net = AssociationNet(hidden=8).double()
    frames = _toy_window(1)
    cfg = EMConfig(smoother=smoother, sinkhorn_iters=10)
    names = ["log_q", "log_r", "log_app", "miss", "birth"]
    base = {k: getattr(net, k).detach().clone() for k in names}

    def loss_of(*values: torch.Tensor) -> torch.Tensor:
        for name, v in zip(names, values, strict=True):
            setattr(net, name, v)
        return window_loss(net, frames, cfg)[0]

    # Replace the parameters by plain tensors so gradcheck can perturb them.
    for name in names:
        delattr(net, name)
    inputs = tuple(base[k].requires_grad_() for k in names)
    assert torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-4, rtol=1e-4)


def test_tracker_never_outputs_a_box_of_negative_size() -> None:
    """A tall box leaving the image: its clipped width shrinks to almost nothing while its height (which scales the
    measurement noise) stays large, so the filter trusts the narrowing width little and its width velocity carries
    the filtered width below zero. The output must stay a box (the 12-sequence val split hit this: a TrackTableError
    ended the run)."""
    from methods.nkf_em.track import TrackerConfig, track_sequence

    torch.manual_seed(0)
    net = AssociationNet().double()
    widths = [max(0.20 - 0.02 * t, 0.002) for t in range(20)]
    frames = [Frame(torch.tensor([[w / 2, 0.75, w, 0.47]], dtype=torch.float64),
                    torch.full((1, 6), 0.5, dtype=torch.float64), torch.ones(1, dtype=torch.float64)) for w in widths]
    out = track_sequence(net, frames, TrackerConfig(min_prob=0.0, birth_score=0.9, max_age=10, min_hits=1))
    assert len({track for _, track, _, _ in out}) == 1 and len(out) == len(frames)
    assert all(z[2] > 0 and z[3] > 0 for *_, z in out), [(i, z) for i, _, _, z in out]
