"""No clock decides what is computed: every trainer takes exactly the steps its profile says.

Each trainer runs at the quick profile's settings (on the smoke world, with the step count patched
small to stay fast) twice: once with the real clocks and once with every process clock racing ahead
(each call returns a value a million seconds later than the last). A time budget anywhere in a
trainer would stop it early or move its LR drops / waypoint phase, so the racing run would take
fewer steps or train differently; the test asks for the same step count and bit-identical losses.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest
import torch

from bench.data.datasets import load_dataset
from bench.data.tracks import CLASSES
from bench.runner.jobs import budget_labels
from methods.sparse3dtrack.config import module_profile
from methods.sparse3dtrack.labeler import _usable_labels

STEPS = 5  # enough to cross the matcher's waypoint start (0.3) and every module's LR drop (0.75-0.8)

_CLOCKS = ("time", "perf_counter", "process_time", "monotonic", "thread_time")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world():
    ds = load_dataset("synth-kitti", scale="smoke", seed=0)
    labels = _usable_labels(budget_labels(ds.train.tracks, 4, 0)[0])
    return ds, labels


def _race(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every process clock (and its _ns twin) returns ever-increasing huge values."""
    ticks = itertools.count(1)
    for name in _CLOCKS:
        monkeypatch.setattr(time, name, lambda: next(ticks) * 1e6)
        monkeypatch.setattr(time, f"{name}_ns", lambda: next(ticks) * 10**15)


def _twice(monkeypatch: pytest.MonkeyPatch, train: Callable[[], list[dict]]) -> tuple[list[dict], list[dict]]:
    calm = train()
    with monkeypatch.context() as m:
        _race(m)
        assert time.process_time() > 1e5  # the patch is live
        racing = train()
    return calm, racing


def _same_training(calm: list[dict], racing: list[dict]) -> None:
    assert len(calm) == len(racing) == STEPS
    strip = [{k: v for k, v in h.items() if k not in ("seconds", "step")} for h in racing]
    assert strip == [{k: v for k, v in h.items() if k not in ("seconds", "step")} for h in calm]


def test_matcher_takes_its_steps_whatever_the_clock(world, monkeypatch):
    from methods.sparse3dtrack.matching import train_matcher

    ds, labels = world
    cfg = {**module_profile("matcher", "quick"), "steps": STEPS}
    calm, racing = _twice(monkeypatch, lambda: train_matcher(ds.train.sequences, labels, cfg, seed=0)[1])
    _same_training(calm, racing)
    # The waypoint phase began by steps (0.3 of 5 = step 2 on), not at once because the clock said so.
    assert sum(h["n_cycle"] + h["n_step"] for h in racing[:2]) == 0


def test_depth_takes_its_steps_whatever_the_clock(world, monkeypatch):
    from methods.sparse3dtrack.depth import train_depth

    ds, _ = world
    cfg = {**module_profile("depth", "quick"), "steps": STEPS}
    _same_training(*_twice(monkeypatch, lambda: train_depth(ds.train.sequences, cfg, seed=0)[1]))


def test_geometry_takes_its_steps_whatever_the_clock(world, monkeypatch):
    from methods.sparse3dtrack.depth import train_depth
    from methods.sparse3dtrack.geometry import train_geometry

    ds, labels = world
    depth = train_depth(ds.train.sequences, module_profile("depth", "smoke"), seed=0)[0]
    cfg = {**module_profile("geometry", "quick"), "steps": STEPS}
    _same_training(*_twice(monkeypatch, lambda: train_geometry(ds.train.sequences, labels, depth, cfg, seed=0)[1]))


def test_fncomp_head_takes_its_steps_whatever_the_clock(world, monkeypatch):
    from methods.sparse3dtrack.fncomp import train_head
    from methods.sparse3dtrack.matching import DEFAULTS, build_matcher
    from methods.sparse3dtrack.propagate import encode_sequence

    ds, labels = world
    torch.manual_seed(0)
    matcher = build_matcher({**DEFAULTS, **module_profile("matcher", "smoke")}).eval()  # untrained: features will do
    features = {n: encode_sequence(matcher, ds.train.sequences[n]) for n in sorted(set(labels["seq"]))}
    cfg = {**module_profile("fncomp", "quick"), "steps": STEPS}
    _same_training(*_twice(monkeypatch, lambda: train_head(features, ds.train.sequences, labels, cfg, seed=0)[1]))


def test_centertrack_takes_its_steps_whatever_the_clock(world, monkeypatch):
    from baselines.centertrack.learner import CenterTrackLearner
    from baselines.centertrack.train import train
    from bench.config import method_params

    ds, _ = world
    tracks = ds.train.tracks
    names = sorted(ds.train.sequences)[:2]
    sequences = {n: ds.train.sequences[n] for n in names}
    tracks = tracks[tracks["seq"].isin(names)]
    classes = tuple(c for c in CLASSES if c in set(tracks["cls"]))
    cfg = CenterTrackLearner(**{**method_params("quick", "centertrack"), "steps": STEPS}).config()
    _same_training(*_twice(monkeypatch, lambda: train(sequences, tracks, classes, cfg, seed=0)[1]))


def test_no_quick_profile_has_a_time_budget():
    import inspect

    from baselines.centertrack.learner import CenterTrackLearner
    from bench.config import method_params, profile_names
    from methods.sparse3dtrack.config import parameter_names

    names = [*inspect.signature(CenterTrackLearner).parameters, *parameter_names()]
    for profile in profile_names():
        for method in ("centertrack", "sparse3dtrack", "sparse3dtrack-lift"):
            names += list(method_params(profile, method))
    assert names and not any("time" in key or "deadline" in key for key in names)
