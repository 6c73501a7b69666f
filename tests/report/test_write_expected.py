"""scripts/write_expected.py: a partial re-run keeps the other datasets' gates, unless told they are stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from bench.results_file import import_results
from bench.store import Store

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "leaderboards" / "results" / "synth-kitti_quick_2026-12-07_paper.json"


def _script():
    spec = importlib.util.spec_from_file_location("write_expected", ROOT / "scripts" / "write_expected.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("keep", [True, False])
def test_uncovered_dataset_is_kept_or_dropped(tmp_path: Path, monkeypatch, keep: bool) -> None:
    store = Store(tmp_path / "s.sqlite")
    import_results(RESULTS, store)
    target = tmp_path / "leaderboards" / "expected" / "sparse3dtrack.yaml"
    target.parent.mkdir(parents=True)
    stale = {"method": "sparse3dtrack", "base": "centertrack", "dataset": "synth-nuscenes", "budget": 4,
             "protocol": "nuscenes", "split": "val", "metric": "amota", "value": 0.0, "tolerance": 0.02}
    target.write_text(yaml.safe_dump({"name": "sparse3dtrack", "expected": [stale]}))
    monkeypatch.chdir(tmp_path)
    _script().write(store.runs_frame(), store.metrics_frame(), ["sparse3dtrack"], "sparse3dtrack", "# header\n",
                    keep_uncovered=keep)
    text = target.read_text()
    entries = yaml.safe_load(text)["expected"]
    assert {e["dataset"] for e in entries} == ({"synth-kitti", "synth-nuscenes"} if keep else {"synth-kitti"})
    mota = next(e for e in entries if e["protocol"] == "kitti-2d" and e["metric"] == "MOTA")
    assert mota["value"] == pytest.approx(0.20367, abs=1e-5)  # the mean of the file's three seeds
    assert ("entries kept from the previous version" in text) == keep
    assert ("synth-nuscenes: no entries" in text) == (not keep)
