"""CenterTrack through the bench Learner interface: fit, predict, state round trip, registry name."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from centertrack_toy import SIZE, toy_scene  # noqa: E402

from baselines.centertrack.learner import CHECKPOINT, CenterTrackLearner  # noqa: E402
from bench.config import method_params  # noqa: E402
from bench.data.tracks import TRACK_COLUMNS, validate_tracks  # noqa: E402
from bench.interface import RunContext, SplitView, TrainView  # noqa: E402
from bench.registry import get_method  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny convolutions gain nothing from a second thread, and on a loaded machine OpenMP's spinning
    # threads make them ten times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

def test_learner_fits_predicts_and_restores(tmp_path):
    seq, tracks = toy_scene(num_frames=5)
    # Sparse labels: car 0 labelled only in frame 0, the others everywhere; one low-confidence box.
    labels = tracks[(tracks["track_id"] != 0) | (tracks["frame"] == 0)].copy()
    labels.loc[labels.index[-1], "conf"] = 0.2
    train = TrainView(name="train", sequences={"toy": seq}, frame_rate=10.0, labels=labels, budget=None)
    seen = []
    ctx = RunContext(seed=1, work_dir=tmp_path, progress=lambda d, t, w: seen.append((d, t)))
    params = {**method_params("smoke", "centertrack"), "input_size": SIZE, "track_thresh": 0.005,
              "new_thresh": 0.005, "steps": 4}
    learner = CenterTrackLearner(**params, threads=1)
    learner.fit(train, labels, ctx)
    assert seen[-1] == (4, 4) and (tmp_path / CHECKPOINT).exists()
    assert learner.classes_ == ("Car",)
    val = SplitView(name="val", sequences={"toy": seq}, frame_rate=10.0)
    pred = learner.predict(val, ctx)
    assert tuple(pred.columns) == TRACK_COLUMNS
    validate_tracks(pred, "predictions")
    assert learner.predict_stats_["frames"] == 5 and len(pred) > 0

    state = learner.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    path = tmp_path / "state.pt"
    torch.save(state, path)
    restored = CenterTrackLearner(**params)
    restored.load_state_dict(torch.load(path, weights_only=True))
    again = restored.predict(val, ctx)
    assert restored.classes_ == ("Car",)
    cols = ["x1", "y1", "z", "score"]
    np.testing.assert_allclose(again[cols].to_numpy(), pred[cols].to_numpy())
    # Nothing is reported beyond the farthest training label (kept in the state), nor beyond a max_depth asked for.
    assert restored.config_["max_depth"] == learner.config_["max_depth"] == labels["z"].max()
    assert (pred["z"] <= labels["z"].max()).all()
    learner.set_params(max_depth=float(pred["z"].min()) - 1e-3)
    assert len(learner.predict(val, ctx)) == 0
    with pytest.raises(TypeError, match="max_dpeth"):
        learner.set_params(max_dpeth=3.0)


def test_registered_under_its_name():
    assert get_method("centertrack") is CenterTrackLearner
