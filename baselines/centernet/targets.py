"""CenterNet "ddd" training targets for one image, and the rotation-bin encoding.

All coordinates are in the network's input pixels; dense targets live at stride ``DOWN`` = 4. Per object
with a 3D box (rows without one are not 3D labels and train nothing here, since this detector is trained on
the budget's 3D labels only):

- a Gaussian peak on its class heatmap at the **2D box centre** (CenterNet ddd puts the peak there and
  unprojects it at decode time; the projected 3D centre is not used),
- ``reg`` sub-pixel offset, ``wh`` 2D size (output pixels),
- ``dep``: z of the box (m), ``dim``: h, w, l (m),
- ``rot_bin`` / ``rot_res``: the observation angle alpha in CenterNet's two overlapping bins,
- ``weight``: the row's ``conf`` (1 for human labels; a pseudolabel's confidence otherwise).
"""

from __future__ import annotations

import numpy as np

from baselines.centertrack.targets import DOWN, Objects, draw_gaussian, gaussian_radius
from bench.data.geometry import observation_angle

# Bin centres (CenterNet's BinRotLoss): bin 0 at -pi/2 holds alpha < pi/6 or alpha > 5pi/6, bin 1 at +pi/2
# holds alpha > -pi/6 or alpha < -5pi/6; the two overlap over 2 x pi/3 so a residual never nears +-pi.
BIN_CENTRES = np.array([-np.pi / 2, np.pi / 2])


def encode_rot(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """alpha ``(N,)`` in [-pi, pi) -> (bin membership ``(N, 2)`` in {0, 1}, residual to each centre ``(N, 2)``).

    The residual is ``alpha - centre`` unwrapped, as CenterNet stores it; only in-bin residuals are trained."""
    alpha = np.asarray(alpha, dtype=np.float64).reshape(-1)
    in0 = (alpha < np.pi / 6) | (alpha > 5 * np.pi / 6)
    in1 = (alpha > -np.pi / 6) | (alpha < -5 * np.pi / 6)
    bins = np.stack([in0, in1], axis=1).astype(np.float32)
    res = (alpha[:, None] - BIN_CENTRES[None, :]).astype(np.float32)
    return bins, res * bins


def render_targets(objects: Objects, input_size: tuple[int, int], num_classes: int, max_objs: int = 64,
                   dontcare: np.ndarray | None = None, neg_weight: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Dense and per-object targets of one image (objects in input pixels; only rows with a 3D box train).

    ``dontcare`` boxes (input pixels) switch the negative heatmap loss off inside them (``neg_weight`` 0);
    ``neg_weight`` is an optional (H/4, W/4) map in [0, 1] scaling the negative loss per pixel (FNComp)."""
    w_in, h_in = input_size
    wo, ho = w_in // DOWN, h_in // DOWN
    hm = np.zeros((num_classes, ho, wo), np.float32)
    nw = np.ones((ho, wo), np.float32) if neg_weight is None else np.array(neg_weight, np.float32)
    if nw.shape != (ho, wo):
        raise ValueError(f"neg_weight map is {nw.shape}, expected {(ho, wo)} (input size / {DOWN})")
    t: dict[str, np.ndarray] = {"ind": np.zeros(max_objs, np.int64), "cls": np.zeros(max_objs, np.int64),
         "mask": np.zeros(max_objs, np.float32), "weight": np.zeros(max_objs, np.float32),
         "reg": np.zeros((max_objs, 2), np.float32), "wh": np.zeros((max_objs, 2), np.float32),
         "dep": np.zeros((max_objs, 1), np.float32), "dim": np.zeros((max_objs, 3), np.float32),
         "rot_bin": np.zeros((max_objs, 2), np.float32), "rot_res": np.zeros((max_objs, 2), np.float32)}
    if dontcare is not None:
        for x1, y1, x2, y2 in np.asarray(dontcare, np.float64).reshape(-1, 4) / DOWN:
            nw[int(max(y1, 0)):int(np.ceil(y2)), int(max(x1, 0)):int(np.ceil(x2))] = 0.0
    has3d = np.isfinite(objects.boxes3d).all(axis=1)
    order = np.argsort(np.where(has3d, objects.boxes3d[:, 2], np.inf), kind="stable")  # nearest first
    k = 0
    for i in order:
        if not has3d[i]:
            continue
        x1, y1, x2, y2 = objects.boxes[i] / DOWN
        bw, bh = x2 - x1, y2 - y1
        if bw <= 0 or bh <= 0:
            continue
        ct = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        ct_int = np.floor(ct).astype(np.int64)
        if not (0 <= ct_int[0] < wo and 0 <= ct_int[1] < ho):
            continue
        draw_gaussian(hm[objects.cls[i]], (int(ct_int[0]), int(ct_int[1])), int(gaussian_radius(np.ceil(bh),
                                                                                             np.ceil(bw))))
        if k >= max_objs:
            continue
        box = objects.boxes3d[i]
        bins, res = encode_rot(observation_angle(box[None]))
        t["ind"][k] = ct_int[1] * wo + ct_int[0]
        t["cls"][k] = objects.cls[i]
        t["mask"][k] = 1.0
        t["weight"][k] = objects.conf[i]
        t["reg"][k] = ct - ct_int
        t["wh"][k] = (bw, bh)
        t["dep"][k] = box[2]
        t["dim"][k] = box[3:6]
        t["rot_bin"][k], t["rot_res"][k] = bins[0], res[0]
        k += 1
    return {"hm": hm, "neg_weight": nw, **t}
