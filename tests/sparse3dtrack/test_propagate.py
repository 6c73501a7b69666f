"""Pseudolabel propagation: direction merging by confidence, and propagation with a real (briefly trained) matcher."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from methods.sparse3dtrack.propagate import dedupe_tracks, merge_directions, resolve

COLUMNS = ["seq", "frame", "track_id", "cls", "x1", "y1", "x2", "y2", "conf"]


def test_merge_averages_agreeing_and_picks_confident_disagreeing():
    est = pd.DataFrame([
        ("a", 1, 7, "Car", 0.0, 0.0, 10.0, 10.0, 0.9),  # forward
        ("a", 1, 7, "Car", 1.0, 1.0, 11.0, 11.0, 0.3),  # backward, agrees (IoU 0.68)
        ("a", 2, 7, "Car", 0.0, 0.0, 10.0, 10.0, 0.4),  # forward
        ("a", 2, 7, "Car", 50.0, 0.0, 60.0, 10.0, 0.8),  # backward, elsewhere: the confident one wins
        ("a", 3, 7, "Car", 5.0, 5.0, 9.0, 9.0, 0.5),  # one direction only
        ("a", 1, 8, "Van", 20.0, 0.0, 30.0, 10.0, 0.6),  # another track in the same frame is untouched
    ], columns=COLUMNS)
    out = merge_directions(est, agree_iou=0.5).set_index(["frame", "track_id"])
    assert len(out) == 4
    np.testing.assert_allclose(out.loc[(1, 7), ["x1", "y1", "x2", "y2"]].to_numpy(float), [0.25, 0.25, 10.25, 10.25])
    assert out.loc[(1, 7), "conf"] == 0.9
    np.testing.assert_allclose(out.loc[(2, 7), ["x1", "x2"]].to_numpy(float), [50, 60])
    assert out.loc[(2, 7), "conf"] == 0.8
    assert out.loc[(3, 7), "conf"] == 0.5 and out.loc[(1, 8), "cls"] == "Van"


def test_dedupe_drops_the_less_confident_duplicate_but_never_a_label():
    table = pd.DataFrame([
        ("a", 1, 1, "Car", 0.0, 0.0, 10.0, 10.0, 0.9, False),
        ("a", 1, 2, "Car", 0.5, 0.0, 10.0, 10.0, 0.5, False),  # slid onto track 1's object
        ("a", 2, 1, "Car", 0.0, 0.0, 10.0, 10.0, 0.9, False),
        ("a", 2, 2, "Car", 0.0, 0.0, 10.0, 10.0, 1.0, True),  # a human label wins over the pseudolabel
    ], columns=[*COLUMNS, "labelled"])
    out = dedupe_tracks(table, 0.7)
    assert list(zip(out["frame"], out["track_id"], strict=True)) == [(1, 1), (2, 2)]


def test_bad_thresholds_are_clear_errors():
    with pytest.raises(ValueError, match="conf_drop <= conf_update"):
        resolve({"conf_drop": 0.8, "conf_update": 0.5})
    with pytest.raises(ValueError, match="unknown propagation settings"):
        resolve({"patiance": 2})


@pytest.fixture(scope="module")
def trained():
    """synth-kitti smoke, budget 4, and a matcher trained for a few steps (the real module, ~4 s)."""
    import torch

    from bench.data.datasets import load_dataset
    from bench.labels import sample_budget
    from methods.sparse3dtrack.config import module_profile
    from methods.sparse3dtrack.matching import train_matcher
    from methods.sparse3dtrack.propagate import encode_sequence

    torch.set_num_threads(1)
    dataset = load_dataset("synth-kitti", scale="smoke", seed=0)
    labels = sample_budget(dataset.train.tracks, 4, seed=0)
    labels = labels[labels["cls"] != "DontCare"].reset_index(drop=True)
    matcher, _ = train_matcher(dataset.train.sequences, labels, module_profile("matcher", "smoke"), seed=0)
    features = {n: encode_sequence(matcher, s) for n, s in dataset.train.sequences.items()}
    return dataset, labels, matcher, features


def _check_table(out: pd.DataFrame, labels: pd.DataFrame, dataset) -> None:
    keys = ["seq", "frame", "track_id"]
    assert not out.duplicated(keys).any()
    tracks = set(zip(labels["seq"], labels["track_id"], strict=True))
    assert set(zip(out["seq"], out["track_id"], strict=True)) <= tracks
    assert out["conf"].between(0, 1).all()
    # Labelled frames keep the human boxes with conf 1.
    merged = labels.merge(out, on=keys, suffixes=("", "_out"))
    assert len(merged) == len(labels) and merged["labelled"].all() and (merged["conf_out"] == 1.0).all()
    for column in ("x1", "y1", "x2", "y2", "cls"):
        assert (merged[column] == merged[f"{column}_out"]).all(), column
    # Every row lies in its sequence's frames, with classes copied from the track's label.
    for seq, rows in out.groupby("seq"):
        assert set(rows["frame"]) <= set(dataset.train.sequences[seq].frame_ids)
    cls = labels.drop_duplicates(["seq", "track_id"]).set_index(["seq", "track_id"])["cls"]
    assert (out.set_index(["seq", "track_id"]).index.map(cls) == out["cls"].to_numpy()).all()


def test_propagation_on_synth_kitti_smoke(trained):
    from methods.sparse3dtrack.propagate import propagate

    dataset, labels, matcher, features = trained
    out = propagate(matcher, dataset.train.sequences, labels, {}, features=features)
    _check_table(out, labels, dataset)  # (a 4-step matcher is rarely confident: few rows beyond the labels)


def test_nothing_passes_a_drop_threshold_of_one(trained):
    from methods.sparse3dtrack.propagate import propagate

    dataset, labels, matcher, features = trained
    out = propagate(matcher, dataset.train.sequences, labels, {"conf_drop": 1.0, "conf_update": 1.0},
                    features=features)
    assert out["labelled"].all() and len(out) == len(labels)


def test_accepting_everything_covers_every_frame_between_labels(trained):
    """With no confidence gate and no image-exit rule every run reaches the next label: spans are complete."""
    from methods.sparse3dtrack.propagate import propagate

    dataset, labels, matcher, features = trained
    cfg = {"conf_drop": 0.0, "conf_update": 0.0, "min_size": 0.0, "min_visible": 0.0, "dedupe_iou": 1.0,
           "max_extrapolate": 0}
    out = propagate(matcher, dataset.train.sequences, labels, cfg, features=features)
    _check_table(out, labels, dataset)
    for seq, track_id in set(zip(labels["seq"], labels["track_id"], strict=True)):
        frames = dataset.train.sequences[seq].frame_ids
        got = set(out[(out["seq"] == seq) & (out["track_id"] == track_id)]["frame"])
        assert got == set(frames.tolist())  # forwards to the end, backwards to the start, and all between


def test_runs_past_the_first_and_last_label_stop_after_max_extrapolate(trained):
    """Between labels a span is complete; beyond a track's first/last label at most ``max_extrapolate`` frames."""
    from methods.sparse3dtrack.propagate import propagate

    dataset, labels, matcher, features = trained
    cap = 2
    cfg = {"conf_drop": 0.0, "conf_update": 0.0, "min_size": 0.0, "min_visible": 0.0, "dedupe_iou": 1.0,
           "max_extrapolate": cap}
    out = propagate(matcher, dataset.train.sequences, labels, cfg, features=features)
    for (seq, track_id), rows in labels.groupby(["seq", "track_id"]):
        index_of = dataset.train.sequences[seq].index_of
        labelled = sorted(index_of(int(f)) for f in rows["frame"])
        got = {index_of(int(f)) for f in out[(out["seq"] == seq) & (out["track_id"] == track_id)]["frame"]}
        expected = set(range(max(0, labelled[0] - cap), labelled[-1] + cap + 1))
        expected &= set(range(dataset.train.sequences[seq].num_frames))
        assert got == expected


def test_locate_batches_do_not_change_the_result(trained):
    """``locate_batch`` bounds free search's memory only: every run's rows, frames and ids are the same in any batch,
    and its boxes and confidences the same to float32 rounding. Bit-identical holds with AVX-512 kernels; with AVX2
    torch sums a batch of 3 in another order than the whole run (x1 0.0551279 vs 0.0551286 px, 2026-12-07), which is
    not a reproducibility break: one config always uses one batch size."""
    from methods.sparse3dtrack.propagate import propagate

    dataset, labels, matcher, features = trained
    cfg = {"search": "free", "conf_drop": 0.0, "conf_update": 0.0, "min_size": 0.0, "min_visible": 0.0,
           "dedupe_iou": 1.0, "max_extrapolate": 0}
    whole = propagate(matcher, dataset.train.sequences, labels, {**cfg, "locate_batch": None}, features=features)
    split = propagate(matcher, dataset.train.sequences, labels, {**cfg, "locate_batch": 3}, features=features)
    assert len(whole) > 3 * len(labels)  # enough rows that the small batches really split the runs
    # Integer and text columns must match exactly (atol below 1); floats to float32 rounding.
    pd.testing.assert_frame_equal(whole, split, check_exact=False, rtol=1e-5, atol=1e-4)
