"""CenterTrack: targets <-> decoding, the imperfect-label losses, the tracker, and a smoke training run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from centertrack_toy import SIZE, K, profile_config, toy_scene  # noqa: E402

from baselines.centertrack.decode import Detections, decode  # noqa: E402
from baselines.centertrack.infer import track_sequences  # noqa: E402
from baselines.centertrack.losses import centertrack_loss, focal_loss  # noqa: E402
from baselines.centertrack.model import CenterTrackNet, ModelConfig, load_weights, save_weights  # noqa: E402
from baselines.centertrack.targets import DOWN, objects_from_table, render_targets  # noqa: E402
from baselines.centertrack.tracker import Tracker  # noqa: E402
from baselines.centertrack.train import build_model, train  # noqa: E402
from bench.data.tracks import TRACK_COLUMNS, validate_tracks  # noqa: E402

WO, HO = SIZE[0] // DOWN, SIZE[1] // DOWN



@pytest.fixture(autouse=True)
def one_thread():
    # Tiny convolutions gain nothing from a second thread, and on a loaded machine OpenMP's spinning
    # threads make them ten times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

def frame_targets(tracks, frame=2, conf=None, neg_weight=None, drop=()):
    rows = tracks[(tracks["frame"] == frame) & ~tracks["track_id"].isin(drop)].copy()
    if conf is not None:
        rows["conf"] = rows["track_id"].map(conf).fillna(1.0)
    prev = tracks[tracks["frame"] == frame - 1]
    prev_centres = {int(r.track_id): np.array([(r.x1 + r.x2) / 2, (r.y1 + r.y2) / 2]) for r in prev.itertuples()}
    objects, dontcare = objects_from_table(rows, ("Car",), 1.0, 1.0)
    return render_targets(objects, K, SIZE, 1, prev_centres=prev_centres, dontcare=dontcare, neg_weight=neg_weight,
                          max_objs=8)


def batch(target):
    return {k: torch.from_numpy(np.asarray(v))[None] for k, v in target.items()}


def maps_from_targets(t):
    """Dense 'network outputs' that carry exactly the targets at the object peaks."""
    out = {name: torch.zeros(1, c, HO, WO) for name, c in
           {"reg": 2, "wh": 2, "tracking": 2, "dep": 1, "rot": 8, "dim": 3, "amodal": 2}.items()}
    for k in np.flatnonzero(t["mask"]):
        y, x = divmod(int(t["ind"][k]), WO)
        for name in ("reg", "wh", "tracking", "dim", "amodal"):
            out[name][0, :, y, x] = torch.from_numpy(t[name][k])
        d = float(t["dep"][k, 0])
        out["dep"][0, 0, y, x] = float(np.log((1 / (d + 1)) / (1 - 1 / (d + 1))))  # inverse of 1/sigmoid - 1
        for b in range(2):
            out["rot"][0, 4 * b + 1, y, x] = 5.0 if t["rot_bin"][k, b] else -5.0
            out["rot"][0, 4 * b + 2, y, x] = float(np.sin(t["rot_res"][k, b]))
            out["rot"][0, 4 * b + 3, y, x] = float(np.cos(t["rot_res"][k, b]))
    return out


def test_decode_of_targets_recovers_the_boxes():
    seq, tracks = toy_scene()
    t = frame_targets(tracks)
    dets = decode(maps_from_targets(t), K, k=10, threshold=0.99, heatmap=torch.from_numpy(t["hm"])[None])[0]
    gt = tracks[tracks["frame"] == 2]
    assert len(dets) == len(gt) == 3
    for row in gt.itertuples():
        j = np.argmin(np.abs(dets.centre[:, 0] - (row.x1 + row.x2) / 2))
        np.testing.assert_allclose(dets.boxes[j], [row.x1, row.y1, row.x2, row.y2], atol=1e-4)
        np.testing.assert_allclose(dets.boxes3d[j], [row.x, row.y, row.z, row.h, row.w, row.l, row.yaw], atol=1e-3)
        prev = tracks[(tracks["frame"] == 1) & (tracks["track_id"] == row.track_id)].iloc[0]
        np.testing.assert_allclose(dets.centre[j] + dets.tracking[j], [(prev.x1 + prev.x2) / 2,
                                                                       (prev.y1 + prev.y2) / 2], atol=1e-4)


def test_confidence_weights_scale_each_objects_losses():
    _, tracks = toy_scene()
    torch.manual_seed(0)
    out = {k: torch.randn(1, c, HO, WO) for k, c in
           {"hm": 1, "reg": 2, "wh": 2, "tracking": 2, "dep": 1, "rot": 8, "dim": 3, "amodal": 2}.items()}
    full = batch(frame_targets(tracks))
    pos_all, _ = focal_loss(out["hm"], full)
    only0 = batch(frame_targets(tracks, conf={1: 0.0, 2: 0.0}))
    without0 = batch(frame_targets(tracks, conf={0: 0.0}))
    pos_only0, _ = focal_loss(out["hm"], only0)
    pos_without0, _ = focal_loss(out["hm"], without0)
    # Zero confidence removes exactly that object's positive term, nothing else.
    assert pos_only0 > 0 and pos_without0 > 0
    torch.testing.assert_close(pos_only0 + pos_without0, pos_all)
    half = batch(frame_targets(tracks, conf={0: 0.5, 1: 0.5, 2: 0.5}))
    torch.testing.assert_close(focal_loss(out["hm"], half)[0], pos_all / 2)
    # All regression heads follow the same weights.
    _, log_all = centertrack_loss(out, full)
    _, log_none = centertrack_loss(out, batch(frame_targets(tracks, conf={0: 0.0, 1: 0.0, 2: 0.0})))
    for head in ("reg", "wh", "tracking", "dep", "rot", "dim", "amodal"):
        assert log_all[head] > 0 and log_none[head] == 0.0, head


def test_weight_map_removes_negative_loss_of_unlabelled_object():
    _, tracks = toy_scene()
    # Sparse labels: car 0 is in the image but unlabelled in this frame, so it is a negative...
    sparse = frame_targets(tracks, drop=(0,))
    row = tracks[(tracks["frame"] == 2) & (tracks["track_id"] == 0)].iloc[0]
    cx, cy = int((row.x1 + row.x2) / 2 / DOWN), int((row.y1 + row.y2) / 2 / DOWN)
    quiet = torch.full((1, 1, HO, WO), -4.6)
    fires = quiet.clone()
    fires[0, 0, cy, cx] = 3.0  # ...and a network that (rightly) fires on it is punished,
    assert focal_loss(fires, batch(sparse))[1] > focal_loss(quiet, batch(sparse))[1] + 1.0
    # unless the FNComp map zeroes the negative loss over that object.
    fn_map = np.ones((HO, WO), np.float32)
    fn_map[int(row.y1 / DOWN):int(np.ceil(row.y2 / DOWN)), int(row.x1 / DOWN):int(np.ceil(row.x2 / DOWN))] = 0
    mapped = batch(frame_targets(tracks, drop=(0,), neg_weight=fn_map))
    torch.testing.assert_close(focal_loss(fires, mapped)[1], focal_loss(quiet, mapped)[1])
    # A labelled object's positive loss is untouched by the map.
    torch.testing.assert_close(focal_loss(fires, mapped)[0], focal_loss(fires, batch(sparse))[0])


def dets(centres, tracking, cls=None, score=None, size=20.0):
    centres = np.asarray(centres, float).reshape(-1, 2)
    n = len(centres)
    return Detections(
        score=np.full(n, 0.9) if score is None else np.asarray(score, float),
        cls=np.zeros(n, np.int64) if cls is None else np.asarray(cls),
        centre=centres, boxes=np.concatenate([centres - size / 2, centres + size / 2], 1),
        tracking=np.asarray(tracking, float).reshape(-1, 2), boxes3d=np.zeros((n, 7)),
        depth_sigma=np.full(n, np.nan))


def test_tracker_links_by_offset_and_births_and_kills_tracks():
    tr = Tracker(new_thresh=0.5, match_thresh=0.3, max_age=1)
    a = tr.step(dets([[50, 50]], [[0, 0]]))
    # The car moves 12 px right per frame; its offset points back. A look-alike 8 px from its old spot appears.
    b = tr.step(dets([[62, 50], [42, 50]], [[-12, 0], [0, 0]]))
    assert b[0] == a[0] and b[1] != a[0]
    c = tr.step(dets([[74, 50]], [[-12, 0]], score=[0.35]))  # weak but matched: kept (above match_thresh)
    assert c[0] == a[0]
    weak = tr.step(dets([[10, 10]], [[0, 0]], score=[0.4]))  # unmatched and below new_thresh: no birth
    assert weak[0] == -1
    other = tr.step(dets([[74, 50]], [[0, 0]], cls=[1]))  # other class at the same place: a new track
    assert other[0] not in (a[0], b[1])
    assert tr.step(dets([[74, 50]], [[0, 0]]))[0] not in (a[0],)  # car 0 unseen for 2 > max_age frames: dead
    assert all(t.track_id != a[0] for t in tr.tracks)


def test_smoke_training_lowers_loss_and_predicts_track_tables(tmp_path):
    seq, tracks = toy_scene()
    cfg = profile_config("smoke", {"input_size": SIZE, "steps": 48})  # 48: half the samples are mirrored
    model, history = train({"toy": seq}, tracks, ("Car",), cfg, seed=0)
    losses = [h["total"] for h in history]
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    cfg.update(track_thresh=0.05, new_thresh=0.05)
    table, stats = track_sequences(model, {"toy": seq}, ("Car",), cfg)
    assert tuple(table.columns) == TRACK_COLUMNS and len(table) > 0 and stats["frames"] == seq.num_frames
    validate_tracks(table, "centertrack predictions")
    assert set(table["cls"]) == {"Car"} and (table["score"] >= 0.05).all()
    # Weights round-trip and initialise a new model to the same outputs.
    path = tmp_path / "ct.pt"
    save_weights(model, str(path))
    again = build_model(cfg, 1).eval()
    load_weights(again, str(path))
    x = torch.zeros(1, 3, SIZE[1], SIZE[0])
    torch.testing.assert_close(again(x, x, x[:, :1])["hm"], model(x, x, x[:, :1])["hm"])


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_weights(CenterTrackNet(ModelConfig()), str(tmp_path / "nope.pt"))


def test_native_input_size_keeps_the_images_shape_rounded_up_to_the_backbone_stride():
    from types import SimpleNamespace

    from baselines.centertrack.train import resolve_input_size

    cfg = profile_config("quick")
    assert cfg["input_size"] == "native"
    kitti = resolve_input_size(cfg, {"a": SimpleNamespace(image_size=(416, 128))})
    assert kitti["input_size"] == (416, 128)  # already a multiple of 32: unchanged
    nusc = resolve_input_size(cfg, {"a": SimpleNamespace(image_size=(384, 216))})
    assert nusc["input_size"] == (384, 224)  # 16:9 kept, not squeezed into KITTI's 416x128
    fixed = profile_config("quick", {"input_size": (128, 64)})
    assert resolve_input_size(fixed, {"a": SimpleNamespace(image_size=(384, 216))})["input_size"] == (128, 64)
    with pytest.raises(ValueError, match="native"):
        resolve_input_size(cfg, {})


def _encoded(alpha: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    from baselines.centertrack.targets import encode_alpha

    bins, res = encode_alpha(alpha)
    return torch.from_numpy(bins)[None], torch.from_numpy(res)[None]


def _confident_rot_head(alpha: np.ndarray) -> torch.Tensor:
    """The ``rot`` head's 8 outputs that say ``alpha`` with near-certain bins."""
    bins, res = _encoded(alpha)
    parts = []
    for k in range(2):
        inside, r = bins[..., k:k + 1], res[..., k:k + 1]
        parts += [10 * (1 - 2 * inside), 10 * (2 * inside - 1), torch.sin(r), torch.cos(r)]
    return torch.cat(parts, dim=-1)


def test_flip_orientation_loss_forgives_a_half_turn_and_nothing_else():
    """BA²-Det's Eq. 6: per object, the MultiBin loss of the heading or of the heading + 180°, whichever is smaller."""
    from baselines.centertrack.losses import rot_loss
    from bench.data.geometry import wrap_angle

    alpha = np.array([-2.5, -0.3, 0.4, 1.9, 3.0])
    turned = wrap_angle(alpha + np.pi)
    w, num = torch.ones(1, 5), torch.tensor(5.0)
    bins, res = _encoded(alpha)
    says_turned = _confident_rot_head(turned)
    plain = rot_loss(says_turned, bins, res, w, num)
    flip = rot_loss(says_turned, bins, res, w, num, flip=True)
    assert plain > 5 and flip < 0.01  # a prediction 180° off is wrong for MultiBin, right for Eq. 6
    says_right = _confident_rot_head(alpha)
    torch.testing.assert_close(rot_loss(says_right, bins, res, w, num, flip=True),
                               rot_loss(says_right, bins, res, w, num))
    says_quarter = _confident_rot_head(wrap_angle(alpha + np.pi / 2))
    assert rot_loss(says_quarter, bins, res, w, num, flip=True) > 1  # a quarter turn is still wrong
    torch.manual_seed(0)
    noise = torch.randn(1, 5, 8)
    assert rot_loss(noise, bins, res, w, num, flip=True) <= rot_loss(noise, bins, res, w, num)
    # The smaller of the two is taken per object: half the objects turned, all forgiven.
    mixed = torch.where(torch.arange(5)[None, :, None] % 2 == 0, says_turned, says_right)
    assert rot_loss(mixed, bins, res, w, num, flip=True) < 0.01
