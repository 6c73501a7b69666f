"""The progress display of ``bench run``: the runner names each stage on the same callback the methods report
their steps on (display only: the callback never changes what is computed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.runner.jobs import Job, plan_job
from bench.runner.pipeline import execute
from bench.store import Store


def test_stages_are_reported_in_order_and_results_do_not_depend_on_the_display(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    seen: list[tuple[int, int, str]] = []
    records = []
    for name, callback in (("shown", lambda done, total, what: seen.append((done, total, what))), ("quiet", None)):
        runs = tmp_path / name
        planned = plan_job(Job(method="interpolate", base="none", dataset="synth-kitti", budget=4, seed=0,
                               profile="smoke"), runs)
        record = execute(planned, runs, runs / "bench.sqlite", "cpu", progress=callback)
        assert record.status == "ok", record.error
        records.append(Store(runs / "bench.sqlite").metrics_frame()[["metric", "seq", "value"]])
    stages = [what for done, total, what in seen if (done, total) == (0, 1)]
    assert stages == ["data and labels", "pseudolabels (interpolate)", "metrics"]
    assert records[0].equals(records[1])
