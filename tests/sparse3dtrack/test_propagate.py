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
