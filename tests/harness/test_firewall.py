"""The label firewall: a method that reaches for hidden ground truth gets nothing (or fails)."""

from __future__ import annotations

import gc
import os

import numpy as np
import pandas as pd
import pytest
import toy_methods
from tiny import make_dataset

from bench import firewall, registry
from bench.interface import Labeler, RunContext, TrainView
from bench.runner import Job, SweepOptions, run_sweep
from bench.store import Store

FOUND: dict[str, object] = {}


def _reachable_gt(obj, depth: int = 0, seen=None) -> list[str]:
    """Names of ground-truth-looking things reachable from ``obj`` through attributes and containers."""
    seen = seen if seen is not None else set()
    if id(obj) in seen or depth > 6:
        return []
    seen.add(id(obj))
    hits = []
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    elif type(obj).__module__ == "logging":
        return []  # the standard logger hierarchy (its "root" is the root logger, not a data folder)
    elif hasattr(obj, "__dict__") and not isinstance(obj, (type, pd.DataFrame, np.ndarray)):
        items = vars(obj).items()
    else:
        return []
    for name, value in items:
        if name in ("tracks", "points", "layers", "val", "train", "root", "meta") and value:
            hits.append(str(name))
        hits += _reachable_gt(value, depth + 1, seen)
    return hits


class Snooper(Labeler):
    """Tries every casual route to hidden labels and records what it saw."""

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        FOUND["view_gt"] = _reachable_gt(train)
        FOUND["ctx_gt"] = _reachable_gt(ctx)
        FOUND["images_writeable"] = any(s.images.flags.writeable for s in train.sequences.values())
        FOUND["labels"] = len(train.labels)
        # The runs folder holds other runs' (larger-budget) labels: reading it must fail.
        runs_root = ctx.work_dir.parents[5]
        FOUND["found_labels"] = list(runs_root.rglob("labels.parquet"))  # pathlib swallows the refusal
        try:
            os.listdir(runs_root)
            FOUND["runs_listing"] = "allowed"
        except PermissionError:
            FOUND["runs_listing"] = "blocked"
        # Own work folder stays usable.
        (ctx.work_dir / "scratch.txt").write_text("ok")
        return train.labels


class FileThief(Labeler):
    """Opens the ground-truth file in the dataset folder directly."""

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        gt_file = FOUND["gt_file"]
        pd.read_csv(open(gt_file))  # noqa: SIM115 - the open itself is what must fail
        return train.labels


def test_views_carry_no_ground_truth():
    dataset = make_dataset()
    labels = dataset.train.tracks.iloc[:5]
    view = firewall.train_view(dataset.train, labels, dataset.frame_rate, budget=2)
    assert _reachable_gt(view) == []
    assert all(s.meta == {} for s in view.sequences.values())
    assert view.labels is not labels and len(view.labels) == 5
    view.labels.loc[0, "x"] = 1e6  # a method editing its copy changes nothing upstream
    assert dataset.train.tracks.loc[0, "x"] != 1e6
    # Nothing in the view refers back to the Split, its GT table or GT layers.
    gt_objects = {id(dataset.train), id(dataset.train.tracks), id(dataset.train.layers)}
    referents = set()
    stack = [view]
    while stack:
        obj = stack.pop()
        if id(obj) in referents:
            continue
        referents.add(id(obj))
        stack.extend(r for r in gc.get_referents(obj) if not isinstance(r, (str, int, float, type)))
    assert not gt_objects & referents


def test_snooping_method_sees_only_its_budget(tmp_path):
    toy_methods.register_all()
    registry.register("snooper", Snooper)
    try:
        options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
        # A finished run with a bigger budget sits in the runs folder first.
        run_sweep([Job("copy", dataset="tiny", budget=8, profile="smoke", overrides=("eval.pseudolabel=[3d-iou]",))],
                  options)
        result = run_sweep([Job("snooper", dataset="tiny", budget=1, profile="smoke",
                                overrides=("eval.pseudolabel=[3d-iou]",))], options)
    finally:
        registry.unregister("snooper")
    assert result.exit_code == 0, Store(tmp_path / "runs" / "bench.sqlite").run(result.planned[0].key).error
    assert FOUND["view_gt"] == [] and FOUND["ctx_gt"] == []
    assert FOUND["images_writeable"] is False
    assert FOUND["runs_listing"] == "blocked" and FOUND["found_labels"] == []
    assert FOUND["labels"] == 6  # 6 tracks x budget 1 (the tiny world has no DontCare rows)


def test_reading_gt_files_from_the_dataset_folder_fails(tmp_path, monkeypatch):
    data_root = tmp_path / "data"
    data_root.mkdir()
    FOUND["gt_file"] = data_root / "label_02.csv"
    make_dataset().train.tracks.to_csv(FOUND["gt_file"])

    def load_with_root(scale="smoke", seed=0, root=None, progress=False):
        return make_dataset(seed=seed, root=data_root)

    registry.register_dataset("tiny-on-disk", load_with_root)
    registry.register("thief", FileThief)
    try:
        result = run_sweep([Job("thief", dataset="tiny-on-disk", budget=1, profile="smoke",
                                overrides=("eval.pseudolabel=[3d-iou]",))],
                           SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu"))
    finally:
        registry.unregister("thief")
        registry.unregister("tiny-on-disk")
    record = Store(tmp_path / "runs" / "bench.sqlite").run(result.planned[0].key)
    assert record.status == "failed" and "label firewall" in record.error
    # Outside method code the runner itself may still read the folder.
    assert FOUND["gt_file"].read_text()


def test_guard_is_scoped(tmp_path):
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / "label_02.txt").write_text("secret")
    (tmp_path / "frames.txt").write_text("frames")
    with firewall.guard([gt]):
        assert (tmp_path / "frames.txt").read_text() == "frames"  # only the forbidden folder is guarded
        with pytest.raises(firewall.FirewallError):
            open(gt / "label_02.txt")
    with pytest.raises(firewall.FirewallError), firewall.guard([gt]):
        open(gt / "label_02.txt")
    # Outside the block (here left by the error) the same file reads again: the guard did not outlive its scope.
    assert (gt / "label_02.txt").read_text() == "secret"


class PeekAll(Labeler):
    sees_ground_truth = True  # only an oracle upper bound may declare this

    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        FOUND["oracle_labels"] = len(train.labels)
        return train.labels


def test_only_a_declared_oracle_gets_every_training_label(tmp_path):
    toy_methods.register_all()
    registry.register("peek-all", PeekAll)
    try:
        result = run_sweep([Job("peek-all", dataset="tiny", budget=1, profile="smoke",
                                overrides=("eval.pseudolabel=[3d-iou]",))],
                           SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu"))
    finally:
        registry.unregister("peek-all")
    assert result.exit_code == 0
    assert FOUND["oracle_labels"] == len(make_dataset().train.tracks)
    assert result.planned[0].manifest_hash == "full"


def test_guard_covers_threads_the_method_starts(tmp_path):
    import threading

    outcome = {}

    def reader():
        try:
            open("/etc/hostname").read()
            outcome["read"] = "allowed"
        except firewall.FirewallError:
            outcome["read"] = "blocked"

    with firewall.guard(["/etc"]):
        thread = threading.Thread(target=reader)
        thread.start()
        thread.join()
    assert outcome["read"] == "blocked"
