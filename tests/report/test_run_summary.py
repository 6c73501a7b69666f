"""The end of ``bench run``: headline metrics beside sparse and oracle of the same dataset, seed, profile, base."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from bench.cli.summary import bound_runs, summary_table
from bench.store import MetricRow, RunRecord, Store

# key, method, budget, seed, profile, kitti-2d (MOTA, MOTP, IDF1, LocA)
RUNS = [
    ("main", "sparse3dtrack", 4, 0, "quick", (0.30, 0.80, 0.40, 0.85)),
    ("sparse4", "sparse", 4, 0, "quick", (0.05, 0.75, 0.10, float("nan"))),
    ("sparse8", "sparse", 8, 0, "quick", (0.20, 0.75, 0.30, 0.80)),  # another budget: not beside budget 4
    ("oracle", "oracle", None, 0, "quick", (0.40, 0.82, 0.50, 0.90)),
    ("oracle-s1", "oracle", None, 1, "quick", (0.99, 0.99, 0.99, 0.99)),  # another seed: never beside seed 0
    ("oracle-smoke", "oracle", None, 0, "smoke", (0.98, 0.98, 0.98, 0.98)),  # another profile
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(Path(tmp_path_factory.mktemp("summary")) / "bench.sqlite")
    for i, (key, method, budget, seed, profile, values) in enumerate(RUNS):
        store.upsert_run(RunRecord(key=key, method=method, base="centertrack", dataset="synth-kitti", budget=budget,
                                   seed=seed, profile=profile, protocol_version="1", status="ok", run_dir=f"r/{key}",
                                   finished_at=1000.0 + i))
        rows = [MetricRow("val", "kitti-2d", "", name, v) for name, v in zip(("MOTA", "MOTP", "IDF1", "LocA"), values,
                                                                                strict=True)]
        rows.append(MetricRow("val", "kitti-2d", "0001", "MOTA", 0.123))  # per-sequence rows stay out
        store.add_metrics(key, rows)
    return store


def _text(table) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(table)
    return out.getvalue()


def test_bounds_are_the_same_dataset_seed_profile_and_base(store):
    assert bound_runs(store.runs_frame(), store.run("main")) == {"sparse": "sparse4", "oracle": "oracle"}
    # The oracle itself gets only sparse beside it, and sparse has no budget to match there: nothing.
    assert bound_runs(store.runs_frame(), store.run("oracle")) == {}
    assert bound_runs(store.runs_frame(), store.run("sparse8")) == {"oracle": "oracle"}


def test_summary_shows_headline_metrics_beside_the_bounds(store):
    text = _text(summary_table(store, "main"))
    assert "sparse3dtrack + centertrack · synth-kitti · budget 4 · seed 0 · quick" in " ".join(text.split())
    assert "sparse@4" in text and "oracle (all labels)" in text
    mota = next(line for line in text.splitlines() if "MOTA (%)" in line)
    assert [c.strip() for c in mota.split("│")[4:7]] == ["30.00", "5.00", "40.00"]
    assert "LocA" not in text and "12.30" not in text  # three headline metrics, overall only
    assert "99.00" not in text and "98.00" not in text


def test_verbose_shows_every_metric_and_undefined_as_a_dash(store):
    text = _text(summary_table(store, "sparse4", verbose=True))
    loca = next(line for line in text.splitlines() if "LocA" in line)
    assert loca.split("│")[4].strip() == "-" and "nan" not in text.lower()
    assert "MOTP (%)" in text and "IDF1 (%)" in text and "sparse@" not in text
