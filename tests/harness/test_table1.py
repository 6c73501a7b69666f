"""`bench sweep table1` end to end at the smoke profile, then `bench table --spec table1` and the report's page.

One data seed and one dataset (16 cells: 8 rows x 2 bases, ~55 CPU-s); the full smoke preset (96 cells) is
the same code over more cells (docs/methods/pretrained2d.md has its cost)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from pandas.testing import assert_frame_equal

from bench.cli import main
from bench.runner.jobs import SWEEPS_DIR, ConfigError, load_sweep
from bench.store import Store


def test_a_sweep_preset_lists_several_bases_or_one(tmp_path):
    grid = load_sweep("table1")
    assert grid["bases"] == ["centertrack", "deft"] and "base" not in grid
    bad = tmp_path / "bad.yaml"
    for extra in ("bases: centertrack", "bases: []", "bases: [deft]\nbase: centertrack"):
        bad.write_text(f"methods: [sparse]\nbudgets: [4]\ndatasets: [synth-kitti]\nseeds: [0]\n{extra}\n")
        with pytest.raises(ConfigError, match="bases"):
            load_sweep(str(bad))


@pytest.mark.slow
def test_table1_sweep_runs_at_smoke_and_fills_its_table(tmp_path):
    env = {"BENCH_DATA_DIR": str(tmp_path / "data"), "BENCH_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200"}
    runner = CliRunner()
    dry = runner.invoke(main, ["sweep", "table1", "--profile", "smoke", "--dry-run"], env=env)
    assert dry.exit_code == 0 and "96 cells: 96 to run" in dry.output, dry.output
    result = runner.invoke(main, ["sweep", "table1", "--profile", "smoke", "--seeds", "0", "--datasets",
                                  "synth-kitti"], env=env)
    assert result.exit_code == 0, result.output
    runs = Store(tmp_path / "runs" / "bench.sqlite", readonly=True).runs_frame()
    preset = yaml.safe_load((SWEEPS_DIR / "table1.yaml").read_text())
    assert sorted(zip(runs["method"], runs["base"], strict=True)) == sorted(
        (m, b) for m in preset["methods"] for b in preset["bases"])
    assert set(runs["status"]) == {"ok"}
    # Each labeler ran once per pair of bases: the second base's run copied the first's pseudolabels
    # (bench.runner.reuse), and trains exactly as it would have after running the labeler itself.
    store = Store(tmp_path / "runs" / "bench.sqlite", readonly=True)
    records = {(r.method, r.base): r for r in (store.run(key) for key in runs["key"])}
    for method in preset["methods"]:
        pair = [records[(method, base)] for base in preset["bases"]]
        copied = [r for r in pair if "pseudolabels_from" in r.manifest]
        assert len(copied) == 1, method
        donor = next(r for r in pair if r is not copied[0])
        assert (tmp_path / "runs" / copied[0].manifest["pseudolabels_from"]).resolve() == Path(donor.run_dir).resolve()
    alone_env = {**env, "BENCH_RUNS_DIR": str(tmp_path / "alone")}
    recipient = next(r for r in records.values() if r.method == "spot+centernet" and "pseudolabels_from" in r.manifest)
    alone = runner.invoke(main, ["run", "--method", "spot+centernet", "--base", recipient.base, "--dataset",
                                 "synth-kitti", "--budget", "4", "--seed", "0", "--profile", "smoke"], env=alone_env)
    assert alone.exit_code == 0, alone.output
    (alone_dir,) = (tmp_path / "alone").glob(f"synth-kitti/spot+centernet+{recipient.base}/b4/s0/*")
    assert_frame_equal(pd.read_parquet(alone_dir / "prediction" / "predictions.parquet"),
                       pd.read_parquet(Path(recipient.run_dir) / "prediction" / "predictions.parquet"))
    table = runner.invoke(main, ["table", "--spec", "table1"], env=env)
    assert table.exit_code == 0, table.output
    rows = [line for line in table.output.splitlines() if line.startswith("| ") and "↳" not in line][1:]
    assert len(rows) == 16 and all(" - |" not in row.split("|", 4)[4] for row in rows)  # every kitti cell filled
    assert table.output.count("SAM2 role: 2D tracker pretrained on 80 synthetic sequences") == 6
    site = runner.invoke(main, ["report", "-o", str(tmp_path / "site")], env=env)
    assert site.exit_code == 0, site.output
    page = (tmp_path / "site" / "tables.html").read_text()
    assert "Sparse3DTrack Table 1" in page and "paper (sparse3dtrack_table1)" in page
