"""Turn CenterTrack's dense outputs into detections with 2D and 3D boxes.

Peaks: 3x3 max-pool non-maximum suppression on the class heatmaps, then the top K over classes
and pixels. For each peak: 2D box from centre + offset and size; 3D centre by unprojecting the
amodal centre at the predicted depth (``depth_mode="geometric"``: the pinhole prior fy * h3d / h2d
from the predicted 3D height and 2D box height, times exp of the regressed log-residual); dims;
yaw = alpha + the ray angle of the 3D centre; the tracking offset says where the object was in the
previous frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from baselines.centertrack.model import depth_from_raw
from baselines.centertrack.targets import DOWN, ROT_BIN_CENTRES, check_depth_mode, geometric_depth_prior
from bench.data.geometry import wrap_angle


@dataclass
class Detections:
    """Detections of one image; image coordinates are in *input* pixels unless rescaled."""

    score: np.ndarray  # (N,)
    cls: np.ndarray  # (N,) class index
    centre: np.ndarray  # (N, 2) 2D box centre
    boxes: np.ndarray  # (N, 4) x1 y1 x2 y2
    tracking: np.ndarray  # (N, 2) previous centre minus centre
    boxes3d: np.ndarray  # (N, 7) x y z h w l yaw, camera frame (bottom centre)
    depth_sigma: np.ndarray  # (N,) predicted depth standard deviation (m); NaN without a dep_unc head

    def __len__(self) -> int:
        return len(self.score)

    def select(self, keep: np.ndarray) -> Detections:
        return Detections(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))

    def rescaled(self, sx: float, sy: float) -> Detections:
        """The same detections with image coordinates divided by (sx, sy): input -> original pixels."""
        s = np.array([sx, sy])
        return Detections(self.score, self.cls, self.centre / s, self.boxes / np.tile(s, 2), self.tracking / s,
                          self.boxes3d, self.depth_sigma)

    def score_3d(self) -> np.ndarray:
        """The detection score times a depth confidence exp(-sigma / 1 m) (GUPNet's score): it ranks detections
        whose 3D position is likely right first, which is what AP and AMOTA sweep over. Without an uncertainty
        head, the score itself."""
        return self.score if np.isnan(self.depth_sigma).all() else self.score * np.exp(-self.depth_sigma)


def decode_alpha(rot: np.ndarray) -> np.ndarray:
    """(N, 8) multibin output -> alpha: the more confident bin's centre plus its (sin, cos) residual."""
    b1 = rot[:, 1] - rot[:, 0]
    b2 = rot[:, 5] - rot[:, 4]
    first = b1 >= b2
    res = np.where(first, np.arctan2(rot[:, 2], rot[:, 3]), np.arctan2(rot[:, 6], rot[:, 7]))
    return wrap_angle(np.where(first, ROT_BIN_CENTRES[0], ROT_BIN_CENTRES[1]) + res)


def decode(out: dict[str, torch.Tensor], intrinsics: np.ndarray, k: int = 100, threshold: float = 0.0,
           heatmap: torch.Tensor | None = None, depth_mode: str = "direct") -> list[Detections]:
    """Detections per image of a batch of raw network outputs.

    ``intrinsics`` is (3, 3) or (B, 3, 3) for the input-size images. ``heatmap`` overrides
    ``sigmoid(out["hm"])`` (the encode/decode round trip passes its target heatmap here).
    ``depth_mode`` must be the one the network was trained with (see ``targets.DEPTH_MODES``).
    """
    check_depth_mode(depth_mode)
    hm = torch.sigmoid(out["hm"].float()) if heatmap is None else heatmap.float()
    b, c, h, w = hm.shape
    peaks = hm * (F.max_pool2d(hm, 3, 1, 1) == hm).float()
    scores, flat = peaks.view(b, -1).topk(min(k, c * h * w))
    cls, ind = flat // (h * w), flat % (h * w)
    intrinsics = np.broadcast_to(np.asarray(intrinsics, np.float64), (b, 3, 3))
    results = []
    for i in range(b):
        keep = scores[i] > threshold
        sc, cl, idx = scores[i][keep], cls[i][keep], ind[i][keep]

        def at(name: str, idx: torch.Tensor = idx, i: int = i) -> np.ndarray:
            m = out[name][i].float()
            return m.view(m.shape[0], -1)[:, idx].T.detach().cpu().numpy().astype(np.float64)

        # Offsets (tracking, amodal) are relative to the integer peak, as their targets are.
        xy = np.stack([(idx % w).cpu().numpy(), (idx // w).cpu().numpy()], 1).astype(np.float64)
        ct = (xy + at("reg")) * DOWN
        wh = np.maximum(at("wh"), 0.0) * DOWN  # an untrained head can say negative sizes
        boxes = np.concatenate([ct - wh / 2, ct + wh / 2], 1)
        kmat = intrinsics[i]
        dims = np.exp(at("dim"))
        if depth_mode == "geometric":
            depth = geometric_depth_prior(kmat[1, 1], dims[:, 0], wh[:, 1]) * np.exp(np.clip(at("dep")[:, 0], -10, 10))
        else:
            dep_raw = out["dep"][i].float().view(1, -1)[:, idx]
            depth = depth_from_raw(dep_raw).T.detach().cpu().numpy().astype(np.float64)[:, 0]
        if "dep_unc" in out:  # the Laplace's standard deviation, in the depth target's units
            sigma = np.exp(np.clip(at("dep_unc")[:, 0], -4.0, 4.0))
            depth_sigma = sigma * depth if depth_mode == "geometric" else sigma  # log-residual: relative -> m
        else:
            depth_sigma = np.full(len(depth), np.nan)
        amodal = (xy + at("amodal")) * DOWN
        # Unproject the amodal (3D-centre) pixel at the predicted depth.
        cx = (amodal[:, 0] - kmat[0, 2]) * depth / kmat[0, 0]
        cy = (amodal[:, 1] - kmat[1, 2]) * depth / kmat[1, 1]
        alpha = decode_alpha(at("rot"))
        yaw = wrap_angle(alpha + np.arctan2(cx, depth))
        boxes3d = np.stack([cx, cy + dims[:, 0] / 2, depth, dims[:, 0], dims[:, 1], dims[:, 2], yaw], 1)
        results.append(Detections(
            score=sc.detach().cpu().numpy().astype(np.float64), cls=cl.cpu().numpy().astype(np.int64),
            centre=ct, boxes=boxes, tracking=(xy + at("tracking")) * DOWN - ct, boxes3d=boxes3d,
            depth_sigma=depth_sigma,
        ))
    return results
