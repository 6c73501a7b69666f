"""The runner: caching by key, resume, force, failures, exit codes, dry runs, rescoring, checkpoints."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch
import toy_methods
from toy_methods import calls

from bench.runner import EXIT_FAILED, EXIT_NOTHING, EXIT_OK, Job, SweepOptions, run_sweep
from bench.runner.stages import StageDir, load_checkpoint
from bench.store import Store

FAST = ("eval.pseudolabel=[3d-iou]", "eval.protocols.3d-tracks=[kitti-2d]")


@pytest.fixture(autouse=True)
def toys():
    toy_methods.register_all()
    yield


def job(method="copy", **kw) -> Job:
    kw.setdefault("overrides", FAST)
    return Job(method=method, dataset="tiny", budget=kw.pop("budget", 2), seed=kw.pop("seed", 0), profile="smoke", **kw)


def opts(tmp_path, **kw) -> SweepOptions:
    return SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu", **kw)


def test_labeler_with_base_runs_all_stages_then_skips(tmp_path):
    result = run_sweep([job(base="meanbox")], opts(tmp_path))
    assert result.exit_code == EXIT_OK
    planned = result.planned[0]
    assert planned.run_dir.is_relative_to(tmp_path / "runs" / "tiny" / "copy+meanbox" / "b2" / "s0")
    for stage in ("labels", "pseudolabels", "training", "prediction", "metrics"):
        assert StageDir(planned.run_dir, stage).is_done(), stage
    assert calls(planned.run_dir) == ["label", "fit", "predict"]
    record = Store(tmp_path / "runs" / "bench.sqlite").run(planned.key)
    assert record.status == "ok" and record.peak_mem_mb > 10 and record.wall_s > 0 and record.fps > 0
    assert record.manifest["git"]["commit"] and "numpy" in record.manifest["packages"]
    # Trained results depend on the CPU's kernels, so the record names the CPU and torch's SIMD level.
    assert record.manifest["cpu"]["model"]
    assert record.manifest["cpu"]["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record.config["eval"]["pseudolabel"] == ["3d-iou"]
    assert (planned.run_dir / "config.yaml").exists()
    metrics = Store(tmp_path / "runs" / "bench.sqlite").metrics_frame()
    assert set(metrics["split"]) == {"train-pseudolabel", "val"}

    again = run_sweep([job(base="meanbox")], opts(tmp_path))
    assert again.exit_code == EXIT_OK and len(again.skipped) == 1
    assert calls(planned.run_dir) == ["label", "fit", "predict"]

    forced = run_sweep([job(base="meanbox")], opts(tmp_path, force=True))
    assert forced.planned[0].action == "run" and calls(planned.run_dir)[-3:] == ["label", "fit", "predict"]


def test_key_changes_with_config_and_budget(tmp_path):
    a = run_sweep([job()], opts(tmp_path, dry_run=True)).planned[0]
    b = run_sweep([job(overrides=FAST + ("method.delay=0.001",))], opts(tmp_path, dry_run=True)).planned[0]
    c = run_sweep([job(budget=1)], opts(tmp_path, dry_run=True)).planned[0]
    assert len({a.key, b.key, c.key}) == 3
    assert a.manifest_hash != c.manifest_hash


def test_resume_uses_checkpoint_loaded_weights_only(tmp_path):
    result = run_sweep([job(base="meanbox")], opts(tmp_path))
    run_dir = result.planned[0].run_dir
    # Lose the prediction and the result: the rerun must load the checkpoint, not train again.
    StageDir(run_dir, "prediction").clear()
    StageDir(run_dir, "metrics").clear()
    store = Store(tmp_path / "runs" / "bench.sqlite")
    store.upsert_run(dataclasses.replace(store.run(result.planned[0].key), status="running"))
    run_sweep([job(base="meanbox")], opts(tmp_path))
    assert calls(run_dir) == ["label", "fit", "predict", "predict"]


def test_checkpoint_loader_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"w": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(path)


def test_failure_is_recorded_and_sweep_goes_on(tmp_path):
    result = run_sweep([job("failing"), job("copy")], opts(tmp_path))
    assert result.exit_code == EXIT_FAILED
    store = Store(tmp_path / "runs" / "bench.sqlite")
    statuses = {r.method: r for r in (store.run(p.key) for p in result.planned)}
    assert statuses["copy"].status == "ok"
    assert statuses["failing"].status == "failed" and "this labeler always fails" in statuses["failing"].error
    assert "Traceback" in statuses["failing"].error
    # Failed cells are skipped unless asked; with only them left, nothing runs (exit 3).
    assert run_sweep([job("failing")], opts(tmp_path)).exit_code == EXIT_NOTHING
    retried = run_sweep([job("failing")], opts(tmp_path, rerun_failed=True))
    assert retried.planned[0].action == "run" and retried.exit_code == EXIT_FAILED


def test_dry_run_prints_grid_and_runs_nothing(tmp_path, capsys):
    run_sweep([job(seed=0)], opts(tmp_path))
    from rich.console import Console

    console = Console(file=open(tmp_path / "out.txt", "w"), width=200)
    result = run_sweep([job(seed=0), job(seed=1)], opts(tmp_path, dry_run=True), console)
    console.file.close()
    text = (tmp_path / "out.txt").read_text()
    assert [p.action for p in result.planned] == ["skip", "run"]
    assert "finished" in text and "new" in text
    assert not result.planned[1].run_dir.exists()


def test_empty_grid_is_nothing_ran(tmp_path):
    assert run_sweep([], opts(tmp_path)).exit_code == EXIT_NOTHING


def test_rescore_recomputes_from_stored_outputs(tmp_path):
    from bench.runner.pipeline import rescore

    result = run_sweep([job()], opts(tmp_path))
    planned = result.planned[0]
    store = Store(tmp_path / "runs" / "bench.sqlite")
    before = store.metrics_frame()
    with store._transaction() as con:  # a "metric bug": wipe the numbers
        con.execute("UPDATE metrics SET value = -1")
    planned.config["eval"]["pseudolabel"] = ["3d-iou"]
    rescore(planned, store.path)
    after = store.metrics_frame()
    assert calls(planned.run_dir) == ["label"]  # no method code ran again
    assert sorted(after["value"]) == sorted(before["value"])


def test_rescore_leaves_a_run_stopped_before_its_predictions_unfinished(tmp_path):
    """A run killed while its base tracker trained has pseudolabels only: rescoring must not mark it ok."""
    import shutil

    from bench.runner.pipeline import rescore
    from bench.runner.stages import StageDir

    planned = run_sweep([job(base="meanbox")], opts(tmp_path)).planned[0]
    store = Store(tmp_path / "runs" / "bench.sqlite")
    record = store.run(planned.key)
    record.status = "running"
    store.upsert_run(record)
    shutil.rmtree(StageDir(planned.run_dir, "prediction").path)
    assert rescore(planned, store.path) is None
    assert store.run(planned.key).status == "running"


def test_point_track_method_is_scored_by_tapvid3d_and_rescored(tmp_path):
    from bench.runner.artifacts import load_point_tracks
    from bench.runner.pipeline import rescore

    result = run_sweep([job("raypoints", overrides=())], opts(tmp_path))
    planned = result.planned[0]
    store = Store(tmp_path / "runs" / "bench.sqlite")
    assert result.exit_code == EXIT_OK, store.run(planned.key).error
    tracks = load_point_tracks(StageDir(planned.run_dir, "prediction").file("predictions.npz"))
    assert set(tracks) == {"0002"} and tracks["0002"].xyz.shape[1:] == (6, 3)
    m = store.metrics_frame()
    overall = m[(m["seq"] == "") & (m["protocol"] == "tapvid3d")].set_index("metric")["value"]
    assert 0 <= overall["APD3D"] < 1 and overall["OA"] == 1.0
    before = sorted(m["value"])
    rescore(planned, store.path)
    assert sorted(store.metrics_frame()["value"]) == before
