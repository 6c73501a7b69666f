"""bench's kitti-2d and mot17 protocols against stored outputs of the official TrackEval pipeline.

Fixtures: scripts/golden/make_trackeval_golden.py (``--seed N --check`` compares live against TrackEval).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.data.formats.kitti import read_labels
from bench.data.formats.mot import read_gt
from bench.data.tracks import concat_tracks
from bench.metrics import evaluate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics" / "trackeval"
KITTI_CASES = sorted(p.name for p in (FIXTURES / "kitti").iterdir())
TOL = 1e-6


def _assert_close(expected: dict[str, float], got: dict[str, float], where: str) -> None:
    bad = {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) is None or abs(got[k] - v) > TOL}
    assert not bad, f"{where}: metric -> (TrackEval, bench): {bad}"


def _sequences(n_frames: dict[str, int]) -> dict:
    return {s: SimpleNamespace(frame_ids=np.arange(n)) for s, n in n_frames.items()}


def test_enough_golden_cases() -> None:
    assert len(KITTI_CASES) >= 10
    for needed in ("perfect", "empty_pred", "all_fp", "id_swaps", "fragmented", "occluded_truncated",
                   "dontcare_min_height", "distractors", "varied_scores"):
        assert needed in KITTI_CASES


@pytest.mark.parametrize("case", KITTI_CASES)
def test_kitti_2d_equals_trackeval(case: str) -> None:
    folder = FIXTURES / "kitti" / case
    expected = json.loads((folder / "expected.json").read_text())
    n_frames = expected["n_frames"]
    gt = concat_tracks(read_labels(folder / "gt" / f"{s}.txt", s) for s in n_frames)
    pred = concat_tracks(read_labels(folder / "pred" / f"{s}.txt", s) for s in n_frames)
    result = evaluate("kitti-2d", gt, pred, sequences=_sequences(n_frames))
    for cls, official in expected["results"].items():
        _assert_close(official["combined"], result.extras["per_class"][cls], f"{case}/{cls}")
    _assert_close(expected["results"]["car"]["combined"], result.summary, f"{case}/summary")
    table = result.per_sequence.pivot(index="seq", columns="metric", values="value")
    for seq, official in expected["results"]["car"]["per_seq"].items():
        _assert_close(official, table.loc[seq].to_dict(), f"{case}/car/{seq}")


MOT_CASES = sorted(p.name for p in (FIXTURES / "mot17").iterdir())


@pytest.mark.parametrize("case", MOT_CASES)
def test_mot17_equals_trackeval(case: str) -> None:
    folder = FIXTURES / "mot17" / case
    expected = json.loads((folder / "expected.json").read_text())
    n_frames = expected["n_frames"]
    gt = concat_tracks(read_gt(folder / "gt" / f"{s}.txt", s) for s in n_frames)
    pred = concat_tracks(read_gt(folder / "pred" / f"{s}.txt", s) for s in n_frames)
    result = evaluate("mot17", gt, pred, sequences=_sequences(n_frames))
    official = expected["results"]["pedestrian"]
    _assert_close(official["combined"], result.summary, f"mot17/{case}")
    table = result.per_sequence.pivot(index="seq", columns="metric", values="value")
    for seq, values in official["per_seq"].items():
        _assert_close(values, table.loc[seq].to_dict(), f"mot17/{case}/{seq}")
