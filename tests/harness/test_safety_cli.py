"""Every bad input to `bench run` / `bench sweep` is refused at plan time: one line, exit 2, nothing written.

And exit codes mean one thing in every command (0 ok, 1 regression, 2 bad input or failed runs,
3 nothing to do), as `bench --help` lists them.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bench.cli import main

BAD_INPUTS = [
    (["run", "--method", "interpolat"], "Did you mean 'interpolate'"),
    (["sweep", "--methods", "interpolat"], "Did you mean 'interpolate'"),
    (["run", "--method", "interpolate", "--budget", "abc"], "--budget 'abc'"),
    (["run", "--method", "interpolate", "--budget", "2.5"], "--budget '2.5'"),
    (["run", "--method", "interpolate", "--budget", "0"], "at least 1"),
    (["run", "--method", "interpolate", "--budget", "ALL"], "only for methods that declare sees_ground_truth"),
    (["run", "--method", "interpolate", "--seed", "-1"], "--seed '-1'"),
    (["run", "--method", "interpolate", "--seed", "x"], "--seed 'x'"),
    (["sweep", "--methods", "interpolate", "--budgets", "2,abc"], "--budgets 'abc'"),
    (["sweep", "--methods", "interpolate", "--seeds", "a"], "--seeds 'a'"),
    (["run", "--method", "interpolate", "--set", "data.seed=abc"], "data.seed must be an integer"),
    (["run", "--method", "interpolate", "--set", "data.seed=-3"], "data.seed must be an integer"),
    (["run", "--method", "interpolate", "--set", "data.scale=huge"], "unknown data.scale 'huge'"),
    (["run", "--method", "interpolate", "--set", "data.scael=smoke"], "Did you mean 'scale'"),
    (["run", "--method", "interpolate", "--set", "nosuch.key=1"], "unknown config section"),
    (["run", "--method", "interpolate", "--set", "runner.deterministic=maybe"], "runner.deterministic"),
    (["run", "--method", "interpolate", "--set", "eval.protocols.3d-tracks=[kiti-2d]"], "Did you mean 'kitti-2d'"),
    (["run", "--method", "interpolate", "--set", "method.conf_halflif=2"], "Did you mean 'conf_halflife'"),
    (["run", "--method", "interpolate", "--set", "method.drop_pseudolabels=7"], "drop_pseudolabels"),
    (["run", "--method", "interpolate", "--set", "method.conf_halflife=abc"], "interpolate"),
    (["run", "--method", "interpolate", "--set", "base.steps=3"], "without a base tracker"),
    (["run", "--method", "sparse", "--base", "centertrack", "--set", "base.stesp=10"], "Did you mean 'steps'"),
    (["run", "--method", "sparse", "--base", "centertrack", "--set", "base.depth_mode=sideways"], "depth_mode"),
    (["run", "--method", "sparse3dtrack", "--set", "method.minig=[self]"], "'minig' (did you mean 'mining'?)"),
    (["run", "--method", "sparse3dtrack", "--set", "method.yaw_mode=sideways"], "yaw_mode"),
    (["run", "--method", "sparse", "--set", "method.foo=1"], "sparse takes no parameters"),
    (["run", "--method", "interpolate", "--set", "oops"], "key=value"),
    (["run", "--method", "interpolate", "--device", "bogus"], "--device bogus"),
    (["sweep", "--methods", "interpolate", "--device", "bogus"], "--device bogus"),
    (["sweep"], "give a PRESET or --methods"),
    (["sweep", "smok"], "known presets"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    env = {"BENCH_RUNS_DIR": str(tmp_path / "runs"), "BENCH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    result = CliRunner().invoke(main, [*args, "--profile", "smoke"] if args[0] == "run" else args, env=env)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    # Refused before any work: no runs folder, no store, no generated data.
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_typo_in_one_cell_of_a_sweep_stops_the_whole_sweep_before_it_starts(tmp_path):
    env = {"BENCH_RUNS_DIR": str(tmp_path / "runs"), "BENCH_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(main, ["sweep", "--methods", "interpolate,interpolat", "--profile", "smoke"], env=env)
    assert result.exit_code == 2 and "Did you mean 'interpolate'" in result.output
    assert not (tmp_path / "runs").exists()


def test_exit_codes_are_listed_in_help_and_mean_one_thing(tmp_path):
    help_text = CliRunner().invoke(main, ["--help"]).output
    for line in ("0  ok", "1  regression", "2  bad input", "3  nothing to do"):
        assert line in help_text
    env = {"BENCH_RUNS_DIR": str(tmp_path / "runs"), "BENCH_DATA_DIR": str(tmp_path / "data")}
    expected = tmp_path / "expected.yaml"
    expected.write_text("expected:\n- {method: interpolate, dataset: synth-kitti, budget: 4, metric: MOTA, "
                        "value: 0.5, tolerance: 0.1}\n")
    cases = [
        (["check", "--expected", str(tmp_path / "missing.yaml")], 2),  # bad input
        (["check"], 2),  # bad input: no --expected
        (["check", "--expected", str(expected)], 3),  # no store: nothing ran
        (["table"], 3),  # no store: nothing to tabulate
        (["report", "-o", str(tmp_path / "site")], 3),
        (["ls", "runs"], 3),
        (["rescore"], 3),
        (["table", "--spec", "no-such-spec", "--store", str(tmp_path / "none.sqlite")], 3),
    ]
    for args, code in cases:
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == code, (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_table_with_nothing_matching_exits_3_and_a_bad_spec_2(tmp_path):
    from bench.store import MetricRow, RunRecord, Store

    store = Store(tmp_path / "s.sqlite")
    store.upsert_run(RunRecord(key="k", method="interpolate", base=None, dataset="synth-kitti", budget=4, seed=0,
                               profile="smoke", protocol_version="1", status="ok"))
    store.add_metrics("k", [MetricRow("val", "kitti-2d", "", "MOTA", 0.5)])
    nothing = CliRunner().invoke(main, ["table", "--store", str(store.path), "--dataset", "nope"])
    assert nothing.exit_code == 3, nothing.output
    spec = CliRunner().invoke(main, ["table", "--store", str(store.path), "--spec", "no-such-spec"])
    assert spec.exit_code == 2 and "no table spec" in spec.output


def test_a_crash_exits_2_never_1(tmp_path, monkeypatch):
    """Exit 1 is bench check's 'regression': an unexpected exception must not read as one."""
    import bench.cli.run as run_module

    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(run_module, "run_sweep", crash)
    result = CliRunner().invoke(main, ["run", "--method", "interpolate", "--profile", "smoke"],
                                env={"BENCH_RUNS_DIR": str(tmp_path / "runs")})
    assert result.exit_code == 2 and "RuntimeError: a bug" in result.output
