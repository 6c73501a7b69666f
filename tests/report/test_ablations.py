"""The ablation page (paper Tables 3-5 layout) and variant-aware matching, from a store written through
the Store API with runs in the format the runner writes (variants named as bench/sweeps/sparse3dtrack_ablations.yaml
names them)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from bench.report.html import render_report
from bench.report.published import load_published, paper_comparison, variant_code, variant_codes
from bench.report.schema import MetricSchema
from bench.report.stats import format_interval, paired_difference
from bench.report.tables import build_leaderboards, summarize
from bench.store import MetricRow, RunRecord, Store

DEFAULT_MODEL = "A4=D2=Y3=B2=Q2"
# (variant, budget, seed, {protocol: (MOTA, IDF1)}) for sparse3dtrack + centertrack on synth-kitti.
RUNS = [
    ("A1", 4, 0, {"kitti-2d": (0.10, 0.20), "3d-iou": (0.05, 0.15)}),
    ("A1", 4, 1, {"kitti-2d": (0.14, 0.22), "3d-iou": (0.07, 0.17)}),
    (DEFAULT_MODEL, 4, 0, {"kitti-2d": (0.30, 0.40), "3d-iou": (0.20, 0.30)}),
    (DEFAULT_MODEL, 4, 1, {"kitti-2d": (0.32, 0.42), "3d-iou": (0.22, 0.32)}),
    (DEFAULT_MODEL, 4, 2, {"kitti-2d": (0.34, 0.44), "3d-iou": (0.24, 0.34)}),
    ("Q1", 2, 0, {"kitti-2d": (0.25, 0.35), "3d-iou": (0.15, 0.25)}),
    ("", 4, 0, {"kitti-2d": (0.90, 0.90), "3d-iou": (0.90, 0.90)}),  # a plain run: never an ablation row
]


def _fill(store: Store) -> None:
    for i, (variant, budget, seed, values) in enumerate(RUNS):
        key = f"{i:02d}" + "ab" * 31
        store.upsert_run(RunRecord(
            key=key, method="sparse3dtrack", base="centertrack", dataset="synth-kitti", budget=budget, seed=seed,
            profile="quick", protocol_version="1", status="ok", wall_s=600.0, peak_mem_mb=2000.0, fps=50.0,
            config={"method": {}}, run_dir=f"runs/synth-kitti/sparse3dtrack+centertrack/b{budget}/s{seed}/{key[:16]}",
            variant=variant))
        rows = []
        for protocol, (mota, idf1) in values.items():
            rows += [MetricRow("val", protocol, "", "MOTA", mota), MetricRow("val", protocol, "", "IDF1", idf1),
                     MetricRow("val", protocol, "0003", "MOTA", mota - 0.01)]
        rows.append(MetricRow("train-pseudolabel", "pseudolabel", "", "MOTA", 0.5))
        store.add_metrics(key, rows)


@pytest.fixture(scope="module")
def ablation_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("ablations") / "bench.sqlite")
    _fill(store)
    return store


@pytest.fixture(scope="module")
def page(ablation_store: Store, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("site")
    render_report(ablation_store.runs_frame(), ablation_store.metrics_frame(), out)
    return (Path(out) / "ablations.html").read_text()


def _row_cells(html: str, variant: str) -> list[str]:
    """The text of each cell of the ablation row whose first cell is ``variant``."""
    match = re.search(r"<tr><td class=\"name\">" + re.escape(variant) + r"</td>(.*?)</tr>", html, flags=re.S)
    assert match, f"no row {variant!r}"
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)]


def test_variant_codes():
    assert variant_code("A1: support matching only") == "A1" and variant_code("") == ""
    assert variant_codes(DEFAULT_MODEL) == ["A4", "D2", "Y3", "B2", "Q2"] and variant_codes("") == [""]


def test_ablation_page_lays_out_paper_and_ours_per_protocol(page):
    # Sub-tables in the paper's order, headed by table and section.
    headings = re.findall(r"<h3[^>]*>(.*?)</h3>", page)
    assert headings == ["Table 3: sample mining in 2D query matching",
                        "Table 3: self-supervised depth and yaw formulation",
                        "Table 5: base network training", "Table 5: sparse labels per track"]
    # The paper's KITTI numbers are the official (2D) protocol: only our kitti-2d numbers stand beside them.
    assert "Ours · synth-kitti · kitti-2d" in page and "Ours · synth-kitti · 3d-iou" not in page
    # budget | paper MOTA, IDF1 | ours kitti-2d MOTA, IDF1 | seeds | run as
    # budget | paper MOTA, IDF1 | ours kitti-2d: per metric mean ± std, then the claim against the default row
    # (paper's difference, ours paired over shared seeds with its 95 % interval, verdict) | seeds | run as
    a1 = _row_cells(page, "A1: support matching only")
    mota = format_interval(paired_difference({0: 0.10, 1: 0.14}, {0: 0.30, 1: 0.32, 2: 0.34}), 100)
    idf1 = format_interval(paired_difference({0: 0.20, 1: 0.22}, {0: 0.40, 1: 0.42, 2: 0.44}), 100)
    assert mota.startswith("-19.00 [") and idf1.startswith("-20.00")
    assert a1 == ["4", "17.41", "21.98", "12.00 ± 2.83", "-10.67", mota, "holds",
                  "21.00 ± 1.41", "-9.62", idf1, "holds", "2", "A1"]
    # The default model's one set of runs fills all five of its rows: each its sub-table's reference.
    for row in ("A4: + step-support matching", "D2: depth features, our yaw", "Y3: our yaw",
                "B2: confidence weighting", "Q2: 4 labels/track, no FNComp"):
        cells = _row_cells(page, row)
        assert cells[1:3] == ["28.08", "31.60"]
        assert cells[3:11] == ["32.00 ± 2.00", "-", "-", "reference", "42.00 ± 2.00", "-", "-", "reference"]
        assert cells[11:] == ["3", DEFAULT_MODEL]
    q1 = _row_cells(page, "Q1: 2 labels/track, no FNComp")  # one seed: no std, no interval
    assert q1 == ["2", "18.28", "23.39", "25.00", "-9.80", "-5.00", "no interval", "35.00", "-8.21", "-5.00",
                  "no interval", "1", "Q1"]
    # Not run yet: blank cells, never the plain run's numbers.
    b3 = _row_cells(page, "B3: + FNComp (full model)")
    assert b3 == ["4", "29.71", "35.66", "-", "-", "-", "-", "-", "-", "-", "-", "", ""]
    assert "90.00" not in page


def test_paper_page_and_leaderboards_keep_variants_apart(ablation_store):
    summary = summarize(ablation_store.metrics_frame())
    comparison = paper_comparison(load_published(), summary)
    table1 = comparison[(comparison["citation"] == "Sparse3DTrack, Table 1") & (comparison["method"] == "sparse3dtrack")
                        & (comparison["base"] == "centertrack") & (comparison["metric"] == "MOTA")
                        & (comparison["paper_dataset"] == "kitti") & (comparison["split"] == "val")]
    # Table 1 has no variant: it meets only the plain run, and only under the official KITTI (2D) protocol.
    assert sorted(zip(table1["protocol"], table1["ours_mean"], strict=True)) == [("kitti-2d", 0.9)]
    # Like with like: the paper's KITTI MOTA is never set beside pseudolabel quality (train-pseudolabel MOTA 0.5).
    mota = comparison[(comparison["metric"] == "MOTA") & (comparison["paper_dataset"] == "kitti")]
    assert set(mota["split"]) <= {"val", ""} and set(mota["protocol"]) <= {"kitti-2d", ""}
    assert 0.5 not in set(mota["ours_mean"])
    d2 = comparison[comparison["variant"].str.startswith("D2") & (comparison["metric"] == "IDF1")
                    & (comparison["split"] == "val")]
    assert set(d2["our_variant"]) == {DEFAULT_MODEL} and sorted(d2["ours_mean"]) == pytest.approx([0.42])  # kitti-2d
    board = build_leaderboards(summary, MetricSchema.load(), dataset="synth-kitti", protocol="kitti-2d",
                               metric="MOTA", split="val")[0]
    labels = ["sparse3dtrack", "sparse3dtrack [A1]", f"sparse3dtrack [{DEFAULT_MODEL}]", "sparse3dtrack [Q1]"]
    assert set(board.rows) == {(label, "centertrack") for label in labels}
    assert board.cells[(("sparse3dtrack [A1]", "centertrack"), 4)].mean == pytest.approx(0.12)


def test_frames_without_a_variant_column_still_summarize():
    metrics = pd.DataFrame({"run_key": ["k"], "split": ["val"], "protocol": ["3d-iou"], "seq": [""],
                            "metric": ["MOTA"], "value": [0.5], "method": ["sparse"], "base": [None],
                            "dataset": ["synth-kitti"], "budget": pd.array([4], dtype="Int64"), "seed": [0],
                            "profile": ["smoke"], "status": ["ok"]})
    summary = summarize(metrics)
    assert list(summary["variant"]) == [""] and list(summary["mean"]) == [0.5]


def test_claim_verdicts_follow_the_interval_and_the_papers_sign():
    from bench.report.ablations import verdict

    lower = paired_difference({0: 0.1, 1: 0.12, 2: 0.11}, {0: 0.3, 1: 0.31, 2: 0.33})
    assert not lower.contains_zero and lower.high < 0
    assert verdict(-0.1067, lower) == "holds" and verdict(+0.02, lower) == "reversed"
    mixed = paired_difference({0: 0.1, 1: 0.4}, {0: 0.3, 1: 0.2})
    assert verdict(-0.1067, mixed) == "not shown"
    assert verdict(-0.1067, paired_difference({0: 0.1}, {0: 0.3})) == "no interval"
    assert verdict(-0.1067, paired_difference({}, {0: 0.3})) == "-"
