"""The label regime "2d-all" (BA²-Det): 2D boxes on every frame, 3D on a share of sequences, enforced twice."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "harness"))
import toy_methods  # noqa: E402
from tiny import make_dataset  # noqa: E402

from bench import firewall, registry  # noqa: E402
from bench.cli.run import parse_budget  # noqa: E402
from bench.config import ConfigError  # noqa: E402
from bench.data.tracks import BOX3D_COLUMNS, empty_tracks  # noqa: E402
from bench.interface import Method, RunContext, SplitView, TrainView  # noqa: E402
from bench.labels import LabelManifest, label_cost, make_2d_manifest, sequences_with_3d  # noqa: E402
from bench.runner import Job, SweepOptions, run_sweep  # noqa: E402
from bench.runner.jobs import decide_budget  # noqa: E402
from bench.store import Store  # noqa: E402

SEEN: dict[str, object] = {}


def _finite_3d(labels: pd.DataFrame) -> np.ndarray:
    return np.isfinite(labels[list(BOX3D_COLUMNS)].to_numpy(np.float64)).all(axis=1)


class Probe3D(Method):
    """Records which 3D boxes reach it; predicts nothing."""

    outputs = "3d-detections"
    label_regime = "2d-all"

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        SEEN[str(train.budget)] = {"rows": len(train.labels), "finite_3d": int(_finite_3d(train.labels).sum()),
                                   "seqs_with_3d": sorted(set(train.labels["seq"][_finite_3d(train.labels)])),
                                   "seqs_3d": train.seqs_3d, "ids": int((train.labels["track_id"] >= 0).sum())}

    def predict(self, split: SplitView, ctx: RunContext) -> pd.DataFrame:
        return empty_tracks()


def test_2d_manifest_blanks_3d_outside_its_sequences():
    gt = make_dataset().train.tracks
    none = make_2d_manifest(gt, 0, seed=0)
    labels = none.labels(gt)
    assert len(labels) == len(gt)  # every 2D box, every frame
    assert not _finite_3d(labels).any()
    assert (labels[["x1", "y1", "x2", "y2"]].to_numpy() == gt[["x1", "y1", "x2", "y2"]].to_numpy()).all()
    some = make_2d_manifest(gt, 50, seed=0)
    assert len(some.seqs_3d) == 1
    labels = some.labels(gt)
    assert set(labels["seq"][_finite_3d(labels)]) == set(some.seqs_3d)
    assert label_cost(labels) == {"boxes_2d": len(gt), "boxes_3d": int((gt["seq"] == some.seqs_3d[0]).sum()),
                                  "sequences": 2, "sequences_3d": 1}


def test_shares_are_nested_and_hashed():
    gt = pd.DataFrame({"seq": [f"{i:02d}" for i in range(20)]})
    small, large = sequences_with_3d(gt, 10, 3), sequences_with_3d(gt, 30, 3)
    assert len(small) == 2 and len(large) == 6 and set(small) <= set(large)
    assert sequences_with_3d(gt, 1, 3) and not sequences_with_3d(gt, 0, 3)  # any share > 0 gives one at least
    tracks = make_dataset().train.tracks
    a, b = make_2d_manifest(tracks, 0, 0), make_2d_manifest(tracks, 100, 0)
    assert a.sha256 != b.sha256  # same 2D rows, different 3D sequences


def test_manifest_round_trip_and_tamper(tmp_path):
    gt = make_dataset().train.tracks
    manifest = make_2d_manifest(gt, 50, seed=1)
    path = manifest.write(tmp_path / "m.json")
    back = LabelManifest.read(path)
    assert back.regime == "2d-all" and back.seqs_3d == manifest.seqs_3d and back.sha256 == manifest.sha256
    text = path.read_text().replace(f'"seqs_3d": ["{manifest.seqs_3d[0]}"]', '"seqs_3d": ["0000", "0001"]')
    path.write_text(text)
    with pytest.raises(ValueError, match="does not match"):
        LabelManifest.read(path)


def test_firewall_blanks_3d_even_when_the_table_has_it():
    dataset = make_dataset()
    view = firewall.train_view(dataset.train, dataset.train.tracks, dataset.frame_rate, 0, seqs_3d=())
    assert not _finite_3d(view.labels).any() and view.seqs_3d == ()
    assert _finite_3d(dataset.train.tracks).all()  # the source table is untouched


def test_budget_share_parsing_and_checks():
    assert parse_budget("10%") == 10 and parse_budget("0%") == 0 and parse_budget("4") == 4
    with pytest.raises(ConfigError):
        parse_budget("101%")
    job = Job("probe", dataset="tiny", budget=None)
    with pytest.raises(ConfigError, match="2d-all"):
        decide_budget(job, Probe3D)
    assert decide_budget(Job("probe", dataset="tiny", budget=0), Probe3D).budget == 0


def test_no_3d_label_reaches_a_method_at_0_percent(tmp_path):
    toy_methods.register_all()
    registry.register("probe3d", Probe3D)
    try:
        options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
        results = {share: run_sweep([Job("probe3d", dataset="tiny", budget=share, profile="smoke",
                                         overrides=("eval.protocols.3d-detections=[3d-iou]",))], options)
                   for share in (0, 50)}
        store = Store(tmp_path / "runs" / "bench.sqlite")
        for result in results.values():
            assert result.exit_code == 0, store.run(result.planned[0].key).error
        for share, result in results.items():
            cost = store.run(result.planned[0].key).manifest["label_cost"]  # 2D and 3D boxes apart
            assert cost["boxes_2d"] == SEEN[str(share)]["rows"]
            assert cost["boxes_3d"] == SEEN[str(share)]["finite_3d"]
        assert SEEN["50"]["finite_3d"] > 0 and list(SEEN["50"]["seqs_3d"]) == SEEN["50"]["seqs_with_3d"]
        SEEN.clear()
        # Resuming the 0 % cell from its stored labels (labels stage done, later stages gone) must still hand
        # over no 3D box: the seqs_3d come back from the stored manifest.
        run_dir = results[0].planned[0].run_dir
        for stage in ("training", "prediction", "metrics"):
            shutil.rmtree(run_dir / stage, ignore_errors=True)
        again = run_sweep([Job("probe3d", dataset="tiny", budget=0, profile="smoke",
                               overrides=("eval.protocols.3d-detections=[3d-iou]",))], options)
        assert again.exit_code == 0 and again.planned[0].reason == "resume"
    finally:
        registry.unregister("probe3d")
    zero = SEEN["0"]
    assert zero["finite_3d"] == 0 and zero["seqs_3d"] == () and zero["ids"] == zero["rows"] > 0
