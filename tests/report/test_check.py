"""The regression gate: comparisons, every exit code, file errors, and the CLI end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bench.check import check, expected_from_store, load_expected
from bench.cli import main


def _write(path: Path, entries: list[dict], defaults: dict | None = None) -> Path:
    doc = {"name": "t", "defaults": defaults or {"dataset": "synth-kitti", "base": "centertrack"}, "expected": entries}
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(frames, tmp_path, entries, defaults=None):
    runs, metrics = frames
    outcomes, code = check(load_expected(_write(tmp_path / "e.yaml", entries, defaults)), runs, metrics)
    return [o.status for o in outcomes], code, outcomes


def test_within_tolerance_is_ok_and_uses_the_seed_mean(frames, tmp_path):
    statuses, code, outcomes = _run(frames, tmp_path, [
        {"method": "sparse3dtrack", "budget": 4, "metric": "MOTA", "value": 0.43, "tolerance": 0.015}])
    assert (statuses, code) == (["ok"], 0)
    assert outcomes[0].mean == pytest.approx(0.42) and outcomes[0].n_ok == 3
    assert (outcomes[0].protocol, outcomes[0].split) == ("3d-iou", "val")


@pytest.mark.parametrize(("metric", "value", "expected"), [
    ("MOTA", 0.45, "regression"),  # ours 0.42: lower MOTA is worse
    ("MOTA", 0.39, "improved"),
    ("IDSW", 4, "regression"),  # ours 5: more ID switches is worse
    ("IDSW", 6, "improved"),
])
def test_direction_decides_regression_or_improvement(frames, tmp_path, metric, value, expected):
    statuses, code, _ = _run(frames, tmp_path, [
        {"method": "sparse3dtrack", "budget": 4, "metric": metric, "value": value, "tolerance": 0.01}])
    assert statuses == [expected]
    assert code == (1 if expected == "regression" else 0)


def test_two_sided_and_relative_tolerance(frames, tmp_path):
    statuses, code, _ = _run(frames, tmp_path, [
        {"method": "sparse3dtrack", "budget": 4, "metric": "MOTA", "value": 0.39, "tolerance": 0.01, "two_sided": True},
        {"method": "sparse", "budget": 4, "metric": "MOTA", "value": 0.27, "rel_tolerance": 0.2}])
    assert (statuses, code) == (["regression", "ok"], 1)


def test_failed_runs_outrank_regressions(frames, tmp_path):
    statuses, code, _ = _run(frames, tmp_path, [
        {"method": "sparse3dtrack", "budget": 4, "metric": "MOTA", "value": 0.9, "tolerance": 0.01},
        {"method": "sparse3dtrack", "budget": 8, "metric": "MOTA", "value": 0.5, "tolerance": 0.01}])
    assert (statuses, code) == (["regression", "failed"], 2)


def test_a_cell_with_no_run_among_good_ones_is_exit_2(frames, tmp_path):
    statuses, code, _ = _run(frames, tmp_path, [
        {"method": "sparse", "budget": 2, "metric": "MOTA", "value": 0.21, "tolerance": 0.01},
        {"method": "sparse", "budget": 16, "metric": "MOTA", "value": 0.3, "tolerance": 0.01}])
    assert (statuses, code) == (["ok", "missing"], 2)


def test_nothing_ran_is_exit_3(frames, tmp_path):
    statuses, code, _ = _run(frames, tmp_path, [
        {"method": "nkf-em", "budget": 4, "metric": "HOTA", "value": 0.3, "tolerance": 0.01}])
    assert (statuses, code) == (["missing"], 3)


def test_oracle_matches_budget_null(frames, tmp_path):
    statuses, code, _ = _run(frames, tmp_path, [
        {"method": "oracle", "budget": None, "metric": "MOTA", "value": 0.6, "tolerance": 0.001}])
    assert (statuses, code) == (["ok"], 0)


@pytest.mark.parametrize(("entry", "message"), [
    ({"method": "a", "budget": 4, "metric": "MOTA", "value": 1}, "needs 'tolerance'"),
    ({"method": "a", "metric": "MOTA", "value": 1, "tolerance": 0.1}, r"missing \['budget'\]"),
    ({"method": "a", "budget": 4, "metric": "MOTA", "value": "x", "tolerance": 0.1}, "must be numbers"),
    ({"method": "a", "budget": 4, "metric": "MOTA", "value": 1, "tolerance": 0.1, "tol": 1}, "unknown keys"),
])
def test_bad_expected_files_name_file_and_entry(tmp_path, entry, message):
    path = _write(tmp_path / "bad.yaml", [entry])
    with pytest.raises(ValueError, match=rf"bad\.yaml: expected\[0\]: .*{message}"):
        load_expected(path)


def test_cli_prints_table_and_exits_with_the_gate_code(store_path, tmp_path):
    runner = CliRunner()
    ok = _write(tmp_path / "ok.yaml", [{"method": "sparse3dtrack", "budget": 4, "metric": "MOTA", "value": 0.42,
                                        "tolerance": 0.01}])
    result = runner.invoke(main, ["check", "--expected", str(ok), "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    assert "42.00 ± 1.00" in result.output and "42.00 ± 2.00 (3)" in result.output and "ok (exit 0)" in result.output
    bad = _write(tmp_path / "bad.yaml", [{"method": "sparse3dtrack", "budget": 4, "metric": "MOTA", "value": 0.6,
                                          "tolerance": 0.01}])
    result = runner.invoke(main, ["check", "--expected", str(bad), "--store", str(store_path)])
    assert result.exit_code == 1 and "REGRESSION" in result.output
    result = runner.invoke(main, ["check", "--expected", str(ok), "--store", str(tmp_path / "absent.sqlite")])
    assert result.exit_code == 3 and not (tmp_path / "absent.sqlite").exists()
    broken = tmp_path / "broken.yaml"
    broken.write_text("expected: [{method: a}]\n")
    result = runner.invoke(main, ["check", "--expected", str(broken), "--store", str(store_path)])
    assert result.exit_code == 2 and "broken.yaml: expected[0]: missing" in result.output


def test_written_expectations_pass_against_the_same_store(frames, store_path, tmp_path):
    runs, metrics = frames
    doc = expected_from_store(runs, metrics, k=3, min_tolerance=0.005)
    cell = next(e for e in doc["expected"] if e["method"] == "sparse3dtrack" and e["budget"] == 4
                and e["metric"] == "MOTA")
    assert cell["value"] == pytest.approx(0.42) and cell["tolerance"] == pytest.approx(0.06)  # 3 x std 0.02
    out = tmp_path / "expected" / "nightly.yaml"
    runner = CliRunner()
    result = runner.invoke(main, ["check", "--store", str(store_path), "--write-expected", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["check", "--store", str(store_path), "--expected", str(out)])
    assert result.exit_code == 0, result.output


def test_an_expectation_means_plain_runs_unless_it_names_a_variant(tmp_path):
    from bench.store import MetricRow, RunRecord, Store

    store = Store(tmp_path / "bench.sqlite")
    for key, variant, mota in (("plain", "", 0.37), ("b1", "B1", 0.14)):
        store.upsert_run(RunRecord(key=key, method="sparse3dtrack", base="centertrack", dataset="synth-kitti",
                                   budget=4, seed=0, profile="quick", protocol_version="1", status="ok",
                                   finished_at=1.0, variant=variant))
        store.add_metrics(key, [MetricRow("val", "kitti-2d", "", "MOTA", mota)])
    frames = (store.runs_frame(), store.metrics_frame())
    entry = {"method": "sparse3dtrack", "budget": 4, "metric": "MOTA", "tolerance": 0.01}
    statuses, code, outcomes = _run(frames, tmp_path, [{**entry, "value": 0.37}, {**entry, "value": 0.14,
                                                                                  "variant": "B1"}])
    assert (statuses, code) == (["ok", "ok"], 0)
    assert [o.mean for o in outcomes] == [pytest.approx(0.37), pytest.approx(0.14)]

    # Written from the store, the variant row keeps its name, so both entries round-trip; --method filters.
    doc = expected_from_store(*frames, methods=["sparse3dtrack"], split="val")
    assert sorted(e.get("variant", "") for e in doc["expected"]) == ["", "B1"]
    assert expected_from_store(*frames, methods=["oracle"])["expected"] == []
    out = tmp_path / "written.yaml"
    result = CliRunner().invoke(main, ["check", "--store", str(store.path), "--write-expected", str(out),
                                       "--method", "sparse3dtrack", "--split", "val"])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(main, ["check", "--store", str(store.path), "--expected", str(out)]).exit_code == 0


def test_written_expectations_leave_out_motp_where_a_run_matched_nothing(tmp_path):
    from bench.store import MetricRow, RunRecord, Store

    store = Store(tmp_path / "bench.sqlite")
    # sparse@2: seed 0 matched nothing (TrackEval's MOTP 0 means "undefined"), seed 1 matched 8 boxes; oracle both.
    runs = (("s0", "sparse", 2, 0, 0, 0.0), ("s1", "sparse", 2, 1, 8, 0.69),
            ("o0", "oracle", None, 0, 300, 0.68), ("o1", "oracle", None, 1, 290, 0.67))
    for key, method, budget, seed, tp, motp in runs:
        store.upsert_run(RunRecord(key=key, method=method, base="centertrack", dataset="synth-kitti", budget=budget,
                                   seed=seed, profile="quick", protocol_version="1", status="ok", finished_at=1.0))
        store.add_metrics(key, [MetricRow("val", "kitti-2d", "", name, value)
                                for name, value in (("TP", tp), ("MOTP", motp), ("MOTA", tp / 1000))])
    doc = expected_from_store(store.runs_frame(), store.metrics_frame())
    cells = {(e["method"], e["metric"]): e for e in doc["expected"]}
    assert ("sparse", "MOTP") not in cells
    assert ("sparse", "MOTA") in cells and ("sparse", "TP") in cells
    assert cells[("oracle", "MOTP")]["value"] == pytest.approx(0.675)


def test_cells_are_matched_by_their_full_configuration(tmp_path):
    """Ad-hoc runs of the same method with other --set values, failed or finished, never count for a cell."""
    from bench.runner.keys import identity_overrides
    from bench.store import MetricRow, RunRecord, Store

    store = Store(tmp_path / "s.sqlite")
    runs = [("plain-0", 0, "ok", [], 0.40), ("plain-1", 1, "ok", ["base.threads=1"], 0.42),
            ("plain-2", 2, "ok", [], 0.44), ("adhoc-fail", 0, "failed", ["method.conf_drop=0.9"], None),
            ("adhoc-ok", 0, "ok", ["method.conf_drop=0.1"], 0.0)]
    for key, seed, status, overrides, mota in runs:
        store.upsert_run(RunRecord(key=key, method="sparse3dtrack", base="centertrack", dataset="synth-kitti",
                                   budget=4, seed=seed, profile="smoke", protocol_version="1", status=status,
                                   overrides=identity_overrides(overrides)))
        if mota is not None:
            store.add_metrics(key, [MetricRow("val", "3d-iou", "", "MOTA", mota)])
    frames = store.runs_frame(), store.metrics_frame()
    plain = {"method": "sparse3dtrack", "budget": 4, "metric": "MOTA", "value": 0.42, "tolerance": 0.01}
    statuses, code, outcomes = _run(frames, tmp_path, [plain])
    assert (statuses, code) == (["ok"], 0)  # the failed ad-hoc run does not fail the plain cell ...
    assert outcomes[0].n_ok == 3 and outcomes[0].mean == pytest.approx(0.42)  # ... nor the other one move its mean
    statuses, code, outcomes = _run(frames, tmp_path, [
        {**plain, "set": ["method.conf_drop=0.1"], "value": 0.0},
        {**plain, "set": ["method.conf_drop=0.9"]},
        {**plain, "set": ["base.threads=4"]},  # threads never split a cell
    ])
    assert statuses == ["ok", "failed", "ok"] and code == 2
    assert outcomes[0].n_ok == 1 and outcomes[2].n_ok == 3
    with pytest.raises(ValueError, match="key=value"):
        load_expected(_write(tmp_path / "bad.yaml", [{**plain, "set": ["oops"]}]))


def test_cli_checks_only_the_cells_of_a_dataset_or_method_when_asked(store_path, tmp_path):
    """A preset's synth-kitti cells can be gated while its synth-nuscenes cells were not run (exit 2 otherwise)."""
    runner = CliRunner()
    both = _write(tmp_path / "both.yaml", [
        {"method": "sparse3dtrack", "budget": 4, "metric": "MOTA", "value": 0.42, "tolerance": 0.01},
        {"method": "sparse3dtrack", "dataset": "synth-nuscenes", "budget": 4, "metric": "MOTA", "value": 0.1,
         "tolerance": 0.01}])
    check = ["check", "--expected", str(both), "--store", str(store_path)]
    assert runner.invoke(main, check).exit_code == 2  # the synth-nuscenes cell has no run
    result = runner.invoke(main, [*check, "--dataset", "synth-kitti"])
    assert result.exit_code == 0, result.output
    assert "synth-nuscenes" not in result.output
    assert runner.invoke(main, [*check, "--method", "sparse3dtrack", "--dataset", "synth-kitti"]).exit_code == 0
    result = runner.invoke(main, [*check, "--dataset", "kitti"])
    assert result.exit_code == 2 and "no expected cell" in result.output
