"""Online inference: the learned filter and scores, Hungarian assignment, birth and death rules.

Per frame: predict every track with the learned motion model; score every (track, detection) pair with
the trained network and normalise with Sinkhorn (dustbins included); the Hungarian algorithm picks the
most probable one-to-one assignment and keeps pairs whose probability is at least ``min_prob``. Matched
tracks are updated (Kalman, running appearance). A detection left over with score >= ``birth_score``
starts a tentative track, output once it has ``min_hits`` consecutive matches (from the first frame of a
video, at once); a track unmatched for more than ``max_age`` frames dies. Boxes output are the filtered
states of the tracks matched in that frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from methods.nkf_em.features import MIN_SIZE
from methods.nkf_em.kalman import innovation, predict, update
from methods.nkf_em.model import AssociationNet, Frame, cv_matrices
from methods.nkf_em.sinkhorn import bordered, log_sinkhorn


@dataclass(frozen=True)
class TrackerConfig:
    min_prob: float = 0.3
    birth_score: float = 0.5
    det_thresh: float = 0.1
    min_hits: int = 2
    max_age: int = 5
    sinkhorn_iters: int = 20
    app_rate: float = 0.5


@torch.no_grad()
def track_sequence(net: AssociationNet, frames: list[Frame], cfg: TrackerConfig
                   ) -> list[tuple[int, int, float, np.ndarray]]:
    """Track one video: (frame index, track id, score, z (4,)) for every output box."""
    F, H = cv_matrices(torch.float64)
    x = torch.zeros(0, 8, dtype=torch.float64)
    P = torch.zeros(0, 8, 8, dtype=torch.float64)
    app = torch.zeros(0, frames[0].app.shape[1] if frames else 6, dtype=torch.float64)
    ids: list[int] = []
    hits: list[int] = []
    since: list[int] = []
    next_id = 0
    out: list[tuple[int, int, float, np.ndarray]] = []
    for index, frame in enumerate(frames):
        keep_det = frame.score >= cfg.det_thresh
        frame = Frame(frame.z[keep_det], frame.app[keep_det], frame.score[keep_det])
        n, m = len(x), len(frame.z)
        matched_track = np.full(n, -1)
        if n:
            h = x[:, 3].clamp(min=1e-3)
            x, P = predict(x, P, F, net.process_noise(h))
            R = net.measurement_noise(h)
            if m:
                zhat, S = innovation(x, P, H, R)
                scores, miss, birth, _, _ = net.logits(zhat, S, app, frame)
                prob = torch.exp(log_sinkhorn(bordered(scores, miss, birth), cfg.sinkhorn_iters))[:n, :m].numpy()
                rows, cols = linear_sum_assignment(-prob)
                ok = prob[rows, cols] >= cfg.min_prob
                rows, cols = rows[ok], cols[ok]
                if len(rows):
                    r_t, c_t = torch.as_tensor(rows), torch.as_tensor(cols)
                    xu, Pu = update(x[r_t], P[r_t], frame.z[c_t], H, R[r_t])
                    # A box leaving the image narrows to nothing while its height, which scales the noise, stays:
                    # the size velocity can carry the filtered width below zero. A box keeps a positive size (the
                    # floor boxes_to_z gives a measurement).
                    xu[:, 2:4] = xu[:, 2:4].clamp(min=MIN_SIZE)
                    x, P = x.index_copy(0, r_t, xu), P.index_copy(0, r_t, Pu)
                    app[r_t] = (1 - cfg.app_rate) * app[r_t] + cfg.app_rate * frame.app[c_t]
                    matched_track[rows] = cols
        used = set(matched_track[matched_track >= 0].tolist())
        for i in range(n):
            if matched_track[i] >= 0:
                hits[i] += 1
                since[i] = 0
            else:
                hits[i] = 0
                since[i] += 1
        new = [j for j in range(m) if j not in used and float(frame.score[j]) >= cfg.birth_score]
        score_of = {i: float(frame.score[matched_track[i]]) for i in range(n) if matched_track[i] >= 0}
        if new:
            xb, Pb = net.prior(frame.z[new])
            x, P, app = torch.cat([x, xb]), torch.cat([P, Pb]), torch.cat([app, frame.app[new]])
            for j in new:
                score_of[len(ids)] = float(frame.score[j])
                ids.append(next_id)
                hits.append(1)
                since.append(0)
                next_id += 1
        for i in range(len(ids)):
            if since[i] == 0 and (hits[i] >= cfg.min_hits or index < cfg.min_hits):
                out.append((index, ids[i], score_of[i], x[i, :4].numpy().copy()))
        alive = [i for i in range(len(ids)) if since[i] <= cfg.max_age]
        if len(alive) < len(ids):
            sel = torch.as_tensor(alive, dtype=torch.long)
            x, P, app = x[sel], P[sel], app[sel]
            ids, hits, since = [ids[i] for i in alive], [hits[i] for i in alive], [since[i] for i in alive]
    return out
