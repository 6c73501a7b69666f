"""Named table specs (leaderboards/tables/): the Sparse3DTrack main table filled from a store written
through the Store API, its gap-closed line, its HTML page, and clear errors for bad spec files."""

from __future__ import annotations

import re

import pytest

from bench.report.html import render_report
from bench.report.schema import LEADERBOARDS_DIR
from bench.report.specs import fill_table, load_table_spec, load_table_specs, spec_markdown
from bench.report.tables import summarize
from bench.store import MetricRow, RunRecord, Store

# method, budget, seed -> kitti-2d MOTA, 3d-iou MOTA, nuscenes amota (the devkit's lowercase names)
RUNS = [
    ("sparse", 4, 0, 0.10, 0.05, 0.02), ("sparse", 4, 1, 0.12, 0.07, 0.04),
    ("sparse3dtrack", 4, 0, 0.25, 0.15, 0.10), ("sparse3dtrack", 4, 1, 0.27, 0.17, 0.12),
    ("oracle", None, 0, 0.40, 0.30, 0.20), ("oracle", None, 1, 0.42, 0.32, 0.22),
    ("sparse3dtrack", 2, 0, 0.99, 0.99, 0.99),  # another budget: not in the table
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("specs") / "bench.sqlite")
    for i, (method, budget, seed, kitti, iou, amota) in enumerate(RUNS):
        for dataset in ("synth-kitti", "synth-nuscenes"):
            key = f"{dataset}-{i}"
            store.upsert_run(RunRecord(key=key, method=method, base="centertrack", dataset=dataset, budget=budget,
                                       seed=seed, profile="quick", protocol_version="1", status="ok",
                                       run_dir=f"runs/{key}"))
            if dataset == "synth-kitti":
                rows = [MetricRow("val", "kitti-2d", "", "MOTA", kitti), MetricRow("val", "kitti-2d", "", "IDF1", 0.5),
                        MetricRow("val", "3d-iou", "", "MOTA", iou)]
            else:
                rows = [MetricRow("val", "nuscenes", "", "amota", amota),
                        MetricRow("val", "nuscenes", "", "amotp", 1.5),
                        MetricRow("train-pseudolabel", "nuscenes", "", "amota", 0.9)]
            store.add_metrics(key, rows)
    return store


def test_main_table_spec_is_filled_from_the_store(store):
    spec = load_table_spec(LEADERBOARDS_DIR / "tables" / "sparse3dtrack_main.yaml")
    assert [r.method for r in spec.rows] == ["sparse", "sparse3dtrack", "oracle"] and spec.rows[2].budget is None
    assert [(c.dataset, c.protocol, c.metric) for c in spec.columns][:8] == [
        ("synth-kitti", p, m) for p in ("kitti-2d-scaled", "kitti-2d") for m in ("MOTA", "MOTP", "IDF1", "HOTA")]
    assert [(c.protocol, c.metric) for c in spec.columns if c.dataset == "synth-nuscenes"] == [
        ("nuscenes", "AMOTA"), ("nuscenes", "AMOTP"), ("nuscenes", "MOTA"), ("kitti-2d-scaled", "MOTA"),
        ("kitti-2d-scaled", "IDF1"), ("kitti-2d-scaled", "HOTA"), ("depth-error", "DepthErr20to40"),
        ("depth-error", "DepthErr40up")]
    table = fill_table(spec, summarize(store.metrics_frame()))
    # Columns nothing in the store fills are left out (this store has no kitti-2d-scaled or depth-error rows).
    assert {c.protocol for c in table.spec.columns} == {"kitti-2d", "3d-iou", "nuscenes"}
    col = {(c.protocol, c.metric): j for j, c in enumerate(table.spec.columns)}
    assert table.cells[(1, col[("kitti-2d", "MOTA")])].mean == pytest.approx(0.26)
    assert table.cells[(1, col[("kitti-2d", "MOTA")])].n == 2
    assert table.cells[(2, col[("nuscenes", "AMOTA")])].mean == pytest.approx(0.21)  # "amota" on val only
    assert ("kitti-2d", "HOTA") not in col  # stored for no row: the column is left out
    assert table.gap is not None
    # (0.26 - 0.11) / (0.41 - 0.11) = 0.5; 3d-iou (0.16 - 0.06) / (0.31 - 0.06) = 0.4
    assert table.gap[col[("kitti-2d", "MOTA")]] == pytest.approx(0.5)
    assert table.gap[col[("3d-iou", "MOTA")]] == pytest.approx(0.4)
    text = spec_markdown(table)
    assert "| Sparse3DTrack (4 labels/track) | centertrack | 4 | 26.00 ± 1.41 |" in text
    assert "| Oracle (all labels) | centertrack | all |" in text
    # Gap closed with its seeded bootstrap interval; each seed closes exactly half, so the interval is a point.
    assert "| 0.50 [0.50, 0.50] |" in text and "[95 % bootstrap over seeds]" in text
    # The paired difference sparse3dtrack - sparse: +15 points on both seeds.
    assert "sparse3dtrack − sparse (mean difference over shared seeds" in text
    assert "| +15.00 [+15.00, +15.00] (2) |" in text


def test_report_has_the_tables_page(store, tmp_path):
    render_report(store.runs_frame(), store.metrics_frame(), tmp_path / "site")
    html = (tmp_path / "site" / "tables.html").read_text()
    assert 'href="tables.html"' in html and "Sparse3DTrack main table" in html
    row = re.search(r"<tr><td class=\"name\">Sparse \(4 labels/track\)</td>(.*?)</tr>", html, re.S)
    assert row and re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))[:3] == ["centertrack", "4", "11.00 ± 1.41"]
    assert "gap closed: (sparse3dtrack − sparse) / (oracle − sparse)" in html


def test_bad_specs_name_file_and_entry(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("rows: [{method: a}]\ncolumns: [{dataset: d, protocol: p, metrics: [MOTA]}]\n")
    with pytest.raises(ValueError, match=r"t\.yaml: rows\[0\]: expected \{method, budget"):
        load_table_spec(bad)
    bad.write_text("rows: [{method: a, budget: 0}]\ncolumns: [{dataset: d, protocol: p, metrics: [MOTA]}]\n")
    with pytest.raises(ValueError, match="budget must be a positive integer or null"):
        load_table_spec(bad)
    bad.write_text("rows: [{method: a, budget: 4}]\ncolumns: [{dataset: d, protocol: p, metrics: []}]\n")
    with pytest.raises(ValueError, match=r"columns\[0\]"):
        load_table_spec(bad)
    bad.write_text("rows: [{method: a, budget: 4}]\ncolumns: [{dataset: d, protocol: p, metrics: [MOTA]}]\n"
                   "gap_closed: {row: a, lower: b, upper: a}\n")
    with pytest.raises(ValueError, match="gap_closed"):
        load_table_spec(bad)
    bad.write_text("rows: [{method: a, budget: 4}]\ncolumns: [{dataset: d, protocol: p, metrics: [MOTA]}]\n"
                   "compare_to: b\n")
    with pytest.raises(ValueError, match="compare_to"):
        load_table_spec(bad)
    bad.write_text("rows: [{method: a, budget: 4}]\ncolumns: [{dataset: d, protocol: p, metrics: [MOTA]}]\n"
                   "published: no_such_paper\n")
    with pytest.raises(ValueError, match="no_such_paper"):
        load_table_spec(bad)
    shipped = {s.name: s for s in load_table_specs()}
    assert sorted(shipped) == ["bounds", "sparse3dtrack_main", "table1"]
    # The bounds table is the sparse labeler at the four budgets, then the oracle, as issue 5 asks.
    assert [(r.method, r.budget) for r in shipped["bounds"].rows] == [
        ("sparse", 2), ("sparse", 4), ("sparse", 8), ("sparse", 16), ("oracle", None)]


def test_bench_table_spec_prints_the_filled_table_and_names_known_specs(store):
    from click.testing import CliRunner

    from bench.cli import main

    result = CliRunner().invoke(main, ["table", "--spec", "sparse3dtrack_main", "--store", str(store.path)])
    assert result.exit_code == 0, result.output
    assert "| Sparse3DTrack (4 labels/track) | centertrack | 4 | 26.00 ± 1.41 |" in result.output
    missing = CliRunner().invoke(main, ["table", "--spec", "nope", "--store", str(store.path)])
    assert missing.exit_code != 0 and "sparse3dtrack_main" in missing.output


# Table 1 (issue 17): two bases, paired differences against Ours per base, the paper's numbers under each row.
TABLE1_RUNS = [  # method, base, budget, seed, kitti-2d MOTA
    ("sparse3dtrack", "centertrack", 4, 0, 0.30), ("sparse3dtrack", "centertrack", 4, 1, 0.34),
    ("pretrained2d+centernet", "centertrack", 4, 0, 0.20), ("pretrained2d+centernet", "centertrack", 4, 1, 0.24),
    ("sparse3dtrack", "deft", 4, 0, 0.10), ("sparse3dtrack", "deft", 4, 1, 0.12),
    ("pretrained2d+centernet", "deft", 4, 0, 0.15), ("pretrained2d+centernet", "deft", 4, 1, 0.19),
]


def _table1_store(path) -> Store:
    store = Store(path)
    for i, (method, base, budget, seed, mota) in enumerate(TABLE1_RUNS):
        store.upsert_run(RunRecord(key=f"t1-{i}", method=method, base=base, dataset="synth-kitti", budget=budget,
                                   seed=seed, profile="quick", protocol_version="1", status="ok",
                                   run_dir=f"runs/t1-{i}"))
        store.add_metrics(f"t1-{i}", [MetricRow("val", "kitti-2d", "", "MOTA", mota)])
    return store


def test_table1_pairs_each_row_with_ours_on_its_own_base_and_shows_the_paper(tmp_path):
    spec = load_table_spec(LEADERBOARDS_DIR / "tables" / "table1.yaml")
    table = fill_table(spec, summarize(_table1_store(tmp_path / "bench.sqlite").metrics_frame()))
    assert [(c.protocol, c.metric) for c in table.spec.columns] == [("kitti-2d", "MOTA")]
    row = {(r.method, r.base): i for i, r in enumerate(spec.rows)}
    # pretrained2d+centernet - sparse3dtrack, seed by seed: centertrack -0.10, -0.10; deft +0.05, +0.07.
    ct, deft = table.versus[row[("pretrained2d+centernet", "centertrack")]][0], \
        table.versus[row[("pretrained2d+centernet", "deft")]][0]
    assert ct is not None and ct.value == pytest.approx(-0.10) and ct.n == 2 and ct.high == pytest.approx(-0.10)
    assert deft is not None and deft.value == pytest.approx(0.06) and deft.contains_zero  # two seeds: t(1) is wide
    assert row[("sparse3dtrack", "deft")] not in table.versus  # Ours is not compared with itself
    # The paper's KITTI MOTA of "SAM2 | CenterNet" on each base (Table 1: 27.42 and 24.57), in store units.
    assert table.paper[row[("pretrained2d+centernet", "centertrack")]] == [pytest.approx(0.2742)]
    assert table.paper[row[("pretrained2d+centernet", "deft")]] == [pytest.approx(0.2457)]
    assert table.paper[row[("oracle", "deft")]] == [pytest.approx(0.4402)]
    text = spec_markdown(table)
    role = "SAM2 role: 2D tracker pretrained on 80 synthetic sequences"
    assert f"| {role} + CenterNet | deft | 4 | 17.00 ± 2.83 |" in text
    assert "| ↳ paper (sparse3dtrack_table1) |  |  | 24.57 |" in text
    assert "| ↳ − sparse3dtrack [95 % paired t] |  |  | +6.00 [-6.71, +18.71] |" in text
    assert "SAM2 |" not in text  # never labelled as SAM 2 itself


def test_table1_renders_from_an_included_results_file(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main

    store = _table1_store(tmp_path / "bench.sqlite")
    export = tmp_path / "table1.json"
    runner = CliRunner()
    out = runner.invoke(main, ["store", "export", "--store", str(store.path), "-o", str(export)])
    assert out.exit_code == 0, out.output
    empty = tmp_path / "empty.sqlite"
    Store(empty)
    result = runner.invoke(main, ["table", "--spec", "table1", "--store", str(empty), "--include", str(export)])
    assert result.exit_code == 0, result.output
    assert "| Ours (Sparse3DTrack) | centertrack | 4 | 32.00 ± 2.83 † |" in result.output
    assert "† from an included results file" in result.output


def test_sam2_itself_takes_the_sam2_role_row_only_where_it_ran(tmp_path):
    store = _table1_store(tmp_path / "bench.sqlite")
    store.upsert_run(RunRecord(key="sam2", method="sam2+centernet", base="deft", dataset="synth-kitti", budget=4,
                               seed=0, profile="quick", protocol_version="1", status="ok", run_dir="runs/sam2"))
    store.add_metrics("sam2", [MetricRow("val", "kitti-2d", "", "MOTA", 0.5)])
    table = fill_table(load_table_spec(LEADERBOARDS_DIR / "tables" / "table1.yaml"), summarize(store.metrics_frame()))
    rows = {(r.method, r.base): r for r in table.spec.rows}
    assert rows[("sam2+centernet", "deft")].label == "SAM2 + CenterNet"
    assert ("pretrained2d+centernet", "deft") not in rows  # SAM 2 ran on DEFT: its row replaces the role's
    assert rows[("pretrained2d+centernet", "centertrack")].label.startswith("SAM2 role: ")
    i = list(rows).index(("sam2+centernet", "deft"))
    assert table.cells[(i, 0)].mean == pytest.approx(0.5)
    assert table.paper[i] == [pytest.approx(0.2457)]  # still beside the paper's SAM2 | CenterNet
