"""The label firewall covers spot, sam2 and pretrained2d: through the runner they see only the budget's rows, no
hidden GT, and their pseudolabels only continue the budget's tracks."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from baselines.pretrained2d.labeler import Pretrained2D
from baselines.sam2.labeler import Sam2
from baselines.spot.labeler import Spot
from bench import registry
from bench.data.datasets import load_dataset
from bench.interface import RunContext, TrainView
from bench.runner import Job, SweepOptions, run_sweep
from bench.runner.jobs import budget_labels
from bench.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
from test_firewall import _reachable_gt  # noqa: E402 - the harness's own GT detector

KEYS = ["seq", "frame", "track_id"]


def _watched(cls: type, seen: dict) -> type:
    class Watched(cls):  # type: ignore[misc, valid-type]
        def fit(self, train: TrainView, ctx: RunContext) -> None:
            seen["fit_gt"] = _reachable_gt(train) + _reachable_gt(ctx)
            super().fit(train, ctx)

        def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
            seen["label_gt"] = _reachable_gt(train) + _reachable_gt(ctx)
            seen["labels"] = train.labels.copy()
            seen["writeable"] = any(s.images.flags.writeable for s in train.sequences.values())
            out = super().label(train, ctx)
            model = getattr(self, "model_", None)  # SPOT's trained network holds weights only
            seen["module_gt"] = [f"{type(m).__name__}.{k}" for m in (model.modules() if model is not None else [])
                                 for k, v in vars(m).items() if isinstance(v, pd.DataFrame)]
            return out

    return Watched


def _run(name: str, cls: type, tmp_path: Path, overrides: tuple[str, ...] = ()) -> tuple[dict, pd.DataFrame]:
    seen: dict = {}
    registry.register(name, _watched(cls, seen))
    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    try:
        result = run_sweep([Job(name, dataset="synth-kitti", budget=1, seed=2, profile="smoke",
                                overrides=overrides)], options)
    finally:
        registry.unregister(name)
    planned = result.planned[0]
    assert result.exit_code == 0, Store(options.store()).run(planned.key).error
    return seen, pd.read_parquet(planned.run_dir / "pseudolabels" / "pseudolabels.parquet")


def _check(seen: dict, pseudo: pd.DataFrame) -> None:
    gt = load_dataset("synth-kitti", scale="smoke", seed=0).train.tracks
    expected, _ = budget_labels(gt, 1, seed=2)
    labels = seen["labels"]
    assert len(labels) == len(expected) < len(gt)
    assert sorted(map(tuple, labels[KEYS].itertuples(index=False))) == sorted(
        map(tuple, expected[KEYS].itertuples(index=False)))
    assert seen.get("fit_gt", []) == [] and seen["label_gt"] == [] and seen["module_gt"] == []
    assert seen["writeable"] is False
    assert set(zip(pseudo["seq"], pseudo["track_id"], strict=True)) <= set(
        zip(labels["seq"], labels["track_id"], strict=True))


def test_spot_sees_only_its_budget(tmp_path):
    # The watched name has no profile section: the smoke settings are given here.
    seen, pseudo = _run("watched-spot", Spot, tmp_path, ("method.steps=6", "method.burn_in=3", "method.width=8",
                                                          "method.sup_batch=2", "method.unsup_batch=2",
                                                          "method.relay_every=2"))
    _check(seen, pseudo)


def test_sam2_sees_only_its_budget(tmp_path):
    pytest.importorskip("sam2", reason="the sam2 extra is not installed (pip install -e \".[sam2]\")")
    import torch

    from baselines.sam2.labeler import DEFAULT_CONFIG, build_predictor

    torch.manual_seed(0)
    checkpoint = tmp_path / "random_tiny.pt"
    torch.save({"model": build_predictor(DEFAULT_CONFIG, None, "cpu", image_size=256).state_dict()}, checkpoint)
    seen, pseudo = _run("watched-sam2", Sam2, tmp_path, (f"method.checkpoint={checkpoint}", "method.image_size=256"))
    _check(seen, pseudo)


def test_pretrained2d_sees_only_its_budget(tmp_path):
    # Its pretraining corpus is generated inside the guard (other worlds, in memory); its checkpoint cache is the one
    # folder under the runs folder the firewall lets it write.
    seen, pseudo = _run("watched-pretrained2d", Pretrained2D, tmp_path, (
        'method.corpus=["synth-kitti:1001"]', "method.corpus_scale=smoke", "method.steps=4", "method.batch=4",
        "method.negatives=1", "method.width=8", "method.presence_threshold=0"))
    _check(seen, pseudo)
    assert len(pseudo) > len(seen["labels"])  # presence 0: every propagated box is kept
