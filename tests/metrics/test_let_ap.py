"""Waymo LET-3D-AP family: golden parity with the official op, geometry, AP integration, adapters."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data.tracks import make_tracks
from bench.metrics.let_ap import (
    CAMERA_LOCATION,
    LET_CONFIG,
    LOOSE_3D_CONFIG,
    PLAIN_3D_CONFIG,
    DetectionConfig,
    LetConfig,
    WaymoObjects,
    detection_metrics,
    evaluate_protocol,
    let_align,
    load_waymo_parquet,
    mean_average_precision,
    pairwise_iou_3d,
    tracks_to_waymo,
)

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "metrics" / "waymo").glob("*.json"))
TOL = 1e-4  # the official op works in float32
# The op's configs in the fixtures (scripts/golden/make_waymo_golden.py CONFIGS) and ours.
OFFICIAL_CONFIGS = {"let": LET_CONFIG, "3d": PLAIN_3D_CONFIG, "3d@0.05": LOOSE_3D_CONFIG}


def test_fixtures_exist():
    assert len(FIXTURES) >= 10


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_matches_official_op(path: Path):
    case = json.loads(path.read_text())
    gt, pred = case["gt"], case["pred"]
    g = WaymoObjects(gt["boxes"], gt["types"], gt["frames"], difficulty=gt["difficulty"])
    p = WaymoObjects(pred["boxes"], pred["types"], pred["frames"], scores=pred["scores"], overlap_nlz=pred["nlz"])
    assert set(case["official"]) == set(OFFICIAL_CONFIGS)
    for label, base in OFFICIAL_CONFIGS.items():
        config = replace(base, breakdowns=("OBJECT_TYPE", "RANGE"), difficulty_levels=(1, 2))
        ours = detection_metrics(p, g, config)
        official = case["official"][label]
        assert set(official) == set(ours)
        for name, want in official.items():
            got = ours[name]
            assert got.ap == pytest.approx(want["ap"], abs=TOL), (label, name, "AP")
            assert got.aph == pytest.approx(want["aph"], abs=TOL), (label, name, "APH")
            assert got.apl == pytest.approx(want["apl"], abs=TOL), (label, name, "APL")
            if "precision" in want:
                np.testing.assert_allclose(got.precision, want["precision"], atol=TOL)
                np.testing.assert_allclose(got.recall, want["recall"], atol=TOL)
                np.testing.assert_allclose(got.precision_ha, want["precision_ha"], atol=TOL)
                np.testing.assert_allclose(got.precision_la, want["precision_la"], atol=TOL)


def _box(x, y, z=1.0, length=4.0, width=2.0, height=1.5, heading=0.0):
    return [x, y, z, length, width, height, heading]


def test_iou_3d_hand_cases():
    a = np.array([_box(10, 0), _box(10, 0), _box(10, 0), _box(10, 0), _box(10, 0, length=2, width=2)])
    b = np.array([_box(10, 0), _box(12, 0), _box(10, 0, z=1.75), _box(30, 0),
                  _box(10, 0, length=2, width=2, heading=np.pi / 4)])
    iou = pairwise_iou_3d(a, b)
    octagon = 8 * (np.sqrt(2) - 1)  # a unit-half-width square and its 45-degree turn overlap in a regular octagon
    expected = [1.0, 1 / 3, 1 / 3, 0.0, octagon / (8 - octagon)]
    np.testing.assert_allclose(iou, expected, atol=1e-9)
    # Boxes at or below the 1 cm dimension guard have IoU 0 (iou.cc).
    assert pairwise_iou_3d([_box(0, 0, width=0.01)], [_box(0, 0, width=0.01)])[0] == 0.0


def test_longitudinal_affinity_and_alignment():
    sensor = np.array(CAMERA_LOCATION)
    gt = sensor + np.array([[20.0, 0.0, 0.0]])
    pred = sensor + np.array([[21.0, 0.0, 0.0]])  # 1 m too far, tolerance max(0.1 * 20, 0.5) = 2 m
    aligned, la = let_align(pred, gt, LetConfig())
    assert la[0] == pytest.approx(0.5)
    np.testing.assert_allclose(aligned, gt - sensor, atol=1e-9)  # slid back onto the GT along the line of sight
    near = let_align(sensor + [[3.3, 0, 0]], sensor + [[3.0, 0, 0]], LetConfig())[1]
    assert near[0] == pytest.approx(1 - 0.3 / 0.5)  # the 0.5 m minimum tolerance applies close to the sensor
    behind = let_align(sensor + [[-20.0, 0, 0]], sensor + [[20.0, 0, 0]], LetConfig())[1]
    assert behind[0] == 0.0


def test_average_precision_integration():
    cutoffs = 101
    assert mean_average_precision(np.ones(cutoffs), np.ones(cutoffs)) == pytest.approx(1.0)
    # One operating point (P 0.5, R 0.5): the envelope is 0.5 up to recall 0.5, nothing after.
    assert mean_average_precision(np.array([0.5, 1.0]), np.array([0.5, 0.0])) == pytest.approx(0.25)


def test_longitudinal_error_is_forgiven_by_let_only():
    rng = np.random.default_rng(0)
    n = 30
    r = rng.uniform(15, 60, n)
    a = rng.uniform(-1, 1, n)
    sensor = np.array(CAMERA_LOCATION)
    centre = sensor + np.column_stack([r * np.cos(a), r * np.sin(a), np.full(n, -1.4)])
    gt_boxes = np.column_stack([centre, np.tile([4.5, 1.9, 1.6], (n, 1)), rng.uniform(-3, 3, n)])
    pred_boxes = gt_boxes.copy()
    pred_boxes[:, :3] = sensor + (centre - sensor) * 1.07  # 7 % too far: inside LET's 10 % tolerance
    gt = WaymoObjects(gt_boxes, np.ones(n), np.arange(n) % 5)
    pred = WaymoObjects(pred_boxes, np.ones(n), np.arange(n) % 5, scores=np.full(n, 0.8))
    let = detection_metrics(pred, gt, LET_CONFIG)["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    plain = detection_metrics(pred, gt, PLAIN_3D_CONFIG)["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    assert let.ap == pytest.approx(1.0)
    assert 0.0 < let.apl < 0.7  # the localisation penalty shows in APL
    assert plain.ap < 0.5


def _tracks(rows):
    df = pd.DataFrame(rows)
    df[["x1", "y1", "x2", "y2"]] = [0.0, 0.0, 10.0, 10.0]  # 2D boxes play no part in LET-AP
    return make_tracks(df)


def _scene(shift_z: float = 0.0, score: float = 0.9):
    rows = []
    for seq in ("a", "b"):
        for frame in range(3):
            for tid, (cls, x, z, yaw) in enumerate([("Car", -3.0, 15.0, 0.3), ("Pedestrian", 2.0, 9.0, 1.0),
                                                    ("Cyclist", 4.0, 25.0, -1.2), ("DontCare", 0, 30, 0)]):
                size = {"Car": (1.5, 1.8, 4.2), "Pedestrian": (1.7, 0.6, 0.8), "Cyclist": (1.7, 0.6, 1.8),
                        "DontCare": (1, 1, 1)}[cls]
                # A depth error moves the box centre along the camera ray (what LET forgives).
                k = 1 + shift_z
                y = (1.6 - size[0] / 2) * k + size[0] / 2
                rows.append(dict(seq=seq, frame=frame, track_id=tid, cls=cls, score=score, x=(x + frame) * k, y=y,
                                 z=z * k, h=size[0], w=size[1], l=size[2], yaw=yaw))
    return _tracks(rows)


def test_camera_to_vehicle_conversion():
    table = _tracks([dict(seq="s", frame=0, track_id=1, cls="Car", score=1.0, x=2.0, y=1.5, z=20.0,
                          h=1.5, w=1.8, l=4.0, yaw=0.0)])
    objects, index = tracks_to_waymo(table)
    x, y, z, length, width, height, heading = objects.boxes[0]
    # Forward = camera z, left = -camera x, up = -camera y, plus the mount; centre is h/2 above the bottom.
    assert (x, y, z) == pytest.approx((20.0 + 1.43, -2.0, -(1.5 - 0.75) + 2.18))
    assert (length, width, height) == pytest.approx((4.0, 1.8, 1.5))
    assert heading == pytest.approx(-np.pi / 2)  # KITTI yaw 0 points along camera +x = vehicle -y
    assert index == {("s", 0): 0}


def test_evaluate_protocol_on_track_tables():
    gt = _scene()
    perfect = evaluate_protocol(gt, _scene(), sequences=None)
    assert perfect.protocol == "waymo-let"
    for key in ("LET-3D-AP", "LET-3D-APL", "LET-3D-APH", "3D-AP", "3D-APH", "LET-3D-AP/VEHICLE"):
        assert perfect.summary[key] == pytest.approx(1.0), key
    assert set(perfect.per_sequence["seq"]) == {"a", "b"}
    far = evaluate_protocol(gt, _scene(shift_z=0.06), per_sequence=False)
    assert far.summary["LET-3D-AP"] == pytest.approx(1.0)
    assert far.summary["LET-3D-APL"] < 0.9
    assert far.summary["3D-AP"] < far.summary["LET-3D-AP"]
    assert far.per_sequence.empty


def test_protocol_is_registered():
    from bench.metrics.protocols import get_protocol

    assert get_protocol("waymo-let") is evaluate_protocol


V2 = "[LiDARBoxComponent]"


def _v2_frame(n: int, with_score: bool) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({
        "key.segment_context_name": ["seg"] * n, "key.frame_timestamp_micros": np.arange(n) // 2,
        "key.laser_object_id": [f"o{i}" for i in range(n)],
        f"{V2}.box.center.x": rng.uniform(5, 40, n), f"{V2}.box.center.y": rng.uniform(-5, 5, n),
        f"{V2}.box.center.z": np.ones(n), f"{V2}.box.size.x": np.full(n, 4.5), f"{V2}.box.size.y": np.full(n, 1.9),
        f"{V2}.box.size.z": np.full(n, 1.6), f"{V2}.box.heading": rng.uniform(-3, 3, n), f"{V2}.type": np.ones(n, int)})
    if with_score:
        df["score"] = 0.7
    return df


def test_parquet_loader(tmp_path: Path):
    gt_df = _v2_frame(6, with_score=False)
    gt_df.to_parquet(tmp_path / "gt.parquet")
    _v2_frame(6, with_score=True).to_parquet(tmp_path / "pred.parquet")
    gt, pred = load_waymo_parquet(tmp_path / "gt.parquet", tmp_path / "pred.parquet")
    assert len(gt) == len(pred) == 6 and list(gt.frame_ids) == [0, 0, 1, 1, 2, 2]
    result = evaluate_protocol(gt, pred)
    assert result.summary["LET-3D-AP/VEHICLE"] == pytest.approx(1.0)

    gt_df.drop(columns=[f"{V2}.box.heading"]).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad\.parquet: missing columns .*box\.heading"):
        load_waymo_parquet(tmp_path / "bad.parquet", tmp_path / "pred.parquet")
    with pytest.raises(ValueError, match=r"gt\.parquet: missing columns \['score'\]"):
        load_waymo_parquet(tmp_path / "gt.parquet", tmp_path / "gt.parquet")
    unknown = _v2_frame(6, with_score=True)
    unknown.loc[4, "key.frame_timestamp_micros"] = 99
    unknown.to_parquet(tmp_path / "unknown.parquet")
    with pytest.raises(ValueError, match=r"unknown\.parquet: row 5: frame \('seg', 99\)"):
        load_waymo_parquet(tmp_path / "gt.parquet", tmp_path / "unknown.parquet")
    nan = _v2_frame(6, with_score=True)
    nan.loc[2, "score"] = np.nan
    nan.to_parquet(tmp_path / "nan.parquet")
    with pytest.raises(ValueError, match=r"nan\.parquet: row 3: NaN"):
        load_waymo_parquet(tmp_path / "gt.parquet", tmp_path / "nan.parquet")


def test_per_sequence_scores_equal_scoring_each_sequence_alone():
    rng = np.random.default_rng(3)
    gt = _scene()
    pred = _scene(shift_z=0.04)
    pred["score"] = rng.uniform(0.1, 1.0, len(pred))
    pred.loc[pred.index[::5], "x"] += 1.5  # some misses, so sequences differ
    together = evaluate_protocol(gt, pred).per_sequence.set_index(["seq", "metric"])["value"]
    for seq in ("a", "b"):
        alone = evaluate_protocol(gt[gt["seq"] == seq], pred[pred["seq"] == seq], per_sequence=False).summary
        for metric in ("LET-3D-AP", "LET-3D-APL", "LET-3D-APH", "3D-AP", "3D-APH"):
            assert together[(seq, metric)] == pytest.approx(alone[metric], abs=1e-12), (seq, metric)


def _fixture_objects(stem: str) -> tuple[WaymoObjects, WaymoObjects]:
    case = json.loads((FIXTURES[0].parent / f"{stem}.json").read_text())
    gt, pred = case["gt"], case["pred"]
    return (WaymoObjects(gt["boxes"], gt["types"], gt["frames"], difficulty=gt["difficulty"]),
            WaymoObjects(pred["boxes"], pred["types"], pred["frames"], scores=pred["scores"], overlap_nlz=pred["nlz"]))


def _frames(objects: WaymoObjects, keep: np.ndarray) -> WaymoObjects:
    return WaymoObjects(objects.boxes[keep], objects.types[keep], objects.frame_ids[keep], scores=objects.scores[keep],
                        difficulty=objects.difficulty[keep], overlap_nlz=objects.overlap_nlz[keep])


@pytest.mark.parametrize("stem", ["08_varied_scores", "11_difficulty_and_nlz"])
def test_sequences_counted_one_by_one_then_combined_match_the_official_op(stem: str):
    """The Metric contract: eval_sequence per sequence (counts per cutoff), combine_sequences sums them and
    integrates the curves; equal to the op on all frames at once, and to the one-pass eval_sequences."""
    from bench.metrics.let_ap import WaymoDetectionMetric

    g, p = _fixture_objects(stem)
    n_frames = int(max(g.frame_ids.max(), p.frame_ids.max())) + 1
    seq_of_frame = [f"s{f % 3}" for f in range(n_frames)]  # frames of the sequences interleave
    official = json.loads((FIXTURES[0].parent / f"{stem}.json").read_text())["official"]
    for label, base in (("let", LET_CONFIG), ("3d", PLAIN_3D_CONFIG)):
        metric = WaymoDetectionMetric(DetectionConfig(breakdowns=("OBJECT_TYPE", "RANGE"), difficulty_levels=(1, 2),
                                                      let=base.let))
        alone = {s: metric.eval_sequence(_frames(g, np.array([seq_of_frame[f] == s for f in g.frame_ids], bool)),
                                         _frames(p, np.array([seq_of_frame[f] == s for f in p.frame_ids], bool)))
                 for s in ("s2", "s0", "s1")}
        batched = metric.eval_sequences(g, p, seq_of_frame)
        assert list(batched) == ["s0", "s1", "s2"]
        for s, counts in alone.items():
            for generator in ("OBJECT_TYPE", "RANGE"):
                for k in ("tp", "fp", "ha", "la", "fn", "num_gt"):
                    np.testing.assert_array_equal(getattr(counts[generator], k), getattr(batched[s][generator], k))
        assert sum(int(c["OBJECT_TYPE"].tp.sum()) for c in alone.values()) > 0  # not a case of nothing matched
        combined = metric.combine_sequences(alone)
        assert set(combined) == set(official[label])
        for name, want in official[label].items():
            for key in ("ap", "aph", "apl"):
                assert getattr(combined[name], key) == pytest.approx(want[key], abs=TOL), (label, name, key)
        assert combined["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"].num_gt == int(((g.types == 1) & (g.difficulty <= 2)).sum())


def test_detection_summary_names_the_fields_once():
    from bench.metrics.let_ap import WaymoDetectionMetric

    g, p = _fixture_objects("09_multiple_classes")
    let, plain = WaymoDetectionMetric(LET_CONFIG), WaymoDetectionMetric(PLAIN_3D_CONFIG)
    let_summary = let.summary(let.combine_sequences({"x": let.eval_sequence(g, p)}))
    plain_summary = plain.summary(plain.combine_sequences({"x": plain.eval_sequence(g, p)}))
    assert {k for k in let_summary if "/" not in k} == {"LET-3D-AP", "LET-3D-APL", "LET-3D-APH"}
    assert {k for k in plain_summary if "/" not in k} == {"3D-AP", "3D-APH"}  # no APL without LET
    types = {k.split("/")[1] for k in let_summary if "/" in k}
    assert len(types) >= 2
    assert let_summary["LET-3D-AP"] == pytest.approx(np.mean([let_summary[f"LET-3D-AP/{t}"] for t in types]))
    protocol = evaluate_protocol(g, p).summary
    assert {k: v for k, v in protocol.items() if k.count("/") < 2 and "@" not in k} == {**let_summary, **plain_summary}


def test_protocol_reports_the_loose_iou_and_each_range():
    """waymo-let adds 3D AP/APH at IoU 0.05 (BA²-Det's Table 1) and every type's AP by range, each equal to the
    metric's breakdown shard; a box 2 m off along the line of sight fails IoU 0.5 and passes IoU 0.05."""
    from bench.metrics.let_ap import WaymoDetectionMetric

    g, p = _fixture_objects("09_multiple_classes")
    summary = evaluate_protocol(g, p).summary
    assert {"3D-AP@0.05", "3D-APH@0.05"} <= set(summary)
    loose = WaymoDetectionMetric(LOOSE_3D_CONFIG, tag="@0.05")
    assert summary["3D-AP@0.05"] == pytest.approx(
        loose.summary(loose.combine_sequences({"x": loose.eval_sequence(g, p)}))["3D-AP@0.05"])
    shards = detection_metrics(p, g, replace(LET_CONFIG, breakdowns=("OBJECT_TYPE", "RANGE")))
    ranged = [k for k in summary if k.startswith("LET-3D-AP/") and k.count("/") == 2]
    assert ranged
    for key in ranged:
        tname, rng = key.split("/")[1:]
        bin_name = {"0-30m": "[0, 30)", "30-50m": "[30, 50)", "50m+": "[50, +inf)"}[rng]
        assert summary[key] == pytest.approx(shards[f"RANGE_TYPE_{tname}_{bin_name}_LEVEL_2"].ap)

    gt = WaymoObjects(np.array([[20.0, 0.0, 0.8, 4.6, 1.9, 1.6, 0.0]]), np.array([1]), np.array([0]))
    off = WaymoObjects(np.array([[22.0, 0.0, 0.8, 4.6, 1.9, 1.6, 0.0]]), np.array([1]), np.array([0]),
                       scores=np.array([0.9]))
    result = evaluate_protocol(gt, off).summary
    assert result["3D-AP"] == 0.0  # IoU 2.6 / 6.6 = 0.39
    assert result["3D-AP@0.05"] == pytest.approx(1.0)
    assert result["3D-AP/VEHICLE/0-30m"] == result["3D-AP"]
