"""DEFT: the matcher's loss and affinity, the LSTM's training windows, the tracker, and a smoke run via the runner."""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd
import pytest
import torch

from baselines.deft.matcher import AppearanceMatcher, matching_loss
from baselines.deft.motion import box_state, state_box, training_windows
from baselines.deft.tracker import DeftTracker, Track
from bench.runner import Job, SweepOptions, run_sweep
from bench.store import Store


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_matching_loss_prefers_the_true_assignment_with_unmatched_row_and_column():
    # Frame 1 has objects A, B, C; frame 2 has B, A, D: A<->1, B<->0, C and D unmatched.
    match = torch.tensor([1, 0, -1])
    good = torch.full((4, 4), -10.0)
    good[0, 1] = good[1, 0] = 10.0
    good[2, 3] = good[3, 2] = 10.0  # C picks "unmatched"; D is picked by the unmatched row
    good[3, 3] = 0.0
    w = torch.ones(3)
    low = matching_loss(good, match, w, w)
    assert low < 1e-3
    swapped = good.clone()
    swapped[:2, :2] = swapped[:2, :2].flip(1)
    assert matching_loss(swapped, match, w, w) > 5
    # A zero-confidence object contributes nothing.
    assert matching_loss(swapped, match, torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 1.0])) < 1e-3


def test_affinity_has_an_unmatched_row_and_column():
    torch.manual_seed(0)
    m = AppearanceMatcher([4, 4], dim=3, hidden=8)
    a, b = torch.randn(2, 6), torch.randn(5, 6)
    aff = m.affinity(a, b)
    assert aff.shape == (3, 6)
    assert (aff[-1] == m.unmatched).all() and (aff[:, -1] == m.unmatched).all()
    pyr = [torch.randn(1, 4, 8, 10), torch.randn(1, 4, 4, 5)]
    assert m.embed(pyr, torch.tensor([[3.0, 4.0], [30.0, 20.0]]), (40, 32)).shape == (2, 6)


def test_lstm_windows_come_from_consecutive_labelled_frames_only():
    rows = []
    for frame in (0, 1, 2, 3, 7, 8):  # one run of 4, one of 2 (too short: no window)
        rows.append({"seq": "s", "frame": frame, "track_id": 1, "x1": 10.0 + 2 * frame, "y1": 5.0,
                     "x2": 20.0 + 2 * frame, "y2": 15.0, "conf": 0.5})
    x, y, w = training_windows(pd.DataFrame(rows), {"s": 10.0}, history=3)
    assert x.shape == (2, 3, 4) and len(y) == 2
    np.testing.assert_allclose(y[:, 0], 0.2)  # the centre moves 2 px a frame, / scale 10
    np.testing.assert_allclose(w, 0.5)
    np.testing.assert_allclose(state_box(box_state(np.array([[1.0, 2, 5, 9]]), 4.0), 4.0), [[1, 2, 5, 9]])


def test_tracker_links_by_appearance_and_the_motion_veto_refuses_a_jump():
    torch.manual_seed(0)
    matcher = AppearanceMatcher([2], dim=2, hidden=8)
    # An affinity that is high for equal embeddings and low otherwise: -|a - b| via a hand-set pair MLP.
    with torch.no_grad():
        for p in matcher.parameters():
            p.zero_()
    matcher.affinity = lambda a, b: torch.cat([torch.cat([-10 * torch.cdist(a, b), torch.zeros(len(a), 1)], 1),
                                                torch.zeros(1, len(b) + 1)], 0)  # type: ignore[method-assign]
    tracker = DeftTracker(matcher, None, 100.0, match_thresh=0.3, new_thresh=0.5, veto_iou=0.1)
    e = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], dtype=float)
    first = tracker.step(e, boxes, np.array([0.9, 0.9]))
    second = tracker.step(e.flip(0), boxes[::-1] + 1, np.array([0.9, 0.9]))
    np.testing.assert_array_equal(second, first[::-1])
    # The same appearance far away from where the track was (no IoU with its forecast): vetoed, a new track.
    third = tracker.step(e[:1], np.array([[200, 200, 210, 210]], dtype=float), np.array([0.9]))
    assert third[0] not in first
    assert isinstance(tracker.tracks[0], Track) and isinstance(tracker.tracks[0].embeddings, deque)


def test_deft_smoke_run_through_the_runner_trains_tracks_and_resumes(tmp_path):
    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    job = Job("oracle", dataset="synth-kitti", budget=None, profile="smoke", base="deft",
              overrides=("base.steps=30", "base.det_thresh=0.05", "base.new_thresh=0.05", "base.topk=5",
                         "base.matcher_steps=30", "base.motion_steps=30"))
    result = run_sweep([job], options)
    planned = result.planned[0]
    assert result.exit_code == 0, Store(options.store()).run(planned.key).error
    pred = pd.read_parquet(planned.run_dir / "prediction" / "predictions.parquet")
    assert len(pred) > 0 and pred["track_id"].nunique() < len(pred)  # detections were linked over frames
    # The checkpoint restores the same tracker: predicting again from it gives the same table.
    from baselines.deft.learner import Deft
    from bench import firewall
    from bench.data.datasets import load_dataset
    from bench.interface import RunContext
    from bench.runner.stages import load_checkpoint

    state = load_checkpoint(planned.run_dir / "training" / "model.pt")
    learner = Deft(**planned.config["base"])
    learner.load_state_dict(state)
    data = load_dataset("synth-kitti", scale="smoke", seed=0)
    again = learner.predict(firewall.split_view(data.val, data.frame_rate), RunContext(work_dir=tmp_path))
    pd.testing.assert_frame_equal(again.reset_index(drop=True), pred.reset_index(drop=True), check_exact=False,
                                  rtol=1e-6, check_dtype=False)


def test_deft_as_base_sees_only_the_labelers_output(tmp_path):
    from baselines.deft.learner import Deft
    from bench import registry
    from bench.config import resolve_config
    from bench.data.datasets import load_dataset
    from bench.interface import RunContext, TrainView
    from bench.runner.jobs import budget_labels

    seen: dict[str, int] = {}

    class WatchedDeft(Deft):
        def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
            seen.update(labels=len(labels), train_labels=len(train.labels), tracks_2d=len(train.tracks_2d))
            super().fit(train, labels, ctx)

    registry.register("watched-deft", WatchedDeft)
    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    smoke = resolve_config("smoke", "deft")["method"]
    try:
        result = run_sweep([Job("sparse", dataset="synth-kitti", budget=1, profile="smoke", base="watched-deft",
                                overrides=tuple(f"base.{k}={v}" for k, v in smoke.items()))], options)
    finally:
        registry.unregister("watched-deft")
    assert result.exit_code == 0, Store(options.store()).run(result.planned[0].key).error
    gt = load_dataset("synth-kitti", scale="smoke", seed=0).train.tracks
    budget = len(budget_labels(gt, 1, seed=0)[0])
    assert seen == {"labels": budget, "train_labels": budget, "tracks_2d": 0}
