"""A labeler's pseudolabels are copied from a finished run that made them identically (another base), and only then."""

from __future__ import annotations

import json

import pytest
import toy_methods
from toy_methods import MeanBoxLearner, calls

from bench import registry
from bench.runner import EXIT_OK, Job, SweepOptions, run_sweep
from bench.runner.reuse import pseudolabel_identity, recorded_identity
from bench.runner.stages import StageDir
from bench.store import Store

FAST = ("eval.pseudolabel=[3d-iou]", "eval.protocols.3d-tracks=[kitti-2d]")


class OtherMeanBox(MeanBoxLearner):
    """A second base tracker: same behaviour, another name (so another run folder)."""


@pytest.fixture(autouse=True)
def toys():
    toy_methods.register_all()
    registry.register("meanbox2", OtherMeanBox)
    yield
    registry.unregister("meanbox2")


def job(base: str, seed: int = 0, extra: tuple[str, ...] = ()) -> Job:
    return Job(method="copy", dataset="tiny", budget=2, seed=seed, profile="smoke", base=base,
               overrides=FAST + extra)


def run(tmp_path, *jobs: Job, **kw):
    result = run_sweep(list(jobs), SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu", **kw))
    assert result.exit_code == EXIT_OK
    return result.planned


def files(run_dir) -> dict[str, bytes]:
    stage = StageDir(run_dir, "pseudolabels")
    return {p.name: p.read_bytes() for p in sorted(stage.path.iterdir()) if p.name != ".done"}


def test_a_second_base_copies_the_first_runs_pseudolabels(tmp_path):
    first = run(tmp_path, job("meanbox"))[0]
    second = run(tmp_path, job("meanbox2"))[0]
    assert calls(first.run_dir) == ["label", "fit", "predict"]
    assert calls(second.run_dir) == ["fit", "predict"]  # the labeler did not run again
    assert files(second.run_dir) == files(first.run_dir) and StageDir(second.run_dir, "pseudolabels").is_done()
    record = Store(tmp_path / "runs" / "bench.sqlite").run(second.key)
    assert record.manifest["pseudolabels_from"] == str(first.run_dir.relative_to(tmp_path / "runs"))
    # The donor's identity, read back from its run.json, is the one the second run computed for itself.
    donor_record = json.loads((first.run_dir / "run.json").read_text())
    assert recorded_identity(donor_record) == pseudolabel_identity(second, "cpu")
    metrics = Store(tmp_path / "runs" / "bench.sqlite").metrics_frame()
    pseudo = metrics[metrics["split"] == "train-pseudolabel"].groupby("run_key")["value"].apply(list)
    assert pseudo[first.key] == pseudo[second.key]


def test_nothing_is_copied_across_seeds_parameters_force_or_an_unfinished_stage(tmp_path):
    run(tmp_path, job("meanbox"))
    other_seed = run(tmp_path, job("meanbox2", seed=1))[0]
    assert calls(other_seed.run_dir)[0] == "label"
    other_param = run(tmp_path, job("meanbox2", extra=("method.delay=0.001",)))[0]
    assert calls(other_param.run_dir)[0] == "label"
    assert "pseudolabels_from" not in Store(tmp_path / "runs" / "bench.sqlite").run(other_param.key).manifest
    forced = run(tmp_path, job("meanbox2"), force=True)[0]
    assert calls(forced.run_dir)[0] == "label" and not (forced.run_dir / "pseudolabels_from.txt").exists()
    # A donor whose pseudolabels stage lost its marker (killed, or half copied) is no donor.
    killed = run(tmp_path / "c", job("meanbox"))[0]
    (killed.run_dir / "pseudolabels" / ".done").unlink()
    after = run(tmp_path / "c", job("meanbox2"))[0]
    assert calls(after.run_dir)[0] == "label"
