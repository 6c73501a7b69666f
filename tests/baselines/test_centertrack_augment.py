"""CenterTrack's training-time mirror augmentation and weight averaging."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from centertrack_toy import SIZE, K, profile_config, toy_scene  # noqa: E402

from baselines.centertrack.targets import Objects, flip_intrinsics, flip_objects  # noqa: E402
from baselines.centertrack.train import _update_average, build_model, make_sample, prepare  # noqa: E402
from bench.data.geometry import observation_angle, project_boxes_2d  # noqa: E402


def test_mirrored_3d_boxes_project_onto_the_mirrored_2d_boxes():
    boxes3d = np.array([[3.0, 1.6, 15.0, 1.5, 1.7, 4.2, 0.7], [-5.0, 1.6, 25.0, 1.5, 1.7, 4.2, -2.5]])
    boxes = project_boxes_2d(boxes3d, K, SIZE)
    objects = Objects(boxes, boxes3d, np.zeros(2, np.int64), np.arange(2), np.ones(2))
    mirrored = flip_objects(objects, SIZE[0])
    # Left and right swap in the image; the 3D boxes with the mirrored camera land exactly there.
    np.testing.assert_allclose(mirrored.boxes[:, [0, 2]], SIZE[0] - boxes[:, [2, 0]])
    np.testing.assert_allclose(project_boxes_2d(mirrored.boxes3d, flip_intrinsics(K, SIZE[0]), SIZE),
                               mirrored.boxes, atol=1e-9)
    # A car seen from its left is seen from its right: the observation angle becomes pi - alpha.
    alpha, alpha_m = observation_angle(boxes3d), observation_angle(mirrored.boxes3d)
    np.testing.assert_allclose(np.cos(alpha_m), -np.cos(alpha), atol=1e-9)
    np.testing.assert_allclose(np.sin(alpha_m), np.sin(alpha), atol=1e-9)
    np.testing.assert_allclose(flip_objects(mirrored, SIZE[0]).boxes3d[:, :6], boxes3d[:, :6])


def test_a_mirrored_sample_has_the_mirrored_targets():
    seq, tracks = toy_scene()
    data = prepare({"toy": seq}, tracks, ("Car",), profile_config("smoke", {"input_size": SIZE}))[0]
    plain = make_sample(data, 2, profile_config("smoke", {"input_size": SIZE, "flip": 0.0}), 1,
                        np.random.default_rng(0))
    mirrored = make_sample(data, 2, profile_config("smoke", {"input_size": SIZE, "flip": 1.0}), 1,
                           np.random.default_rng(0))
    assert mirrored["flip"] and not plain["flip"]
    np.testing.assert_allclose(mirrored["hm"], plain["hm"][..., ::-1])
    np.testing.assert_allclose(mirrored["wh"], plain["wh"])
    np.testing.assert_allclose(mirrored["dep"], plain["dep"])
    mask = plain["mask"] > 0
    assert mask.sum() == 3
    # Sub-cell offsets mirror about the cell: x -> 1 - x; so do the 3D centres' offsets from the peak cell.
    np.testing.assert_allclose(mirrored["reg"][mask, 0], 1 - plain["reg"][mask, 0], atol=1e-5)
    np.testing.assert_allclose(mirrored["reg"][mask, 1], plain["reg"][mask, 1], atol=1e-5)
    np.testing.assert_allclose(mirrored["amodal"][mask, 0], 1 - plain["amodal"][mask, 0], atol=1e-4)


def test_weight_average_blends_floats_and_copies_counters():
    cfg = profile_config("smoke", {"input_size": SIZE})
    average, model = build_model(cfg, 1), build_model(cfg, 1)
    for p in model.parameters():
        torch.nn.init.normal_(p)
    before = {k: v.clone() for k, v in average.state_dict().items()}
    model.state_dict()["levels.0.0.conv1.1.num_batches_tracked"].fill_(7)
    _update_average(average, model, 0.9)
    after, cur = average.state_dict(), model.state_dict()
    name = "heads.hm.weight"
    torch.testing.assert_close(after[name], 0.9 * before[name] + 0.1 * cur[name])
    assert int(after["levels.0.0.conv1.1.num_batches_tracked"]) == 7


def test_a_cropped_sample_is_the_window_of_the_full_one():
    """train_crop: the targets and images of a window are those of the full frame, cut out (boxes cut by the
    window's edge are clipped, as at an image border)."""
    from baselines.centertrack.targets import DOWN
    from baselines.centertrack.train import collate

    seq, tracks = toy_scene()
    full_cfg = profile_config("smoke", {"input_size": SIZE, "flip": 0.0, "hm_disturb": 0.0, "lost_disturb": 0.0,
                                        "fp_disturb": 0.0})
    crop_cfg = {**full_cfg, "train_crop": (96, 64)}
    data = prepare({"toy": seq}, tracks, ("Car",), full_cfg)[0]
    full = make_sample(data, 2, full_cfg, 1, np.random.default_rng(0))
    wf = SIZE[0] // DOWN
    seen, whole = set(), 0
    for seed in range(12):
        cut = make_sample(data, 2, crop_cfg, 1, np.random.default_rng(seed))
        x, y, w, h = (int(v) for v in cut["window"])
        seen.add(x)
        assert (w, h) == (96, 64) and x % DOWN == 0 and 0 <= x <= SIZE[0] - w
        assert cut["hm"].shape == (1, h // DOWN, w // DOWN) and cut["pre_hm"].shape == (1, h, w)
        for k in np.flatnonzero(cut["mask"]):
            j = np.flatnonzero((full["mask"] > 0) & np.isclose(full["dep"][:, 0], cut["dep"][k, 0]))
            assert len(j) == 1  # every object in the window is one of the frame's, with its depth
            j = j[0]
            # Its 3D centre projects to the same image point through the shifted principal point.
            u_cut = (cut["ind"][k] % (w // DOWN) + cut["amodal"][k, 0]) * DOWN + x
            u_full = (full["ind"][j] % wf + full["amodal"][j, 0]) * DOWN
            assert abs(u_cut - u_full) < 1e-3
            x1 = (full["ind"][j] % wf + full["reg"][j, 0] - full["wh"][j, 0] / 2) * DOWN
            if x <= x1 and x1 + full["wh"][j, 0] * DOWN <= x + w:  # wholly inside: the same peak, moved
                whole += 1
                assert cut["ind"][k] % (w // DOWN) + x // DOWN == full["ind"][j] % wf
                np.testing.assert_allclose(cut["wh"][k], full["wh"][j])
                np.testing.assert_allclose(cut["reg"][k], full["reg"][j], atol=1e-5)
            else:  # cut by the window: a narrower box
                assert cut["wh"][k, 0] < full["wh"][j, 0]
        _, img, _ = collate([cut], [data.images[cut["img_index"]]], torch.device("cpu"))
        _, img_full, _ = collate([full], [data.images[full["img_index"]]], torch.device("cpu"))
        torch.testing.assert_close(img, img_full[..., y:y + h, x:x + w])
    assert len(seen) > 3 and whole > 3  # the window moves, and holds whole objects


def test_crop_training_runs_and_bad_windows_are_refused(tmp_path):
    import pytest

    from baselines.centertrack.learner import CenterTrackLearner
    from bench.config import method_params
    from bench.interface import RunContext, SplitView, TrainView

    seq, tracks = toy_scene(num_frames=4)
    params = {**method_params("smoke", "centertrack"), "input_size": SIZE, "steps": 2, "track_thresh": 0.0,
              "new_thresh": 0.0, "max_depth": 1e9}
    learner = CenterTrackLearner(**params, train_crop=(96, 32), threads=1)
    ctx = RunContext(seed=0, work_dir=tmp_path)
    learner.fit(TrainView(name="train", sequences={"toy": seq}, frame_rate=10.0, labels=tracks, budget=None),
                tracks, ctx)
    pred = learner.predict(SplitView(name="val", sequences={"toy": seq}, frame_rate=10.0), ctx)
    assert len(pred) and pred["x2"].max() > 96  # inference sees the whole frame, not the window
    for bad in ((100, 32), (96,), "96x32"):
        with pytest.raises(ValueError, match="train_crop"):
            CenterTrackLearner(**params, train_crop=bad)
    too_big = CenterTrackLearner(**params, train_crop=(192, 32), threads=1)
    with pytest.raises(ValueError, match="larger than the input"):
        too_big.fit(TrainView(name="train", sequences={"toy": seq}, frame_rate=10.0, labels=tracks, budget=None),
                    tracks, ctx)


def test_zoomed_3d_boxes_project_onto_the_zoomed_2d_boxes_with_the_same_look():
    """zoom: the same scene with every object `scale` times nearer; its 3D boxes project through the zoomed
    intrinsics onto the zoomed 2D boxes, keep their size, and are seen at the same observation angle."""
    from baselines.centertrack.targets import zoom_intrinsics, zoom_objects

    boxes3d = np.array([[3.0, 1.6, 15.0, 1.5, 1.7, 4.2, 0.7], [-2.0, 1.6, 25.0, 1.5, 1.7, 4.2, -2.5]])
    boxes = project_boxes_2d(boxes3d, K, SIZE)
    objects = Objects(boxes, boxes3d, np.zeros(2, np.int64), np.arange(2), np.ones(2))
    x0, y0, scale = 20.0, 6.0, 1.6
    zoomed = zoom_objects(objects, x0, y0, scale, SIZE)
    assert len(zoomed.boxes) == 2
    np.testing.assert_allclose(zoomed.boxes, np.clip((boxes - [x0, y0, x0, y0]) * scale, 0, [*SIZE, *SIZE]))
    np.testing.assert_allclose(zoomed.boxes3d[:, 2], boxes3d[:, 2] / scale)
    np.testing.assert_allclose(zoomed.boxes3d[:, [0, 1, 3, 4, 5]], boxes3d[:, [0, 1, 3, 4, 5]])
    np.testing.assert_allclose(observation_angle(zoomed.boxes3d), observation_angle(boxes3d), atol=1e-9)
    # The projected 3D centre lands where the zoom puts the original one (the amodal target stays exact).
    from bench.data.geometry import box_center, project_points

    centres = project_points(box_center(boxes3d), K)
    np.testing.assert_allclose(project_points(box_center(zoomed.boxes3d), zoom_intrinsics(K, x0, y0, scale)),
                               (centres - [x0, y0]) * scale, atol=1e-9)
    # A zoom deep into one corner drops the objects it leaves out.
    assert len(zoom_objects(objects, 0.0, 0.0, 4.0, SIZE).boxes) < 2


def test_zoom_image_resamples_the_window_bilinearly():
    from baselines.centertrack.train import zoom_image

    w, h = SIZE
    ramp = torch.arange(w, dtype=torch.float32).expand(3, h, w).clone()  # value = column index
    x0, y0, scale = 0.25, 0.1, 2.0
    out = zoom_image(ramp, x0, y0, scale)
    assert out.shape == ramp.shape
    # Output pixel j's centre (j + 0.5) is input point x0 w + (j + 0.5) / scale, where the ramp reads that - 0.5.
    expected = x0 * w + (torch.arange(w) + 0.5) / scale - 0.5
    torch.testing.assert_close(out[0, h // 2], expected)
    torch.testing.assert_close(zoom_image(ramp, 0.0, 0.0, 1.0), ramp)  # identity, up to the grid's rounding


def test_a_zoomed_sample_is_the_zoomed_full_one():
    """The targets and images of a zoomed sample are those of the full frame, zoomed: every object is one of
    the frame's, `scale` times nearer, at the zoomed place."""
    from baselines.centertrack.targets import DOWN
    from baselines.centertrack.train import collate, normalise, zoom_image

    seq, tracks = toy_scene()
    full_cfg = profile_config("smoke", {"input_size": SIZE, "flip": 0.0, "hm_disturb": 0.0, "lost_disturb": 0.0,
                                        "fp_disturb": 0.0})
    zoom_cfg = {**full_cfg, "zoom": 2.5}
    data = prepare({"toy": seq}, tracks, ("Car",), full_cfg)[0]
    full = make_sample(data, 2, full_cfg, 1, np.random.default_rng(0))
    assert tuple(full["zoom"]) == (0.0, 0.0, 1.0)
    wf, scales, checked = SIZE[0] // DOWN, set(), 0
    for seed in range(12):
        cut = make_sample(data, 2, zoom_cfg, 1, np.random.default_rng(seed))
        x0, y0, scale = (float(v) for v in cut["zoom"])
        scales.add(round(scale, 3))
        assert 1.0 <= scale <= 2.5 and cut["hm"].shape == full["hm"].shape
        for k in np.flatnonzero(cut["mask"]):
            j = np.flatnonzero((full["mask"] > 0) & np.isclose(full["dep"][:, 0], cut["dep"][k, 0] * scale))
            assert len(j) == 1  # one of the frame's objects, scale times nearer
            u_cut = (cut["ind"][k] % wf + cut["amodal"][k, 0]) * DOWN
            u_full = (full["ind"][j[0]] % wf + full["amodal"][j[0], 0]) * DOWN
            assert abs(u_cut - (u_full - x0 * SIZE[0]) * scale) < 1e-3
            checked += 1
        _, img, _ = collate([cut], [data.images[cut["img_index"]]], torch.device("cpu"))
        whole = normalise(data.images[cut["img_index"]])[0]
        torch.testing.assert_close(img[0], zoom_image(whole, x0, y0, scale))
    assert len(scales) > 6 and checked > 6
