"""The two bounds of issue 5: ``sparse`` (the budget's labels only) and ``oracle`` (every training label)."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from click.testing import CliRunner
from test_firewall import _reachable_gt
from tiny import make_dataset

from baselines.oracle import Oracle
from baselines.sparse import Sparse
from bench import firewall, registry
from bench.cli import main
from bench.config import ConfigError
from bench.interface import RunContext, TrainView
from bench.runner import Job, SweepOptions, run_sweep
from bench.runner.jobs import budget_labels, expand_grid
from bench.store import Store

KEY = ["seq", "frame", "track_id"]
SEEN: dict[str, object] = {}


def _keys(table: pd.DataFrame) -> list[tuple]:
    return sorted(map(tuple, table[KEY].itertuples(index=False)))


def test_sparse_returns_exactly_the_budget_labels(tmp_path):
    dataset = make_dataset()
    labels, _ = budget_labels(dataset.train.tracks, 2, seed=3)
    labels = labels.assign(conf=0.5)  # whatever confidence comes in, human labels go out at 1
    view = firewall.train_view(dataset.train, labels, dataset.frame_rate, budget=2)
    out = Sparse().label(view, RunContext(work_dir=tmp_path))
    assert _keys(out) == _keys(labels) and len(out) == 6 * 2  # 6 tracks x 2 labels
    assert (out["conf"] == 1.0).all()
    merged = out.merge(labels, on=KEY, suffixes=("", "_in"))
    for column in ("x1", "y2", "x", "z", "yaw", "cls"):
        assert (merged[column] == merged[f"{column}_in"]).all(), column


class SnoopingSparse(Sparse):
    """A normal (non-oracle) labeler that looks for more than its budget."""

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        SEEN["view_gt"] = _reachable_gt(train) + _reachable_gt(ctx)
        SEEN["labels"] = len(train.labels)
        SEEN["budget"] = train.budget
        try:
            os.listdir(ctx.work_dir.parents[5])  # the runs folder: other runs' labels
            SEEN["runs_listing"] = "allowed"
        except PermissionError:
            SEEN["runs_listing"] = "blocked"
        return super().label(train, ctx)


def test_oracle_gets_every_training_row_and_sparse_only_its_budget(tmp_path, tiny_registered):
    registry.register("snooping-sparse", SnoopingSparse)
    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    overrides = ("eval.pseudolabel=[3d-iou]",)
    try:
        # The oracle asked at a budget still gets every label, as one budget-less cell.
        jobs = [Job("oracle", dataset="tiny", budget=b, profile="smoke", overrides=overrides) for b in (1, 4)]
        jobs.append(Job("snooping-sparse", dataset="tiny", budget=1, profile="smoke", overrides=overrides))
        result = run_sweep(jobs, options)
    finally:
        registry.unregister("snooping-sparse")
    assert result.exit_code == 0 and len(result.planned) == 2
    oracle, sparse = result.planned
    assert oracle.job.budget is None and oracle.manifest_hash == "full" and oracle.run_dir.parts[-3] == "ball"
    gt = make_dataset().train.tracks
    pseudo = pd.read_parquet(oracle.run_dir / "pseudolabels" / "pseudolabels.parquet")
    assert len(pseudo) == len(gt) and _keys(pseudo) == _keys(gt) and (pseudo["conf"] == 1).all()
    store = Store(options.store())
    assert store.run(oracle.key).budget is None and store.run(sparse.key).budget == 1
    # The non-oracle labeler saw its budget and nothing else.
    assert SEEN == {"view_gt": [], "labels": 6, "budget": 1, "runs_listing": "blocked"}


def test_budget_all_is_only_for_the_oracle():
    registry.get_method("oracle")  # registered by baselines/__init__.py
    assert registry.get_method("oracle").sees_ground_truth and not registry.get_method("sparse").sees_ground_truth
    with pytest.raises(ConfigError, match="sees_ground_truth"):
        run_sweep([Job("sparse", dataset="synth-kitti", budget=None, profile="smoke")],
                  SweepOptions(runs_root="/nonexistent-runs", progress=False, dry_run=True))


def test_oracle_refuses_a_cut_budget(tmp_path):
    dataset = make_dataset()
    view = firewall.train_view(dataset.train, dataset.train.tracks.iloc[:4], dataset.frame_rate, budget=1)
    with pytest.raises(ValueError, match="every training label"):
        Oracle().label(view, RunContext(work_dir=tmp_path))


def test_bounds_preset_plans_30_cells(tmp_path, tiny_registered):
    from bench.runner.jobs import load_sweep

    grid = load_sweep("bounds")
    assert grid["base"] == "centertrack" and grid["profile"] == "quick"
    jobs = expand_grid(grid["methods"], grid["budgets"], ["tiny"], grid["seeds"], base=grid["base"])
    # The grid names the oracle once per budget; planning keeps one oracle cell per (dataset, seed).
    from bench.runner.executors import plan

    planned = plan(jobs, SweepOptions(runs_root=tmp_path / "runs", progress=False))
    assert len(planned) == 3 * (4 + 1) and len(grid["datasets"]) == 2  # x 2 datasets = 30 cells
    assert sorted({p.job.budget for p in planned if p.job.method == "oracle"}, key=str) == [None]


def test_cli_sparse_on_centertrack_smoke_stores_val_metrics(tmp_path):
    environ = {"BENCH_DATA_DIR": str(tmp_path / "data"), "BENCH_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200"}
    result = CliRunner().invoke(main, ["run", "--method", "sparse", "--base", "centertrack", "--budget", "4",
                                       "--profile", "smoke"], env=environ)
    assert result.exit_code == 0, result.output
    store = Store(tmp_path / "runs" / "bench.sqlite")
    runs = store.runs_frame()
    assert list(runs["status"]) == ["ok"] and list(runs["base"]) == ["centertrack"]
    metrics = store.metrics_frame()
    val = metrics[(metrics["split"] == "val") & (metrics["seq"] == "")]
    assert {"kitti-2d", "3d-iou"} <= set(val["protocol"])
    assert {"MOTA", "HOTA", "IDF1"} <= set(val["metric"])
    # Pseudolabels are the budget's labels: exact boxes (DontCare regions are not counted as boxes), few of them.
    quality = metrics[(metrics["protocol"] == "pseudolabel") & (metrics["seq"] == "")].set_index("metric")["value"]
    assert quality["BoxPrecision"] == 1.0 and 0 < quality["BoxRecall"] < 1
