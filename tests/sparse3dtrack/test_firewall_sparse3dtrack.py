"""The label firewall covers Sparse3DTrack: through the runner it sees only its budget's rows, no hidden GT."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from bench import registry
from bench.data.datasets import load_dataset
from bench.data.sequence import Dataset, Split
from bench.interface import RunContext, TrainView
from bench.runner import Job, SweepOptions, run_sweep
from bench.runner.jobs import budget_labels
from bench.store import Store
from methods.sparse3dtrack.labeler import Sparse3DTrack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
from test_firewall import _reachable_gt  # noqa: E402 - the harness's own GT detector

KEYS = ["seq", "frame", "track_id"]
SEEN: dict[str, object] = {}


class WatchedSparse3DTrack(Sparse3DTrack):
    """The real labeler; records what its modules can reach when fit and label run."""

    def fit(self, train: TrainView, ctx: RunContext) -> None:
        SEEN["fit_gt"] = _reachable_gt(train) + _reachable_gt(ctx)
        SEEN["labels"] = train.labels.copy()
        SEEN["budget"] = train.budget
        SEEN["writeable"] = any(s.images.flags.writeable for s in train.sequences.values())
        SEEN["meta"] = [s.meta for s in train.sequences.values()]
        super().fit(train, ctx)

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        SEEN["label_gt"] = _reachable_gt(train) + _reachable_gt(ctx)
        # The trained modules hold no label table, split or dataset (only weights and settings).
        modules = [m for net in (self.matcher, self.geometry, self.depth) if net is not None for m in net.modules()]
        SEEN["module_gt"] = [f"{type(m).__name__}.{k}" for m in modules for k, v in vars(m).items()
                             if isinstance(v, (pd.DataFrame, Split, Dataset))]
        return super().label(train, ctx)


def test_sparse3dtrack_sees_only_its_budget(tmp_path):
    registry.register("watched-sparse3dtrack", WatchedSparse3DTrack)
    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    try:
        result = run_sweep([Job("watched-sparse3dtrack", dataset="synth-kitti", budget=1, seed=2, profile="smoke",
                                base="none", overrides=("method.threads=1", "method.use_depth=false"))], options)
    finally:
        registry.unregister("watched-sparse3dtrack")
    planned = result.planned[0]
    assert result.exit_code == 0, Store(options.store()).run(planned.key).error
    gt = load_dataset("synth-kitti", scale="smoke", seed=0).train.tracks
    expected, _ = budget_labels(gt, 1, seed=2)
    seen = SEEN["labels"]
    assert isinstance(seen, pd.DataFrame)
    assert len(seen) == len(expected) < len(gt)
    assert sorted(map(tuple, seen[KEYS].itertuples(index=False))) == sorted(
        map(tuple, expected[KEYS].itertuples(index=False)))
    assert SEEN["budget"] == 1 and SEEN["writeable"] is False and all(m == {} for m in SEEN["meta"])
    assert SEEN["fit_gt"] == [] and SEEN["label_gt"] == [] and SEEN["module_gt"] == []
    # Pseudolabels only continue the budget's tracks.
    pseudo = pd.read_parquet(planned.run_dir / "pseudolabels" / "pseudolabels.parquet")
    real = pseudo[pseudo["track_id"] >= 0]
    assert set(zip(real["seq"], real["track_id"], strict=True)) <= set(
        zip(seen["seq"], seen["track_id"], strict=True))
