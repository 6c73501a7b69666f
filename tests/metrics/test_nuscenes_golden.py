"""bench's nuScenes tracking metrics vs nuscenes-devkit 1.2.0 TrackingEval on stored cases (tolerance 1e-6).

Fixtures: ``scripts/golden/make_nuscenes_golden.py`` (run in ``.venvs/nuscenes``). With the environment variable
``BENCH_NUSCENES_FIXTURES`` set, the same tests run against freshly generated cases (``--check`` / tox parity).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from bench.metrics.nuscenes_tracking import METRIC_NAMES, NuscBoxes, evaluate_boxes

FIXTURES = Path(os.environ.get("BENCH_NUSCENES_FIXTURES",
                               Path(__file__).resolve().parents[1] / "fixtures" / "metrics" / "nuscenes"))
CASES = sorted(p for p in FIXTURES.glob("*.json"))


def load_case(path: Path) -> tuple[NuscBoxes, NuscBoxes, dict]:
    import pandas as pd

    case = json.loads(path.read_text())
    inputs = case["inputs"]
    samples = pd.DataFrame(inputs["samples"])
    gt = NuscBoxes.from_columns(inputs["gt"], samples=samples)
    pred = NuscBoxes.from_columns(inputs["pred"], samples=samples)
    return gt, pred, case["expected"]


def assert_close(ours: float, theirs: float | None, what: str) -> None:
    if theirs is None:
        assert math.isnan(ours), f"{what}: devkit NaN, ours {ours}"
    else:
        assert ours == pytest.approx(theirs, abs=1e-6, rel=0), f"{what}: devkit {theirs}, ours {ours}"


def test_fixtures_exist() -> None:
    assert len(CASES) >= 10, f"expected >= 10 golden cases in {FIXTURES}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_equal_to_devkit(path: Path) -> None:
    gt, pred, expected = load_case(path)
    result = evaluate_boxes(gt, pred)
    for metric in METRIC_NAMES:
        for cls, value in expected["per_class"][metric].items():
            assert_close(result.extras["per_class"][cls][metric], value, f"{path.stem} {metric}/{cls}")
        assert_close(result.summary[metric], expected["overall"][metric], f"{path.stem} {metric}")


def test_cases_are_not_trivial() -> None:
    """The golden set exercises what it claims: switches, fragments, misses, FPs and mid-range AMOTA."""
    expected = {p.stem: json.loads(p.read_text())["expected"]["overall"] for p in CASES}
    if "perfect" in expected:
        assert expected["perfect"]["amota"] == pytest.approx(1.0)
        assert expected["perfect"]["ids"] == 0
    for name, key in (("id_swaps", "ids"), ("fragmented", "frag"), ("crowded_conflicts", "ids")):
        if name in expected:
            assert (expected[name][key] or 0) > 0, name
    if "all_false_positives" in expected:
        # Nothing matches: the devkit reports its worst values (FP unknown -> NaN per class, summed to 0).
        assert expected["all_false_positives"]["amota"] == 0 and expected["all_false_positives"]["tp"] == 0
    amotas = [v["amota"] for v in expected.values() if v["amota"] is not None]
    assert any(0.1 < a < 0.9 for a in amotas)


def test_fixed_interpolation_is_a_different_protocol() -> None:
    path = FIXTURES / "interpolation_gaps.json"
    if not path.exists():
        pytest.skip("no interpolation case in this fixture set")
    gt, pred, expected = load_case(path)
    fixed = evaluate_boxes(gt, pred, fixed_interpolation=True)
    official = evaluate_boxes(gt, pred)
    assert fixed.protocol == "nuscenes-fixed-interp" and official.protocol == "nuscenes"
    assert official.summary["motp"] == pytest.approx(expected["overall"]["motp"], abs=1e-6)
    # Interpolated GT boxes move, so MOTP changes; the counts of interpolated boxes do not.
    assert fixed.summary["motp"] != pytest.approx(official.summary["motp"], abs=1e-9)
    assert fixed.summary["gt"] == official.summary["gt"]
    assert np.isfinite(fixed.summary["amota"])


@pytest.mark.parametrize("stem", ["many_scenes", "interpolation_gaps", "multi_class"])
def test_scenes_scored_one_by_one_then_combined_equal_the_devkit(stem: str) -> None:
    """The Metric contract: eval_sequence on each scene's own boxes, then combine_sequences, is the devkit's
    result, and each scene's result is exactly its rows of the one-pass eval_sequences."""
    from bench.metrics.nuscenes_tracking import NuscenesTrackingMetric, scene_boxes

    gt, pred, expected = load_case(FIXTURES / f"{stem}.json")
    metric = NuscenesTrackingMetric()
    scenes = sorted(set(gt.samples["scene"]))
    assert len(scenes) >= 3
    alone = {s: metric.eval_sequence(scene_boxes(gt, s), scene_boxes(pred, s)) for s in reversed(scenes)}
    batched = metric.eval_sequences(gt, pred)
    assert list(batched) == scenes
    for s in scenes:
        assert alone[s].n_samples == batched[s].n_samples == int((gt.samples["scene"] == s).sum())
        for side in ("gt", "pred"):
            one, many = getattr(alone[s], side), getattr(batched[s], side)
            for column in ("sample", "group", "name", "xy", "score", "track_id"):
                np.testing.assert_array_equal(getattr(one, column), getattr(many, column), err_msg=f"{s} {side}")
    combined = metric.combine_sequences(alone)  # built in reverse scene order: the order must not matter
    assert metric.summary(combined) == evaluate_boxes(gt, pred).summary
    for m in METRIC_NAMES:
        assert_close(combined.overall[m], expected["overall"][m], f"{stem} {m}")


def test_one_scene_combined_alone_is_its_per_sequence_row() -> None:
    from bench.metrics.nuscenes_tracking import NuscenesTrackingMetric, scene_boxes

    gt, pred, _ = load_case(FIXTURES / "many_scenes.json")
    rows = evaluate_boxes(gt, pred, per_scene=True).per_sequence.set_index(["seq", "metric"])["value"]
    metric = NuscenesTrackingMetric()
    for scene in sorted(set(gt.samples["scene"]))[:3]:
        own = metric.combine_sequences({scene: metric.eval_sequence(scene_boxes(gt, scene), scene_boxes(pred, scene))})
        alone = evaluate_boxes(scene_boxes(gt, scene), scene_boxes(pred, scene)).summary
        for m in METRIC_NAMES:
            assert own.overall[m] == alone[m] or (math.isnan(own.overall[m]) and math.isnan(alone[m]))
            assert rows[(scene, m)] == alone[m] or (math.isnan(rows[(scene, m)]) and math.isnan(alone[m]))


def test_eval_sequence_takes_one_scene() -> None:
    from bench.metrics.nuscenes_tracking import NuscenesTrackingMetric

    gt, pred, _ = load_case(FIXTURES / "many_scenes.json")
    with pytest.raises(ValueError, match="one scene"):
        NuscenesTrackingMetric().eval_sequence(gt, pred)
