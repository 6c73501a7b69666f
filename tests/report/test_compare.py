"""``bench table --compare A B``: paired differences over shared seeds, and one line + exit 2 when it cannot pair."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bench.cli import main
from bench.store import MetricRow, RunRecord, Store


def _invoke(store: Path, *args: str):
    return CliRunner().invoke(main, ["table", "--store", str(store), *args])


def test_compare_prints_the_paired_difference(store_path):
    result = _invoke(store_path, "--compare", "sparse3dtrack", "sparse")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "paired t" in lines[0]
    # Budget 4: seeds 0 and 1 shared, +15 points on both; budget 2: +10 and +12 -> t(0.975, 1) interval.
    b4 = next(line for line in lines if "| 4 |" in line)
    assert "| 42.00 ± 2.00 | 26.00 ± 1.41 | +15.00 [+15.00, +15.00] | 2 |" in b4
    b2 = next(line for line in lines if "| 2 |" in line)
    assert "+11.00 [-1.71, +23.71]" in b2
    # The oracle has no budget: it pairs with every budget of the other method.
    oracle = _invoke(store_path, "--compare", "sparse", "oracle")
    assert oracle.exit_code == 0 and "| 4 / all |" in oracle.output and "(needs 2 seeds)" in oracle.output


def test_compare_with_a_method_without_runs_says_so_and_exits_2(store_path):
    result = _invoke(store_path, "--compare", "sparse3dtrack", "nosuch")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: method 'nosuch' has no finished runs matching the filters (methods with runs: "
        "<script>alert(1)</script>, oracle, sparse, sparse3dtrack)"]


def test_compare_on_different_seeds_says_so_and_exits_2(tmp_path):
    store = Store(tmp_path / "bench.sqlite")
    runs = (("a0", "a", 0, 0.3), ("a1", "a", 1, 0.4), ("b5", "b", 5, 0.2), ("b6", "b", 6, 0.1))
    for key, method, seed, value in runs:
        store.upsert_run(RunRecord(key=key, method=method, base="centertrack", dataset="synth-kitti", budget=4,
                                   seed=seed, profile="quick", protocol_version="1", status="ok", run_dir=f"r/{key}"))
        store.add_metrics(key, [MetricRow("val", "kitti-2d", "", "MOTA", value)])
    result = _invoke(store.path, "--compare", "a", "b")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "share no cell run on the same seeds" in line and "seeds of a: 0,1; of b: 5,6" in line
