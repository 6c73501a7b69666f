"""`bench run / sweep / ls / rescore` through click, on the built-in synthetic data (smoke scale)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.store import Store


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return {"BENCH_DATA_DIR": str(root / "data"), "BENCH_RUNS_DIR": str(root / "runs"), "COLUMNS": "200"}, root


def test_bench_run_interpolate_end_to_end(env):
    environ, root = env
    result = CliRunner().invoke(main, ["run", "--method", "interpolate", "--budget", "4", "--profile", "smoke"],
                                env=environ)
    assert result.exit_code == 0, result.output
    assert "train-pseudolabel" in result.output and "Box recall" in result.output  # the summary (display names)
    assert "run folder: " in result.output and "bench report" in result.output
    store = Store(root / "runs" / "bench.sqlite")
    runs = store.runs_frame()
    assert list(runs["status"]) == ["ok"] and runs["run_dir"][0].startswith(str(root / "runs" / "synth-kitti"))
    m = store.metrics_frame()
    overall = m[(m["seq"] == "") & (m["protocol"] == "pseudolabel")].set_index("metric")["value"]
    # Interpolation never invents boxes off a labelled span: precise, but recall is limited by the budget.
    assert overall["BoxPrecision"] > 0.9 and 0.2 < overall["BoxRecall"] < 1.0

    again = CliRunner().invoke(main, ["run", "--method", "interpolate", "--budget", "4", "--profile", "smoke"],
                               env=environ)
    assert again.exit_code == 0 and "(cached)" in again.output


def test_sweep_dry_run_ls_and_rescore(env):
    environ, root = env
    dry = CliRunner().invoke(main, ["sweep", "--methods", "interpolate", "--budgets", "2,4", "--profile", "smoke",
                                    "--dry-run"], env=environ)
    assert dry.exit_code == 0, dry.output
    assert "finished" in dry.output and "new" in dry.output and "2 cells: 1 to run, 1 skipped" in dry.output
    listed = CliRunner().invoke(main, ["ls", "runs"], env=environ)
    assert listed.exit_code == 0 and "interpolate" in listed.output and "ok" in listed.output
    rescored = CliRunner().invoke(main, ["rescore", "--method", "interpolate"], env=environ)
    assert rescored.exit_code == 0 and "rescored 1 of 1" in rescored.output


def test_cli_errors_are_clear(env):
    environ, _ = env
    unknown = CliRunner().invoke(main, ["run", "--method", "interpolat", "--profile", "smoke"], env=environ)
    # Bad input exits 2 (3 means "nothing to do").
    assert unknown.exit_code == 2 and "Did you mean 'interpolate'" in unknown.output
    bad = CliRunner().invoke(main, ["run", "--method", "interpolate", "--set", "oops"], env=environ)
    assert bad.exit_code == 2 and "key=value" in bad.output
    empty = CliRunner().invoke(main, ["sweep"], env=environ)
    assert empty.exit_code == 2


def test_sweep_presets(env):
    environ, _ = env
    dry = CliRunner().invoke(main, ["sweep", "smoke", "--dry-run"], env=environ)
    assert dry.exit_code == 0, dry.output
    assert "6 cells:" in dry.output and "smoke" in dry.output  # the preset's grid and its profile
    unknown = CliRunner().invoke(main, ["sweep", "smok"], env=environ)
    assert unknown.exit_code == 2 and "known presets" in unknown.output
    listed = CliRunner().invoke(main, ["ls", "sweeps"], env=environ)
    assert {"nightly", "smoke"} <= set(listed.output.split())
