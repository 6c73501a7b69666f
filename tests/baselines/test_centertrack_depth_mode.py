"""CenterTrack ``depth_mode``: "direct" (regress z; the default) and "geometric" (log(z) over fy * h3d / h2d)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from centertrack_toy import SIZE, K, profile_config, toy_scene  # noqa: E402

from baselines.centertrack.decode import decode  # noqa: E402
from baselines.centertrack.learner import CenterTrackLearner  # noqa: E402
from baselines.centertrack.losses import centertrack_loss  # noqa: E402
from baselines.centertrack.model import depth_from_raw  # noqa: E402
from baselines.centertrack.targets import (  # noqa: E402
    DOWN,
    geometric_depth_prior,
    objects_from_table,
    render_targets,
)
from baselines.centertrack.train import build_model  # noqa: E402
from bench.config import method_params  # noqa: E402
from bench.interface import RunContext, SplitView, TrainView  # noqa: E402

WO, HO = SIZE[0] // DOWN, SIZE[1] // DOWN
HEADS = {"reg": 2, "wh": 2, "tracking": 2, "dep": 1, "rot": 8, "dim": 3, "amodal": 2}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def targets(tracks, frame=2, **kw):
    objects, dontcare = objects_from_table(tracks[tracks["frame"] == frame], ("Car",), 1.0, 1.0)
    return render_targets(objects, K, SIZE, 1, dontcare=dontcare, max_objs=8, **kw)


def maps_from_targets(t, depth_mode):
    """Dense 'network outputs' carrying exactly the targets at the object peaks (raw dep per mode)."""
    out = {name: torch.zeros(1, c, HO, WO) for name, c in HEADS.items()}
    for k in np.flatnonzero(t["mask"]):
        y, x = divmod(int(t["ind"][k]), WO)
        for name in ("reg", "wh", "tracking", "dim", "amodal"):
            out[name][0, :, y, x] = torch.from_numpy(t[name][k])
        d = float(t["dep"][k, 0])
        # geometric: the raw output is the log-residual itself; direct: invert 1/sigmoid(raw) - 1.
        out["dep"][0, 0, y, x] = d if depth_mode == "geometric" else float(-np.log(d))
        for b in range(2):
            out["rot"][0, 4 * b + 1, y, x] = 5.0 if t["rot_bin"][k, b] else -5.0
            out["rot"][0, 4 * b + 2, y, x] = float(np.sin(t["rot_res"][k, b]))
            out["rot"][0, 4 * b + 3, y, x] = float(np.cos(t["rot_res"][k, b]))
    return out


@pytest.mark.parametrize("depth_mode", ["direct", "geometric"])
def test_encode_decode_round_trip_recovers_the_3d_boxes(depth_mode):
    _, tracks = toy_scene()
    t = targets(tracks, depth_mode=depth_mode)
    dets = decode(maps_from_targets(t, depth_mode), K, k=10, threshold=0.99,
                  heatmap=torch.from_numpy(t["hm"])[None], depth_mode=depth_mode)[0]
    gt = tracks[tracks["frame"] == 2]
    assert len(dets) == len(gt) == 3
    for row in gt.itertuples():
        j = np.argmin(np.abs(dets.centre[:, 0] - (row.x1 + row.x2) / 2))
        np.testing.assert_allclose(dets.boxes3d[j], [row.x, row.y, row.z, row.h, row.w, row.l, row.yaw], atol=1e-3)


def test_geometric_target_is_the_log_residual_over_the_pinhole_prior():
    _, tracks = toy_scene()
    t = targets(tracks, depth_mode="geometric")
    direct = targets(tracks)
    gt = tracks[tracks["frame"] == 2].sort_values("z")  # targets are rendered nearest first
    n = len(gt)
    prior = K[1, 1] * gt["h"].to_numpy() / (gt["y2"] - gt["y1"]).to_numpy()
    np.testing.assert_allclose(t["dep"][:n, 0], np.log(gt["z"].to_numpy() / prior), atol=1e-5)
    # Upright untruncated boxes in front of the camera: the prior alone is within ~25 % of the depth.
    assert np.all(np.abs(t["dep"][:n, 0]) < 0.25)
    # Only the depth target changes with the mode.
    np.testing.assert_allclose(direct["dep"][:n, 0], gt["z"].to_numpy(), atol=1e-5)
    for key in direct:
        if key != "dep":
            np.testing.assert_array_equal(t[key], direct[key], err_msg=key)


def test_prior_clamps_degenerate_box_heights_to_one_pixel():
    np.testing.assert_allclose(geometric_depth_prior(100.0, np.array([1.5, 1.5, 1.5]), np.array([0.0, 0.3, 3.0])),
                               [150.0, 150.0, 50.0])
    # A decoded box with no height (an untrained wh head says <= 0) still gets a finite depth.
    _, tracks = toy_scene()
    t = targets(tracks, depth_mode="geometric")
    out = maps_from_targets(t, "geometric")
    out["wh"].zero_()
    dets = decode(out, K, k=10, threshold=0.99, heatmap=torch.from_numpy(t["hm"])[None], depth_mode="geometric")[0]
    assert len(dets) == 3 and np.isfinite(dets.boxes3d).all() and (dets.boxes3d[:, 2] > 0).all()


def test_direct_is_the_default_everywhere_and_unchanged():
    assert profile_config("smoke")["depth_mode"] == "direct"
    _, tracks = toy_scene()
    t = targets(tracks)
    for key, value in targets(tracks, depth_mode="direct").items():
        np.testing.assert_array_equal(value, t[key], err_msg=key)
    torch.manual_seed(0)
    out = {k: torch.randn(1, c, HO, WO) for k, c in {"hm": 1, **HEADS}.items()}
    b = {k: torch.from_numpy(np.asarray(v))[None] for k, v in t.items()}
    _, log = centertrack_loss(out, b)
    _, log_direct = centertrack_loss(out, b, depth_mode="direct")
    assert log == log_direct
    # Direct depth loss: L1 in metres of CenterNet's 1/sigmoid - 1 transform at each peak.
    m = t["mask"] > 0
    raw = out["dep"][0, 0].flatten()[torch.from_numpy(t["ind"][m])]
    expect = (depth_from_raw(raw) - torch.from_numpy(t["dep"][m, 0])).abs().sum() / m.sum()
    assert log["dep"] == pytest.approx(float(expect), rel=1e-5)
    # The direct model starts at 20 m; the geometric one at the prior (zero residual).
    def dep_bias(**overrides):
        return float(build_model(profile_config("smoke", overrides), 1).heads["dep"].bias[0].detach())

    assert dep_bias() == pytest.approx(-np.log(20.0)) and dep_bias(depth_mode="geometric") == 0.0


def test_unknown_depth_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="depth_mode"):
        profile_config("smoke", {"depth_mode": "stereo"})
    _, tracks = toy_scene()
    with pytest.raises(ValueError, match="depth_mode"):
        targets(tracks, depth_mode="log")


def test_geometric_training_and_checkpoint_keep_the_mode(tmp_path):
    seq, tracks = toy_scene(num_frames=5)
    train_view = TrainView(name="train", sequences={"toy": seq}, frame_rate=10.0, labels=tracks, budget=None)
    ctx = RunContext(seed=1, work_dir=tmp_path)
    params = {**method_params("smoke", "centertrack"), "input_size": SIZE, "track_thresh": 0.005,
              "new_thresh": 0.005, "max_depth": 1e9}
    learner = CenterTrackLearner(**{**params, "steps": 3}, threads=1, depth_mode="geometric")
    learner.fit(train_view, tracks, ctx)
    # Starting at the prior, the log-residual loss is small and finite from the first step.
    assert all(0 <= h["dep"] < 1 for h in learner.history_)
    val = SplitView(name="val", sequences={"toy": seq}, frame_rate=10.0)
    pred = learner.predict(val, ctx)
    assert len(pred) > 0
    state = learner.state_dict()
    # A learner restored without being told the mode decodes the way the checkpoint was trained.
    restored = CenterTrackLearner(**params)
    restored.load_state_dict(state)
    assert restored.config_["depth_mode"] == "geometric"
    again = restored.predict(val, ctx)
    np.testing.assert_allclose(again[["x1", "z", "score"]].to_numpy(), pred[["x1", "z", "score"]].to_numpy())
    # Checkpoints from before the option existed regressed depth directly.
    old = {k: v for k, v in state.items() if k != "meta.depth_mode"}
    restored.load_state_dict(old)
    assert restored.config_["depth_mode"] == "direct"
