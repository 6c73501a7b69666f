"""The synthetic world: determinism, schema, and ground truth that agrees with the rendered layers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.data import CLASSES, DONTCARE, validate_tracks
from bench.data.geometry import project_boxes_2d
from bench.data.synth import PRESETS, SCALES, config_for, generate, stats
from bench.data.synth.labels import occlusion_level, truncation_level, visibility_bin
from bench.data.synth.world import LANE, _footprint_overlap, build_world


@pytest.fixture(scope="module")
def kitti():
    return generate("synth-kitti", "smoke", seed=0)


@pytest.fixture(scope="module")
def dense():
    return generate("synth-dense", "smoke", seed=0)


def _rows_with_pixels(ds, split_name="train"):
    """Yield (row, instance mask) for labelled boxes of a split."""
    split = getattr(ds, split_name)
    for row in split.tracks[split.tracks["cls"] != DONTCARE].itertuples(index=False):
        seq = split.sequences[row.seq]
        i = seq.index_of(row.frame)
        yield row, split.layers[row.seq]["instance"][i] == row.track_id


def test_same_seed_same_data_and_other_seed_differs(kitti):
    again = generate("synth-kitti", "smoke", seed=0)
    pd.testing.assert_frame_equal(kitti.train.tracks, again.train.tracks)
    pd.testing.assert_frame_equal(kitti.meta["box_extras"], again.meta["box_extras"])
    for name, seq in kitti.train.sequences.items():
        np.testing.assert_array_equal(seq.images, again.train.sequences[name].images)
        np.testing.assert_array_equal(seq.cam_to_world, again.train.sequences[name].cam_to_world)
        for layer, array in kitti.train.layers[name].items():
            np.testing.assert_array_equal(array, again.train.layers[name][layer])
    assert kitti.data_hash == again.data_hash
    other = generate("synth-kitti", "smoke", seed=1)
    assert other.data_hash != kitti.data_hash
    assert not np.array_equal(other.train.sequences["0000"].images, kitti.train.sequences["0000"].images)
    assert not other.train.tracks.equals(kitti.train.tracks)


def test_tables_follow_the_schema(kitti):
    for split in (kitti.train, kitti.val):
        validate_tracks(split.tracks, "synthetic")
        assert set(split.tracks["cls"]) <= set(CLASSES) | {DONTCARE}
        dc = split.tracks[split.tracks["cls"] == DONTCARE]
        assert (dc["track_id"] == -1).all() and dc[["x", "y", "z", "h", "w", "l", "yaw"]].isna().all().all()
        real = split.tracks[split.tracks["cls"] != DONTCARE]
        assert (real["track_id"] >= 0).all() and real[["x", "z", "h"]].notna().all().all()
        for name, seq in split.sequences.items():
            t, h, w = split.layers[name]["depth"].shape
            assert seq.images.shape == (t, h, w, 3) and seq.images.dtype == np.uint8
            assert (w, h) == seq.image_size == kitti.meta["image_size"]
            assert split.layers[name]["instance"].dtype == np.int32
            assert split.layers[name]["surface"].shape == (t, h, w, 3)


def test_2d_boxes_contain_their_masks_and_occlusion_matches_the_mask(kitti):
    extras = kitti.meta["box_extras"]
    checked = 0
    for row, mask in _rows_with_pixels(kitti):
        frac = extras.loc[("train", row.seq, row.frame, row.track_id), "visible_fraction"]
        assert row.occlusion == occlusion_level(frac) and row.visibility == visibility_bin(frac)
        assert (mask.sum() > 0) == (frac > 0) == (row.occlusion < 3)
        if mask.sum() == 0:
            continue
        v, u = np.nonzero(mask)
        inside = (u + 0.5 >= row.x1 - 1) & (u + 0.5 <= row.x2 + 1) & (v + 0.5 >= row.y1 - 1) & (v + 0.5 <= row.y2 + 1)
        assert inside.mean() >= 0.97, row
        checked += 1
    assert checked > 50


def test_depth_and_surface_points_agree_with_the_3d_box(kitti):
    split = kitti.train
    seq = split.sequences["0000"]
    kinv = np.linalg.inv(seq.intrinsics[0])
    checked = 0
    for row, mask in _rows_with_pixels(kitti):
        if row.seq != "0000" or mask.sum() == 0:
            continue
        i = seq.index_of(row.frame)
        v, u = np.nonzero(mask)
        depth = split.layers["0000"]["depth"][i][v, u]
        cam = (np.stack([u + 0.5, v + 0.5, np.ones_like(u)], -1) @ kinv.T) * depth[:, None]
        s = split.layers["0000"]["surface"][i][v, u].astype(float)
        c, sn = np.cos(row.yaw), np.sin(row.yaw)
        from_box = np.stack([c * s[:, 0] + sn * s[:, 2], s[:, 1], -sn * s[:, 0] + c * s[:, 2]], -1)
        from_box += [row.x, row.y, row.z]
        # The camera pitches by about a degree, which the KITTI box (upright in the camera) ignores.
        err = np.linalg.norm(from_box - cam, axis=1)
        assert np.all(err < 0.1 + 0.02 * depth), (row, err.max())
        assert np.all(np.abs(s[:, 0]) <= row.l / 2 + 1e-3) and np.all(np.abs(s[:, 2]) <= row.w / 2 + 1e-3)
        checked += 1
    assert checked > 10
    # Sky is infinitely far, ground and scenery finite; no object pixel has a NaN surface point.
    layers = split.layers["0000"]
    assert np.isinf(layers["depth"]).any() and np.isfinite(layers["depth"]).mean() > 0.5
    on_object = layers["instance"] >= 0
    assert np.isfinite(layers["surface"][on_object]).all() and np.isnan(layers["surface"][~on_object]).all()


def test_truncation_marks_boxes_at_the_image_border(kitti):
    w, h = kitti.meta["image_size"]
    real = kitti.train.tracks[kitti.train.tracks["cls"] != DONTCARE]
    seq = kitti.train.sequences["0000"]
    boxes = real[["x", "y", "z", "h", "w", "l", "yaw"]].to_numpy()
    full = project_boxes_2d(boxes, seq.intrinsics[0])
    inside = (full[:, 0] >= 0) & (full[:, 1] >= 0) & (full[:, 2] <= w) & (full[:, 3] <= h)
    assert (real["truncation"].to_numpy()[inside] == 0).all()
    assert (real["truncation"].to_numpy()[~inside] >= 0).all()
    touching = (real["x1"] <= 0) | (real["x2"] >= w) | (real["y2"] >= h)
    assert (real["truncation"] > 0).sum() > 0
    assert touching[real["truncation"] > 0].all()
    assert list(truncation_level(np.array([0.0, 0.3, 0.7]))) == [0, 1, 2]


def test_dontcare_for_tiny_or_far_objects_only(kitti):
    cfg = config_for("synth-kitti", "smoke")
    min_height = 10.0 * cfg.height / 375.0
    for split in (kitti.train, kitti.val):
        t = split.tracks
        real, dc = t[t["cls"] != DONTCARE], t[t["cls"] == DONTCARE]
        assert len(dc) > 0
        assert ((real["y2"] - real["y1"]) >= min_height - 1e-9).all() and (real["z"] <= cfg.max_depth).all()


def test_look_alikes_share_shape_and_paint(kitti):
    attrs = kitti.meta["track_attrs"]
    vehicles = attrs[attrs["cls"].isin(["Car", "Van", "Truck"])]
    twins = vehicles[vehicles.duplicated(["split", "seq", "appearance"], keep=False)]
    assert len(twins) > 0 and stats(kitti)["train"]["lookalike_share"] > 0
    # Twins really are identical in size: same shape model, same class.
    for _, group in twins.groupby(["split", "seq", "appearance"]):
        assert group["cls"].nunique() == 1
    t = kitti.train.tracks
    sizes = t[t["cls"] != DONTCARE].groupby(["seq", "track_id"])[["h", "w", "l"]].first()
    compared = 0
    for (split, seq, _), group in twins.groupby(["split", "seq", "appearance"]):
        keys = [(seq, i) for i in group["track_id"] if split == "train" and (seq, i) in sizes.index]
        if len(keys) > 1:
            np.testing.assert_allclose(sizes.loc[keys[0]].to_numpy(), sizes.loc[keys[1]].to_numpy())
            compared += 1
    assert compared > 0


def test_box_extras_lidar_points_and_velocity(kitti):
    extras = kitti.meta["box_extras"]
    real = kitti.train.tracks[kitti.train.tracks["cls"] != DONTCARE]
    keys = list(zip(["train"] * len(real), real["seq"], real["frame"], real["track_id"], strict=True))
    e = extras.loc[keys]
    assert (e["num_lidar_pts"].to_numpy()[e["visible_fraction"].to_numpy() == 0] == 0).all()
    assert (e["num_lidar_pts"] > 0).mean() > 0.5
    # Parked cars stand still; something in the scene moves.
    speed = np.hypot(e["vx"], e["vy"])
    assert speed.min() == 0 and speed.max() > 0.5


def test_point_tracks_visibility_is_the_depth_test(dense):
    split = dense.train
    name = next(iter(split.points))
    pts, layers, seq = split.points[name], split.layers[name], split.sequences[name]
    t_len, n = pts.visible.shape
    assert pts.xyz.shape == (t_len, n, 3) and pts.queries.shape == (n, 3)
    K = seq.intrinsics[0]
    uvw = pts.xyz.astype(float) @ K.T
    uv = uvw[..., :2] / uvw[..., 2:3]
    w, h = seq.image_size
    in_image = (pts.xyz[..., 2] > 0.1) & (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
    assert not (pts.visible & ~in_image).any()
    t_idx, p_idx = np.nonzero(in_image)
    ui = uv[t_idx, p_idx, 0].astype(int)
    vi = uv[t_idx, p_idx, 1].astype(int)
    rendered = layers["depth"][t_idx, vi, ui]
    z = pts.xyz[t_idx, p_idx, 2]
    expect = rendered >= z - np.maximum(0.05, 0.03 * z)
    np.testing.assert_array_equal(pts.visible[t_idx, p_idx], expect)
    # At its query frame each point sits at its query pixel and is visible.
    q = pts.queries
    qt = q[:, 2].astype(int)
    np.testing.assert_allclose(uv[qt, np.arange(n)], q[:, :2], atol=1e-3)
    assert pts.visible[qt, np.arange(n)].all()
    # Object points move with their objects: some trajectories are not fixed in the world.
    assert 0.2 < pts.visible.mean() < 1.0


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_generates_at_smoke_scale(preset):
    ds = generate(preset, "smoke", seed=3, progress=preset == "synth-mot")  # the rich bar must not break it
    cfg = config_for(preset, "smoke")
    assert ds.name == preset and ds.frame_rate == cfg.frame_rate
    assert len(ds.train.sequences) == cfg.train_seqs and len(ds.val.sequences) == cfg.val_seqs
    assert not set(ds.train.sequences) & set(ds.val.sequences)
    seq = next(iter(ds.train.sequences.values()))
    np.testing.assert_allclose(np.diff(seq.timestamps), 1.0 / cfg.frame_rate)
    assert len(ds.train.tracks) > 0
    assert set(ds.meta["box_extras"].columns) >= {"num_lidar_pts", "vx", "vy"}
    if preset == "synth-mot":
        for split in ("train", "val"):
            det = ds.meta["public_detections"][split]
            validate_tracks(det, "dets", unique_ids=False)
            assert (det["track_id"] == -1).all() and det["score"].between(0, 1).all()
    if preset == "synth-dense":
        assert set(ds.train.points) == set(ds.train.sequences)
    s = stats(ds)
    assert s["train"]["boxes"] == int((ds.train.tracks["cls"] != DONTCARE).sum())
    assert abs(sum(s["train"]["occlusion"].values()) - 1) < 1e-3
    assert 0 <= s["train"]["lookalike_share"] <= 1


def test_stats_stays_a_function_after_use(kitti):
    import bench.data.synth as synth

    synth.stats(kitti)
    assert callable(synth.stats)  # a submodule named "stats" would shadow it once imported


def test_scales_grow_and_unknown_names_get_a_hint():
    sizes = [config_for("synth-kitti", scale) for scale in SCALES]
    assert [c.width for c in sizes] == sorted(c.width for c in sizes)
    assert config_for("synth-kitti", "quick").width == 416 and config_for("synth-kitti", "quick").height == 128
    with pytest.raises(ValueError, match="did you mean 'synth-kitti'"):
        generate("synth-kiti", "smoke")
    with pytest.raises(ValueError, match="did you mean 'quick'"):
        generate("synth-kitti", "quik")


def test_nuscenes_keyframes_are_every_sixth_simulated_frame():
    cfg = config_for("synth-nuscenes", "smoke")
    assert cfg.sim_rate / cfg.frame_rate == 6 and cfg.frame_rate == 2


# --- Motion: movers must not be trivially interpolable (constant velocity on straight lines). ---

@pytest.fixture(scope="module")
def quick_worlds():
    """The layouts (no rendering, ~0.1 s each) of synth-kitti quick seed 0, drawn as generate() draws them."""
    cfg = config_for("synth-kitti", "quick")
    preset = PRESETS.index("synth-kitti")
    keys = [[0, preset, 0, i] for i in range(cfg.train_seqs)] + [[0, preset, 1, i] for i in range(cfg.val_seqs)]
    return [build_world(np.random.default_rng(key), cfg, cfg.frames) for key in keys]


VEHICLE_MOTIONS = ("leader", "oncoming", "same", "crossing")


def _movers(worlds, motions=(*VEHICLE_MOTIONS, "cyclist", "walker")):
    return [ob for w in worlds for ob in w.objects if ob.motion in motions and np.ptp(ob.xy, axis=0).max() > 0.5]


def test_movers_change_speed_and_some_stop(quick_worlds):
    vehicles = _movers(quick_worlds, VEHICLE_MOTIONS)
    walkers = _movers(quick_worlds, ("walker",))
    assert len(vehicles) >= 20 and len(walkers) >= 5
    for group, spread in ((vehicles, 1.0), (walkers, 0.2), (_movers(quick_worlds, ("cyclist",)), 0.3)):
        speed = [np.linalg.norm(ob.velocity, axis=1) for ob in group]
        varied = np.mean([np.ptp(s) > spread for s in speed])
        assert varied >= 0.8, (group[0].motion, varied)
    # Stops (stop lines, traffic) and pauses: a mover standing still for a while, then moving again.
    assert sum(((s := np.linalg.norm(ob.velocity, axis=1)) < 0.05).any() and s.max() > 3 for ob in vehicles) >= 2
    assert sum((np.linalg.norm(ob.velocity, axis=1) < 0.05).any() for ob in walkers) >= 2


def test_some_vehicles_turn_and_some_change_lanes(quick_worlds):
    vehicles = _movers(quick_worlds, VEHICLE_MOTIONS)
    turns = np.array([np.ptp(np.unwrap(ob.heading)) for ob in vehicles])
    assert (turns > np.pi / 4).sum() >= 2  # turned at an intersection, along an arc
    # A lane change: a vehicle that keeps its street axis but ends about one lane width to the side.
    shifts = []
    for ob in vehicles:
        if np.ptp(np.unwrap(ob.heading)) < np.pi / 4:
            axis = np.round(ob.heading[0] / (np.pi / 2)) * (np.pi / 2)
            side = ob.xy @ np.array([-np.sin(axis), np.cos(axis)])
            shifts.append(abs(side[-1] - side[0]))
    assert any(abs(s - LANE) < 0.2 for s in shifts)


def test_headings_follow_the_direction_of_travel(quick_worlds):
    checked = 0
    for ob in _movers(quick_worlds):
        speed = np.linalg.norm(ob.velocity, axis=1)
        moving = speed > 1.0
        moving[[0, -1]] = False  # the velocity is a one-sided difference there
        travel = np.arctan2(ob.velocity[moving, 1], ob.velocity[moving, 0])
        error = np.abs(np.angle(np.exp(1j * (travel - ob.heading[moving]))))
        assert np.rad2deg(error).max() < 5.0, (ob.motion, np.rad2deg(error).max())
        checked += int(moving.sum())
    assert checked > 1000


def test_movers_keep_clear_of_each_other_parked_cars_and_buildings(quick_worlds):
    for w in quick_worlds:
        movers = [ob for ob in w.objects if ob.motion != "parked"]
        parked = [ob for ob in w.objects if ob.motion == "parked"]
        parked_xy = np.array([ob.xy[0] for ob in parked])
        walls = w.static.boxes[np.isin(w.static.material, (0, 4))]
        for i, ob in enumerate(movers):
            near = np.flatnonzero(np.linalg.norm(ob.xy[:, None] - parked_xy[None], axis=-1).min(0) < 8.0)
            for other in [parked[j] for j in near] + movers[i + 1:]:
                assert not _footprint_overlap(ob.xy, ob.heading, (ob.hwl[2], ob.hwl[1]), other.xy, other.heading,
                                              (other.hwl[2], other.hwl[1]), margin=0.0), (ob.motion, other.motion)
            x, y = ob.xy[:, :1], ob.xy[:, 1:]
            assert not ((x > walls[:, 0]) & (x < walls[:, 1]) & (y > walls[:, 2]) & (y < walls[:, 3])).any()


def test_world_layout_is_deterministic(quick_worlds):
    cfg = config_for("synth-kitti", "quick")
    again = build_world(np.random.default_rng([0, PRESETS.index("synth-kitti"), 0, 0]), cfg, cfg.frames)
    assert len(again.objects) == len(quick_worlds[0].objects)
    for a, b in zip(again.objects, quick_worlds[0].objects, strict=True):
        np.testing.assert_array_equal(a.xy, b.xy)
        np.testing.assert_array_equal(a.heading, b.heading)
