"""The three bugs issue 14 reproduced on a fresh clone, each pinned by a test that failed before the fix.

1. A profile given as a YAML path reached CenterTrack, whose own profile table knew only smoke/quick/paper
   ("unknown CenterTrack profile"): a copy of a built-in profile must run and give that profile's numbers.
2. A failed run whose profile is an absolute path was reported through rich markup, and the path's
   ``[/...]`` read as a closing tag: the failure line must print as text.
3. ``CenterTrackLearner(stesp=10)`` (a typo) was accepted: the constructor's signature is the schema.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.config import PROFILES_DIR
from bench.store import Store


def _overall(store_path: Path) -> dict[tuple[str, str, str], str]:
    m = Store(store_path, readonly=True).metrics_frame()
    m = m[m["seq"] == ""]
    return {(r.split, r.protocol, r.metric): repr(r.value) for r in m.itertuples(index=False)}  # repr: NaN == NaN


def test_a_profile_yaml_path_runs_a_base_tracker_like_the_profile_it_copies(tmp_path: Path) -> None:
    mine = tmp_path / "my.yaml"
    shutil.copy(PROFILES_DIR / "smoke.yaml", mine)
    args = ["run", "--method", "sparse", "--base", "centertrack", "--budget", "4", "--set", "base.threads=1"]
    env = {"BENCH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    by_name = CliRunner().invoke(main, [*args, "--profile", "smoke", "--runs-dir", str(tmp_path / "a")], env=env)
    assert by_name.exit_code == 0, by_name.output
    by_path = CliRunner().invoke(main, [*args, "--profile", str(mine), "--runs-dir", str(tmp_path / "b")], env=env)
    assert by_path.exit_code == 0, by_path.output
    numbers = _overall(tmp_path / "b" / "bench.sqlite")
    assert any(k[0] == "val" for k in numbers)  # the base tracker ran and was scored
    assert numbers == _overall(tmp_path / "a" / "bench.sqlite")


def test_a_failure_under_an_absolute_profile_path_is_printed_not_parsed_as_markup(tmp_path: Path) -> None:
    import toy_methods

    toy_methods.register_all()
    mine = tmp_path / "my.yaml"
    shutil.copy(PROFILES_DIR / "smoke.yaml", mine)
    result = CliRunner().invoke(main, ["run", "--method", "failing", "--profile", str(mine.resolve()), "--budget", "2",
                                       "--runs-dir", str(tmp_path / "runs")],
                                env={"BENCH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "MarkupError" not in result.output and "a bug" not in result.output, result.output
    assert "failed" in result.output and f"[{mine.resolve()}]" in result.output.replace("\n", "")


def test_a_mistyped_constructor_parameter_is_refused() -> None:
    from baselines.centertrack.learner import CenterTrackLearner

    with pytest.raises(TypeError, match="stesp"):
        CenterTrackLearner(stesp=10)
    assert CenterTrackLearner(steps=10).get_params()["steps"] == 10


def test_a_mistyped_base_setting_fails_at_plan_time_with_did_you_mean(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--method", "sparse", "--base", "centertrack", "--profile", "smoke",
                                       "--set", "base.stesp=10", "--runs-dir", str(tmp_path / "runs")],
                                env={"BENCH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "stesp" in result.output and "steps" in result.output
    assert not (tmp_path / "runs" / "synth-kitti").exists()  # refused before any run folder was made


def test_rescore_of_a_store_with_and_without_base_trackers_rescores_every_run(tmp_path: Path) -> None:
    """Found while checking issue 14's rescoring: a run without a base, in a store where another run has one,
    read its base as NaN and was skipped as "unknown method 'nan'"."""
    env = {"BENCH_DATA_DIR": str(tmp_path / "data"), "BENCH_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200"}
    common = ["--budget", "4", "--profile", "smoke", "--set", "eval.pseudolabel=[3d-iou]"]
    for args in (["--method", "sparse", "--base", "centertrack", "--set", "base.threads=1"],
                 ["--method", "interpolate"]):
        result = CliRunner().invoke(main, ["run", *args, *common], env=env)
        assert result.exit_code == 0, result.output
    store = tmp_path / "runs" / "bench.sqlite"
    before = _overall(store)
    import sqlite3

    with sqlite3.connect(store) as con:  # rescoring must recompute them, not find them
        con.execute("DELETE FROM metrics")
    rescored = CliRunner().invoke(main, ["rescore"], env=env)
    assert rescored.exit_code == 0 and "rescored 2 of 2 runs" in rescored.output, rescored.output
    assert _overall(store) == before
