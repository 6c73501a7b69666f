"""docs/extending.md's three examples (a learner, a metric, a dataset) run as written, through the runner, so the
page cannot drift from the code it describes."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from bench import registry
from bench.config import ConfigError
from bench.data.datasets import cache_path, load_dataset
from bench.metrics import evaluate
from bench.metrics.base import Metric
from bench.metrics.protocols import PROTOCOLS
from bench.runner import Job, SweepOptions, run_sweep
from bench.store import Store

PAGE = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def _example(section: str, module_name: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The first Python block under ``## section``, executed as an importable module."""
    text = PAGE.read_text()
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    code = re.search(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S).group(1)
    module = types.ModuleType(module_name)
    monkeypatch.setitem(sys.modules, module_name, module)  # so that "module:function" targets resolve
    exec(compile(code, str(PAGE), "exec"), module.__dict__)
    return module


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_learner_example_runs_and_refuses_a_typo(tmp_path: Path, data_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _example("A method", "extending_learner", monkeypatch)
    try:
        options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
        result = run_sweep([Job("median-box", budget=4, profile="smoke")], options)
        record = Store(tmp_path / "runs" / "bench.sqlite").run(result.planned[0].key)
        assert record.status == "ok", record.error
        with pytest.raises(ConfigError, match="(?i)did you mean 'score'"):
            run_sweep([Job("median-box", budget=4, profile="smoke", overrides=("method.scroe=0.3",))], options)
    finally:
        registry.unregister("median-box")


def test_metric_example_scores(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _example("A metric", "extending_box_count", monkeypatch)
    assert issubclass(module.BoxCountMetric, Metric)  # the example shows the contract every family follows
    PROTOCOLS.register("box-count", "extending_box_count:evaluate_box_count")
    try:
        gt = load_dataset("synth-kitti", scale="smoke").val.tracks
        cars = gt[gt["cls"] == "Car"]
        result = evaluate("box-count", gt, cars)
    finally:
        PROTOCOLS.unregister("box-count")
    assert result.summary["BoxRatio"] == pytest.approx(len(cars) / (gt["cls"] != "DontCare").sum())
    assert set(result.per_sequence["metric"]) == {"BoxRatio"}


def test_dataset_example_loads_through_the_runner(tmp_path: Path, data_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    load_dataset("synth-kitti", scale="smoke")  # a KITTI-layout export to stand in for "my drives"
    monkeypatch.setenv("MY_DRIVES_ROOT", str(cache_path("synth-kitti", "smoke", 0)))
    _example("A dataset", "extending_dataset", monkeypatch)
    try:
        result = run_sweep([Job("interpolate", dataset="my-drives", budget=4, profile="smoke")],
                           SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu"))
        assert result.exit_code == 0
    finally:
        registry.unregister("my-drives")
