"""The Sparse3DTrack labeler: config/ablation resolution, the lift-only variant, and an end-to-end smoke run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from bench import firewall
from bench.cli import main
from bench.config import method_params
from bench.data.datasets import load_dataset
from bench.data.tracks import BOX3D_COLUMNS, DONTCARE, validate_tracks
from bench.interface import RunContext
from bench.labels import sample_budget
from bench.runner.artifacts import load_weight_maps
from bench.store import Store
from methods.sparse3dtrack import depth, geometry, matching
from methods.sparse3dtrack.config import ABLATION_BUDGETS, ABLATIONS, module_profile, resolve_params
from methods.sparse3dtrack.labeler import Sparse3DTrack, Sparse3DTrackLift

KEYS = ["seq", "frame", "track_id"]


def test_a_profile_yaml_gives_the_module_settings_and_the_switches_default_to_the_papers_model():
    smoke = method_params("smoke", "sparse3dtrack")
    cfg = resolve_params(smoke)
    assert cfg["matcher"]["steps"] == smoke["matcher_steps"] and cfg["depth"]["steps"] == smoke["depth_steps"]
    assert cfg["geometry"] == module_profile("geometry", "smoke") and "steps" in cfg["geometry"]
    assert set(cfg["matcher"]) <= set(matching.DEFAULTS) and set(cfg["depth"]) <= set(depth.DEFAULTS)
    assert set(cfg["geometry"]) <= set(geometry.DEFAULTS)
    sw = cfg["switches"]
    assert sw["mining"] == list(matching.MINING) and sw["use_depth"] and sw["yaw_mode"] == "keypoints"
    assert sw["conf_weighting"] and sw["fncomp"]  # Table 1's model (B3)
    assert method_params("quick", "sparse3dtrack-lift") == method_params("quick", "sparse3dtrack")


def test_flat_knobs_reach_their_module():
    cfg = resolve_params({**method_params("quick", "sparse3dtrack"), "matcher_steps": 7, "depth_steps": 3,
                          "geometry_batch_size": 5, "conf_drop": 0.2, "patience": 9, "fncomp_floor": 0.3})
    assert cfg["matcher"]["steps"] == 7 and cfg["depth"]["steps"] == 3 and cfg["geometry"]["batch_size"] == 5
    assert cfg["propagate"] == {"conf_drop": 0.2, "patience": 9} and cfg["fncomp"]["floor"] == 0.3
    assert cfg["matcher"]["width"] == module_profile("matcher", "quick")["width"]  # the rest of the profile stays


def test_every_ablation_row_resolves_and_explicit_parameters_win():
    expected = {"A1": ("mining", ["support"]), "A3": ("mining", ["support", "self", "cycle"]),
                "D1": ("use_depth", False), "Y1": ("yaw_mode", "regression"), "Y2": ("yaw_mode", "bins"),
                "B1": ("conf_weighting", False), "B3": ("fncomp", True)}
    assert set(ABLATIONS) == {"A1", "A2", "A3", "A4", "D1", "D2", "Y1", "Y2", "Y3", "B1", "B2", "B3"}
    for row in ABLATIONS:
        sw = resolve_params({"ablation": row})["switches"]
        if row in expected:
            key, value = expected[row]
            assert sw[key] == value, row
    assert resolve_params({"ablation": "A1", "mining": "support,cycle"})["switches"]["mining"] == [
        "support", "cycle"]
    assert ABLATION_BUDGETS == {"Q1": 2, "Q2": 4, "Q3": 8, "Q4": 16}


@pytest.mark.parametrize(("params", "message"), [
    ({"matcher_stepz": 3}, "no parameter 'matcher_stepz' \\(did you mean 'matcher_steps'\\?\\)"),
    ({"speed": 3}, "sparse3dtrack has no parameter 'speed'"),
    ({"ablation": "Q2"}, "is a budget"),
    ({"ablation": "Z9"}, "unknown ablation"),
    ({"mining": ["support", "magic"]}, "mining must be"),
    ({"yaw_mode": "euler"}, "yaw_mode must be"),
    ({"fncomp": "yes"}, "fncomp must be true or false"),
])
def test_bad_parameters_are_clear_errors(params, message):
    with pytest.raises((ValueError, TypeError), match=message):
        resolve_params(params)
    with pytest.raises((ValueError, TypeError), match=message):  # the constructor refuses them too
        Sparse3DTrack(**params)


def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    dataset = load_dataset("synth-kitti", scale="smoke", seed=0)
    view = firewall.train_view(dataset.train, sample_budget(dataset.train.tracks, 2), dataset.frame_rate, budget=2)
    with pytest.raises(RuntimeError, match="no CUDA"):
        Sparse3DTrack().fit(view, RunContext(device="cuda", work_dir=tmp_path))


def test_lift_only_labeler_keeps_labels_and_lifts_interpolated_2d_boxes(tmp_path):
    from baselines.interpolate import Interpolate

    torch.set_num_threads(1)
    dataset = load_dataset("synth-kitti", scale="smoke", seed=0)
    labels = sample_budget(dataset.train.tracks, 4, seed=0)
    view = firewall.train_view(dataset.train, labels, dataset.frame_rate, budget=4)
    ctx = RunContext(work_dir=tmp_path)
    # D1: the geometry alone, and faster
    labeler = Sparse3DTrackLift(**method_params("smoke", "sparse3dtrack-lift"), threads=1, use_depth=False)
    labeler.fit(view, ctx)
    out = labeler.label(view, ctx)
    validate_tracks(out, "lift")
    boxes = out[out["cls"] != DONTCARE]
    assert np.isfinite(boxes[list(BOX3D_COLUMNS)].to_numpy(float)).all() and (boxes["z"] > 0).all()
    # 2D boxes are interpolate's; labelled rows are the human 3D boxes exactly, everything else was re-lifted.
    source = Interpolate().label(view, ctx)
    merged = boxes.merge(source, on=KEYS, suffixes=("", "_src"))
    assert len(merged) == len(boxes)
    np.testing.assert_allclose(merged[["x1", "y1", "x2", "y2"]].to_numpy(float),
                               merged[["x1_src", "y1_src", "x2_src", "y2_src"]].to_numpy(float))
    real = labels[labels["cls"] != DONTCARE]
    human = real.merge(boxes, on=KEYS, suffixes=("", "_out"))
    assert len(human) == len(real)
    for column in BOX3D_COLUMNS:
        np.testing.assert_allclose(human[column], human[f"{column}_out"])
    lifted = merged[~merged.set_index(KEYS).index.isin(real.set_index(KEYS).index)]
    assert len(lifted) and not np.allclose(lifted["z"], lifted["z_src"])  # the geometry's own estimate


def test_cli_end_to_end_smoke_with_fncomp_stores_metrics(tmp_path):
    environ = {"BENCH_DATA_DIR": str(tmp_path / "data"), "BENCH_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200"}
    result = CliRunner().invoke(main, ["run", "--method", "sparse3dtrack", "--budget", "4", "--profile", "smoke",
                                       "--set", "method.fncomp=true", "--set", "method.threads=1"], env=environ)
    assert result.exit_code == 0, result.output
    store = Store(tmp_path / "runs" / "bench.sqlite")
    runs = store.runs_frame()
    assert list(runs["status"]) == ["ok"] and list(runs["base"]) == ["centertrack"]  # the labeler's default base
    metrics = store.metrics_frame()
    overall = metrics[metrics["seq"] == ""]
    assert {"pseudolabel", "kitti-2d"} <= set(overall["protocol"])
    quality = overall[overall["protocol"] == "pseudolabel"].set_index("metric")["value"]
    assert 0 < quality["BoxRecall"] <= 1 and 0 < quality["BoxPrecision"] <= 1
    pseudo_dir = Path(runs["run_dir"][0]) / "pseudolabels"
    pseudo = pd.read_parquet(pseudo_dir / "pseudolabels.parquet")
    assert pseudo["conf"].between(0, 1).all()
    # FNComp maps went through the runner to the base tracker: one per training frame, image / 4, in [floor, 1].
    maps = load_weight_maps(pseudo_dir / "neg_weight_maps.npz")
    dataset = load_dataset("synth-kitti", scale="smoke", seed=0)
    assert set(maps) == {(n, int(f)) for n, s in dataset.train.sequences.items() for f in s.frame_ids}
    w, h = next(iter(dataset.train.sequences.values())).image_size
    for m in maps.values():
        assert m.shape == (h // 4, w // 4) and m.min() >= 0.1 - 1e-6 and m.max() <= 1.0
