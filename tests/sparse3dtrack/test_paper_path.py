"""Issue 15: the paper's 2D path is the default (no motion prior, no interpolation), the motion priors are one named
variant, and ``conf`` is a calibrated probability fitted on what the labels allow."""

from __future__ import annotations

import numpy as np
import pytest

from bench.config import method_params
from methods.sparse3dtrack import matching, propagate
from methods.sparse3dtrack.calibration import expected_calibration_error, fit_calibration, reliability
from methods.sparse3dtrack.config import VARIANTS, resolve_params


def _resolved(profile: str, **extra: object) -> tuple[dict, dict, dict]:
    """The labeler's resolved config for a built-in profile, each module's DEFAULTS filled in as its code does."""
    cfg = resolve_params({**method_params(profile, "sparse3dtrack"), **extra})
    return cfg["switches"], {**matching.DEFAULTS, **cfg["matcher"]}, propagate.resolve(cfg["propagate"])


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_the_default_config_has_no_motion_prior_and_no_interpolation(profile):
    switches, matcher, prop = _resolved(profile)
    assert switches["variant"] == "paper"
    assert prop["search"] == "free"  # the whole target frame: no search window around a prior
    assert prop["goal_prior"] is False and prop["bridge_conf"] == 0 and prop["max_extrapolate"] == 0
    assert prop["span_interval"] is None  # no linear interpolation between labels at any frame rate
    assert matcher["waypoint_search"] == "free"
    assert prop["calibration"] == "isotonic"


def test_the_motion_variant_is_one_switch_and_explicit_knobs_still_win():
    switches, matcher, prop = _resolved("quick", variant="motion")
    assert switches["variant"] == "motion" and matcher["waypoint_search"] == "window"
    assert prop["search"] == "window" and prop["goal_prior"] and prop["max_extrapolate"] == 8
    assert prop["span_interval"] == 0.25
    _, _, prop = _resolved("quick", variant="motion", propagate_max_extrapolate=3)
    assert prop["max_extrapolate"] == 3 and prop["goal_prior"]
    with pytest.raises(ValueError, match="variant"):
        resolve_params({"variant": "kalman"})
    assert set(VARIANTS) == {"paper", "motion"}


def test_calibration_is_monotone_and_matches_the_sample_frequencies():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 0.6, 4000)
    truth = np.clip(raw * 1.5, 0, 1)  # raw peaks under-state how often the match is right
    correct = rng.random(4000) < truth
    calibration = fit_calibration(raw, correct)
    grid = np.linspace(0, 1, 101)
    mapped = calibration(grid)
    assert (np.diff(mapped) >= 0).all() and mapped.min() >= 0 and mapped.max() <= 1
    assert expected_calibration_error(calibration(raw), correct) < 0.03
    assert expected_calibration_error(raw, correct) > 0.1
    assert abs(float(calibration(np.array([0.4]))[0]) - 0.6) < 0.08


def test_calibration_with_few_or_unanimous_samples_stays_inside_zero_one():
    for correct in (np.ones(5, bool), np.zeros(5, bool)):
        mapped = fit_calibration(np.full(5, 0.3), correct)(np.array([0.0, 0.3, 1.0]))
        assert 0 <= mapped[0] <= mapped[1] <= mapped[2] <= 1
        assert 0 < mapped[1] < 1  # the end anchors keep one sample set from saying "always" or "never"
    identity = fit_calibration(np.array([]), np.array([], bool))
    assert identity.samples == 0 and float(identity(np.array([0.3]))[0]) == pytest.approx(0.3)


def test_reliability_bins_count_every_sample_once():
    conf = np.array([0.05, 0.15, 0.15, 0.95, 1.0])
    rows = reliability(conf, np.array([0, 1, 0, 1, 1]), bins=10)
    assert sum(r["n"] for r in rows) == 5 and rows[1]["n"] == 2 and rows[1]["accuracy"] == 0.5 and rows[9]["n"] == 2


def test_propagation_calibrates_its_confidences_on_the_labels(smoke):
    """Calibration samples come from runs reaching the next label; output conf = the fitted map of the raw peak."""
    import torch

    from bench.labels import sample_budget
    from methods.sparse3dtrack.config import module_profile
    from methods.sparse3dtrack.matching import train_matcher
    from methods.sparse3dtrack.propagate import encode_sequence
    from methods.sparse3dtrack.propagate import propagate as run

    torch.set_num_threads(1)
    labels = sample_budget(smoke.train.tracks, 4, seed=0)
    labels = labels[labels["cls"] != "DontCare"].reset_index(drop=True)
    matcher_, _ = train_matcher(smoke.train.sequences, labels, module_profile("matcher", "smoke"), seed=0)
    features = {n: encode_sequence(matcher_, s) for n, s in smoke.train.sequences.items()}
    cfg = {"conf_drop": 0.0, "conf_update": 1.0, "agree_iou": 1.1, "dedupe_iou": 1.0}
    raw = run(matcher_, smoke.train.sequences, labels, {**cfg, "calibration": "none"}, features=features)
    calibrated = run(matcher_, smoke.train.sequences, labels, cfg, features=features)
    samples = calibrated.attrs["calibration_samples"]
    pairs = labels.groupby(["seq", "track_id"]).size()
    assert len(samples) == 2 * int((pairs - 1).clip(lower=0).sum()) - _adjacent_label_runs(labels, smoke)
    assert calibrated.attrs["calibration"] is not None and raw.attrs["calibration"] is None
    keys = ["seq", "frame", "track_id"]
    both = raw.merge(calibrated, on=keys, suffixes=("_raw", ""))
    moved = ~both["labelled"]
    expected = calibrated.attrs["calibration"](both.loc[moved, "conf_raw"].to_numpy())
    np.testing.assert_allclose(both.loc[moved, "conf"].to_numpy(), expected)
    assert (both.loc[~moved, "conf"] == 1.0).all()


def _adjacent_label_runs(labels, dataset) -> int:
    """Runs between two labels of a track in neighbouring frames are never started (nothing to visit)."""
    count = 0
    for (seq, _), rows in labels.groupby(["seq", "track_id"]):
        index = np.sort([dataset.train.sequences[seq].index_of(int(f)) for f in rows["frame"]])
        count += 2 * int((np.diff(index) == 1).sum())
    return count
