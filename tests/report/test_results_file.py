"""`bench store export|import` and `bench report --include`: results travel without the machine they ran on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.sequence import DataError
from bench.results_file import FORMAT, read_results
from bench.store import MetricRow, RunRecord, Store


def _store(path: Path) -> Store:
    store = Store(path)
    for seed, mota in ((0, 0.31), (1, 0.35)):
        key = f"k{seed}"
        store.upsert_run(RunRecord(key=key, method="sparse", base="centertrack", dataset="synth-kitti", budget=4,
                                   seed=seed, profile="quick", protocol_version="3", status="ok",
                                   finished_at=1.0, config={"seed": seed}, manifest={"cpu": "x"},
                                   run_dir=f"/machine/runs/{key}"))
        store.add_metrics(key, [MetricRow("val", "kitti-2d", "", "MOTA", mota),
                                MetricRow("val", "kitti-2d", "0000", "MOTA", mota - 0.1)])
    store.upsert_run(RunRecord(key="bad", method="sparse", base=None, dataset="synth-kitti", budget=4, seed=2,
                               profile="quick", protocol_version="3", status="failed", error="boom"))
    return store


def test_export_import_round_trip(tmp_path: Path) -> None:
    _store(tmp_path / "a.sqlite")
    out = tmp_path / "results" / "r.json"
    result = CliRunner().invoke(main, ["store", "export", "-o", str(out), "--store", str(tmp_path / "a.sqlite")])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["format"] == FORMAT and [r["key"] for r in payload["runs"]] == ["k0", "k1"]  # no failed run
    assert "run_dir" not in payload["runs"][0]  # no machine-local paths
    assert payload["runs"][0]["metrics"] == [["val", "kitti-2d", "", "MOTA", 0.31]]  # overall only by default

    result = CliRunner().invoke(main, ["store", "import", str(out), "--store", str(tmp_path / "b.sqlite")])
    assert result.exit_code == 0 and "imported 2 runs" in result.output, result.output
    b = Store(tmp_path / "b.sqlite")
    assert b.run("k1").manifest == {"cpu": "x", "imported_from": "r.json"}
    m = b.metrics_frame()
    assert m.set_index("run_key")["value"].to_dict() == {"k0": 0.31, "k1": 0.35}
    again = CliRunner().invoke(main, ["store", "import", str(out), "--store", str(tmp_path / "b.sqlite")])
    assert "imported 0 runs" in again.output and "kept 2" in again.output


def test_report_include_shows_reference_rows_beside_local_runs(tmp_path: Path) -> None:
    _store(tmp_path / "a.sqlite")
    out = tmp_path / "r.json"
    CliRunner().invoke(main, ["store", "export", "-o", str(out), "--store", str(tmp_path / "a.sqlite")])
    site = tmp_path / "site"
    result = CliRunner().invoke(main, ["report", "-o", str(site), "--include", str(out),
                                       "--store", str(tmp_path / "missing.sqlite")])
    assert result.exit_code != 0  # an explicit --store that does not exist is still an error
    env = {"BENCH_RUNS_DIR": str(tmp_path / "empty-runs")}
    result = CliRunner().invoke(main, ["report", "-o", str(site), "--include", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "sparse [ref]" in (site / "index.html").read_text()


@pytest.mark.parametrize("text, problem", [
    ("{", "not a bench results file"),
    ('{"format": "other"}', "not a bench results file"),
    (json.dumps({"format": FORMAT, "runs": [{"key": 1}]}), "runs[0]"),
    (json.dumps({"format": FORMAT, "runs": [{"key": "k", "method": "m", "base": None, "dataset": "d",
                                             "budget": 4, "seed": 0, "profile": "p", "protocol_version": "1",
                                             "status": "ok", "metrics": [["val", "p", "", "MOTA", "x"]]}]}),
     "value must be a number"),
    (json.dumps({"format": FORMAT, "runs": [{"key": "k", "evil": 1}]}), "unknown fields"),
])
def test_bad_results_files_are_one_line_errors(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(DataError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        read_results(path)
    result = CliRunner().invoke(main, ["store", "import", str(path), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "s.sqlite").exists(), "a bad file must not create or touch the store"
