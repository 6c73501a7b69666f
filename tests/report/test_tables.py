"""Aggregation over seeds, best-per-column, and the CSV / Markdown / LaTeX exports."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from bench.report.published import load_published, load_published_file, paper_comparison
from bench.report.schema import MetricSchema
from bench.report.tables import build_leaderboards, latex_escape, summarize, to_csv, to_latex, to_markdown

EVIL_METHOD = "<script>alert(1)</script>"  # as in conftest.RUNS

SCHEMA = MetricSchema.load()


def _cell(summary: pd.DataFrame, method: str, budget: int | None, metric: str = "MOTA") -> pd.Series:
    same_budget = summary["budget"].isna() if budget is None else summary["budget"] == budget
    rows = summary[(summary["method"] == method) & same_budget & (summary["metric"] == metric)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_summarize_is_mean_and_sample_std_over_ok_seeds(frames):
    _, metrics = frames
    summary = summarize(metrics)
    cell = _cell(summary, "sparse3dtrack", 4)
    assert cell["n"] == 3
    assert cell["mean"] == pytest.approx(0.42)
    assert cell["std"] == pytest.approx(0.02)  # ddof=1 over 0.40, 0.42, 0.44
    assert math.isnan(_cell(summary, "oracle", None)["std"])  # one seed: no std
    assert not ((summary["method"] == "sparse3dtrack") & (summary["budget"] == 8)).any()  # failed run: no cell


def test_best_per_column_respects_direction_and_skips_the_oracle(frames):
    _, metrics = frames
    boards = {b.metric: b for b in build_leaderboards(summarize(metrics), SCHEMA)}
    assert list(boards)[0] == "MOTA"  # headline first
    mota, idsw = boards["MOTA"], boards["IDSW"]
    assert mota.budgets == [2, 4, None]
    assert mota.rows[-1] == ("oracle", "centertrack")  # the reference bound sits last
    # Budget 4: +15 points over sparse on both shared seeds (paired t interval [15, 15]): bold. Budget 2: +10 and
    # +12 on two seeds, t(0.975, 1) = 12.7 makes the interval [-1.7, +23.7]: contains 0, marked, not bolded.
    assert mota.best == {(("sparse3dtrack", "centertrack"), 4)}
    assert mota.unsure == {(("sparse3dtrack", "centertrack"), 2)}
    top, runner, lead = mota.leads[2]
    assert (top[0], runner[0], lead.n) == ("sparse3dtrack", "sparse", 2)
    assert lead.value == pytest.approx(0.11) and lead.low == pytest.approx(0.11 - 12.7062 * 0.01, abs=1e-4)
    assert mota.leads[4][2].low == pytest.approx(0.15) and mota.leads[4][2].high == pytest.approx(0.15)
    # Fewer ID switches is better; the oracle has the fewest (1) but is a reference, never bolded.
    assert idsw.best == {(("sparse", "centertrack"), 4)} and idsw.unsure == {(("sparse", "centertrack"), 2)}
    assert idsw.leads[4][2].value == pytest.approx(-2.0)  # best - runner-up: 2 switches fewer
    assert mota.cell_text(("sparse3dtrack", "centertrack"), 4) == "42.00 ± 2.00"
    assert idsw.cell_text(("oracle", "centertrack"), None) == "1"


def test_ties_at_display_precision_share_the_bold():
    summary = pd.DataFrame({
        "dataset": "d", "protocol": "3d-iou", "split": "val", "metric": "MOTA", "method": ["a", "b", "c"],
        "base": "", "budget": pd.array([4, 4, 4], dtype="Int64"), "mean": [0.50001, 0.50002, 0.4],
        "std": float("nan"), "n": 1})
    (board,) = build_leaderboards(summary, SCHEMA)
    # A tie is no lead: both share the mark, neither is bolded.
    assert board.best == set() and {row[0] for row, _ in board.unsure} == {"a", "b"}


def test_filters_select_one_table(frames):
    _, metrics = frames
    boards = build_leaderboards(summarize(metrics), SCHEMA, dataset="synth-kitti", metric="IDSW")
    assert [b.metric for b in boards] == ["IDSW"]
    assert build_leaderboards(summarize(metrics), SCHEMA, dataset="nope") == []


def test_markdown_bolds_best_and_escapes_names(frames):
    _, metrics = frames
    text = to_markdown(build_leaderboards(summarize(metrics), SCHEMA, metric="MOTA"))
    assert "| sparse3dtrack | centertrack | 32.00 ± 2.83 ≈ | **42.00 ± 2.00** |  |" in text
    assert "4: sparse3dtrack − sparse: +15.00 \\[+15.00, +15.00\\] (2 shared seeds, paired t)" in text
    assert "≈: best mean, but not separated from the runner-up" in text
    assert "<script>" not in text and r"\<script\>alert(1)\</script\>" in text


def test_latex_is_booktabs_with_textbf_and_escaped_specials(frames):
    _, metrics = frames
    text = to_latex(build_leaderboards(summarize(metrics), SCHEMA, metric="MOTA"))
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{llrrr}"):
        assert rule in text
    assert r"\textbf{42.00 $\pm$ 2.00}" in text
    assert r"32.00 $\pm$ 2.83$^{\approx}$" in text  # a lead the seeds cannot separate: marked, not bold
    assert latex_escape(EVIL_METHOD) in text and EVIL_METHOD not in text
    assert latex_escape("a_b & 50% #1 {x} ~ ^ \\") == (
        r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{} \textbackslash{}")


def test_csv_is_tidy_in_display_units(frames):
    _, metrics = frames
    table = pd.read_csv(io.StringIO(to_csv(build_leaderboards(summarize(metrics), SCHEMA))), keep_default_na=False)
    row = table[(table["method"] == "sparse3dtrack") & (table["budget"] == "4") & (table["metric"] == "MOTA")].iloc[0]
    assert row["mean"] == pytest.approx(42.0) and float(row["std"]) == pytest.approx(2.0)
    assert row["n_seeds"] == 3 and bool(row["best"]) is True and row["unit"] == "percent"
    b2 = table[(table["method"] == "sparse3dtrack") & (table["budget"] == "2") & (table["metric"] == "MOTA")].iloc[0]
    assert bool(b2["best"]) is False and bool(b2["best_unsure"]) is True
    assert set(table[table["method"] == "oracle"]["budget"]) == {"all"}


def test_schema_protocol_overrides_and_unknown_metrics():
    kitti, nusc = SCHEMA.info("MOTP", "3d-iou"), SCHEMA.info("MOTP", "nuscenes")
    assert (kitti.higher_is_better, kitti.unit) == (True, "percent")
    assert (nusc.higher_is_better, nusc.unit) == (False, "metres")
    assert nusc.format(0.6882) == "0.688" and kitti.format(0.5315) == "53.15"
    unknown = SCHEMA.info("Wobble", "3d-iou")
    assert unknown.higher_is_better is None and unknown.format(1.23456) == "1.235"
    assert SCHEMA.info("YawErr", "pseudolabel").format(math.pi) == "180.00"


def test_schema_rejects_an_unknown_unit_naming_the_file(tmp_path):
    bad = tmp_path / "metrics.yaml"
    bad.write_text("units: {percent: {scale: 100}}\nmetrics:\n  MOTA: {unit: furlongs}\n")
    with pytest.raises(ValueError, match=r"metrics\.yaml: metric MOTA: unknown unit 'furlongs'"):
        MetricSchema.load(bad)


def test_published_table1_is_transcribed_in_store_units():
    published = load_published()
    table1 = published[published["source"] == "sparse3dtrack_table1.yaml"]
    assert len(table1) == 16 * 7  # 16 rows (2 base trackers x 8) x 7 columns

    def value(base: str, method: str, dataset: str, metric: str) -> float:
        rows = table1[(table1["base"] == base) & (table1["method"] == method) & (table1["dataset"] == dataset)
                      & (table1["metric"] == metric)]
        assert len(rows) == 1
        return float(rows.iloc[0]["value"])

    assert value("centertrack", "sparse3dtrack", "kitti", "MOTA") == pytest.approx(0.2971)
    assert value("centertrack", "sam2+sparse3dtrack", "kitti", "IDF1") == pytest.approx(0.4500)
    assert value("deft", "oracle", "nuscenes", "AMOTP") == pytest.approx(1.1951)  # printed in cm
    assert value("deft", "spot+fcos3d", "nuscenes", "MOTP") == pytest.approx(0.8803)
    assert table1[table1["method"] == "oracle"]["budget"].isna().all()


def test_published_file_errors_name_file_and_row(tmp_path):
    bad = tmp_path / "paper.yaml"
    bad.write_text("citation: X, Table 9\ncolumns:\n  - {dataset: kitti, metric: MOTA, unit: percent}\n"
                   "rows:\n  - {method: a, values: [1.0, 2.0]}\n")
    with pytest.raises(ValueError, match=r"paper\.yaml: rows\[0\]: 2 values but 1 columns"):
        load_published_file(bad)


def _as_protocol(metrics: pd.DataFrame, protocol: str, split: str = "val") -> pd.DataFrame:
    return metrics.assign(protocol=protocol, split=split)


def test_paper_comparison_matches_our_cell_on_the_stand_in_dataset(frames):
    _, metrics = frames
    # The shared store scores 3d-iou only: the paper's KITTI MOTA (official 2D protocol) has nothing to meet.
    unmatched = paper_comparison(load_published(), summarize(metrics))
    kitti_mota = unmatched[(unmatched["paper_dataset"] == "kitti") & (unmatched["metric"] == "MOTA")]
    assert (kitti_mota["n"] == 0).all() and set(kitti_mota["dataset"]) == {""}
    comparison = paper_comparison(load_published(), summarize(_as_protocol(metrics, "kitti-2d")))
    hit = comparison[(comparison["citation"] == "Sparse3DTrack, Table 1") & (comparison["method"] == "sparse3dtrack")
                     & (comparison["base"] == "centertrack") & (comparison["metric"] == "MOTA")
                     & (comparison["paper_dataset"] == "kitti")]
    assert len(hit) == 1
    row = hit.iloc[0]
    assert (row["dataset"], row["protocol"], row["n"]) == ("synth-kitti", "kitti-2d", 3)
    assert row["value"] == pytest.approx(0.2971) and row["ours_mean"] == pytest.approx(0.42)
    # Ablation rows meet only runs of their sweep variant; this store has none, so they stay unmatched.
    a1 = comparison[comparison["variant"].str.startswith("A1")]
    assert (a1["n"] == 0).all()


def test_paper_kitti_mota_never_meets_pseudolabel_quality(frames):
    # The same numbers stored as pseudolabel quality (train-pseudolabel) are not the tracker's val MOTA.
    _, metrics = frames
    comparison = paper_comparison(load_published(), summarize(_as_protocol(metrics, "kitti-2d", "train-pseudolabel")))
    assert (comparison[comparison["paper_dataset"] == "kitti"]["n"] == 0).all()


def test_schema_resolves_devkit_spellings_aliases_and_per_class_names():
    assert SCHEMA.info("amota", "nuscenes").format(0.2397) == "23.97"  # nuscenes-devkit's lowercase names
    motp = SCHEMA.info("motp", "nuscenes-fixed-interp")  # glob protocol entry "nuscenes*"
    assert (motp.higher_is_better, motp.unit) == (False, "metres")
    per_class = SCHEMA.info("AMOTA/car", "nuscenes")
    assert per_class.display == "AMOTA car" and per_class.higher_is_better is True
    assert SCHEMA.info("AJ3D", "tapvid3d").display == SCHEMA.info("3D-AJ", "tapvid3d").display == "3D-AJ"
    # The protocol's order first (headline leading), then the rest alphabetically.
    assert SCHEMA.metric_order("nuscenes", {"amota/car", "motp", "amota", "gt"}) == ["amota", "motp", "amota/car", "gt"]


def test_paper_nuscenes_columns_only_meet_our_nuscenes_protocols():
    summary = pd.DataFrame({
        "dataset": "synth-nuscenes", "protocol": ["3d-iou", "nuscenes"], "split": "val", "metric": ["MOTA", "mota"],
        "method": "sparse3dtrack", "base": "centertrack", "budget": pd.array([4, 4], dtype="Int64"),
        "mean": [0.5, 0.2], "std": float("nan"), "n": 1})
    comparison = paper_comparison(load_published(), summary)
    hit = comparison[(comparison["citation"] == "Sparse3DTrack, Table 1") & (comparison["base"] == "centertrack")
                     & (comparison["method"] == "sparse3dtrack") & (comparison["paper_dataset"] == "nuscenes")
                     & (comparison["metric"] == "MOTA")]
    assert list(hit["protocol"]) == ["nuscenes"] and list(hit["ours_mean"]) == [0.2]  # the devkit's "mota"


def _store_with(tmp_path, runs: list[tuple[str, int, float, float, str]]):
    """runs: (key, seed, finished_at, MOTA, variant) of sparse3dtrack@4 on synth-kitti, all ok."""
    from bench.store import MetricRow, RunRecord, Store

    store = Store(tmp_path / "bench.sqlite")
    for key, seed, finished, mota, variant in runs:
        store.upsert_run(RunRecord(key=key, method="sparse3dtrack", base="centertrack", dataset="synth-kitti",
                                   budget=4, seed=seed, profile="quick", protocol_version="1", status="ok",
                                   finished_at=finished, variant=variant))
        store.add_metrics(key, [MetricRow("val", "kitti-2d", "", "MOTA", mota)])
    return store.metrics_frame()


def test_a_seed_counts_once_and_its_latest_run_stands_for_it(tmp_path):
    # Seed 0 ran twice (the method's config changed in between, so the keys differ): the re-run supersedes.
    metrics = _store_with(tmp_path, [("old-s0", 0, 100.0, 0.05, ""), ("new-s0", 0, 200.0, 0.37, ""),
                                     ("s1", 1, 150.0, 0.33, ""), ("b1-s0", 0, 300.0, 0.14, "B1")])
    summary = summarize(metrics)
    plain = summary[summary["variant"] == ""].iloc[0]
    assert plain["n"] == 2 and plain["mean"] == pytest.approx((0.37 + 0.33) / 2)
    ablation = summary[summary["variant"] == "B1"].iloc[0]  # a variant is its own row, never a seed of the plain one
    assert ablation["n"] == 1 and ablation["mean"] == pytest.approx(0.14)
