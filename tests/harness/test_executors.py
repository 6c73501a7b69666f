"""The Ray executor on a local Ray instance (skipped when ray is not installed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import toy_methods

from bench.runner import Job, SweepOptions, run_sweep
from bench.store import Store

HERE = Path(__file__).parent


def test_ray_executor_runs_cells_as_tasks(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    # Ray workers import the test's helper modules by name: put them on their path.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    toy_methods.register_all()
    jobs = [Job("copy", dataset="tiny", budget=2, seed=s, profile="smoke", overrides=("eval.pseudolabel=[3d-iou]",))
            for s in range(2)] + [Job("failing", dataset="tiny", budget=2, profile="smoke")]
    result = run_sweep(jobs, SweepOptions(runs_root=tmp_path / "runs", executor="ray", jobs=2, progress=False,
                                          device="cpu"))
    assert result.exit_code == 2  # the failing cell, recorded; the others ran
    runs = Store(tmp_path / "runs" / "bench.sqlite").runs_frame().set_index("method")
    assert list(runs.loc["copy", "status"]) == ["ok", "ok"]
    assert runs.loc["failing", "status"] == "failed"
    # Ray ran them in worker processes, not in this one.
    manifests = [Store(tmp_path / "runs" / "bench.sqlite").run(p.key).manifest for p in result.planned]
    assert all(m["pid"] != os.getpid() for m in manifests)
    again = run_sweep(jobs[:2], SweepOptions(runs_root=tmp_path / "runs", executor="ray", progress=False))
    assert len(again.skipped) == 2


class SlotProbe(toy_methods.CopyLabeler):
    """Records which GPU slot its worker process was given."""

    def label(self, train, ctx):
        (ctx.work_dir / "slot.txt").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
        return super().label(train, ctx)


def test_local_executor_gives_each_worker_one_gpu_slot(tmp_path, monkeypatch):
    """With GPUs, one worker per GPU, each seeing only its own through CUDA_VISIBLE_DEVICES.

    No GPU here: the slot list is what torch would report on a 2-GPU machine; the mechanism
    (slot handed out, environment set in the worker, slot returned when it finishes) is real.
    """
    from bench import registry
    from bench.runner import executors

    toy_methods.register_all()
    registry.register("slotprobe", SlotProbe)
    monkeypatch.setattr(executors, "_gpu_slots", lambda device: ["0", "1"])
    jobs = [Job("slotprobe", dataset="tiny", budget=2, seed=s, profile="smoke",
                overrides=("eval.pseudolabel=[3d-iou]", "method.delay=0.3")) for s in range(4)]
    try:
        result = run_sweep(jobs, SweepOptions(runs_root=tmp_path / "runs", jobs=4, progress=False, device="cpu"))
    finally:
        registry.unregister("slotprobe")
    assert result.exit_code == 0
    slots = [(p.run_dir / "work" / "slot.txt").read_text() for p in result.planned]
    assert sorted(set(slots)) == ["0", "1"]  # only the two slots, each used, never "unset" or "0,1"
    assert os.environ.get("CUDA_VISIBLE_DEVICES") != "0"  # the parent's environment is untouched
