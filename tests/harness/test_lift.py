"""Composed methods ``A+B`` (bench.lift): matching, smoothing, the registry's composition and the gt2d firewall."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import registry
from bench.config import resolve_config
from bench.data.geometry import box_center, project_boxes_2d, project_points
from bench.data.tracks import has_3d
from bench.interface import RunContext, TrainView
from bench.lift import GroundTruth2D, Lifted, Lifter, match_detections, smooth_track
from bench.runner import Job, SweepOptions, run_sweep
from bench.store import Store

K = np.array([[700.0, 0, 620.0], [0, 700.0, 190.0], [0, 0, 1]])
SIZE = (1242, 375)


def test_a_detection_matches_the_tracked_box_its_projection_overlaps():
    dets = np.array([[-4.0, 1.6, 15.0, 1.5, 1.7, 4.0, 0.3], [3.0, 1.6, 25.0, 1.5, 1.7, 4.0, -1.0]])
    tracked = project_boxes_2d(dets, K, SIZE)[::-1] + 2.0  # reversed order, shifted by 2 px
    fallback = np.full((2, 7), 9.0)
    out = match_detections(tracked, ["Car", "Car"], dets, ["Car", "Car"], np.array([0.9, 0.7]), K, SIZE,
                           fallback, np.array([0.2, 0.1]), min_iou=0.5)
    np.testing.assert_array_equal(out.boxes3d, dets[::-1])
    np.testing.assert_allclose(out.conf, [0.7, 0.9])
    assert out.matched.all()
    # Another class, or too little overlap: the fallback box and its confidence.
    out = match_detections(tracked, ["Pedestrian", "Car"], dets, ["Car", "Car"], np.array([0.9, 0.7]), K, SIZE,
                           fallback, np.array([0.2, 0.1]), min_iou=0.5)
    np.testing.assert_array_equal(out.matched, [False, True])
    np.testing.assert_array_equal(out.boxes3d[0], fallback[0])
    assert out.conf[0] == 0.2


def test_smoothing_removes_a_depth_outlier_and_a_flipped_yaw_on_the_same_rays():
    n = 9
    boxes = np.tile([2.0, 1.6, 20.0, 1.5, 1.7, 4.0, 0.5], (n, 1))
    boxes[:, 2] = np.linspace(20, 24, n)
    boxes[:, 0] = np.linspace(2, 3, n)
    boxes[4, 2] = 40.0  # one bad depth
    boxes[6, 6] = 0.5 - np.pi  # one wrong-facing yaw
    boxes[2, 3:6] = [3.0, 3.0, 9.0]  # one bad size
    out = smooth_track(boxes, window=5)
    assert abs(out[4, 2] - 21.8) < 1.0
    np.testing.assert_allclose(np.cos(out[:, 6] - 0.5), 1.0, atol=1e-9)
    np.testing.assert_allclose(out[:, 3:6], np.tile([1.5, 1.7, 4.0], (n, 1)))
    # Each centre stays on the ray it was seen on: its projection does not move.
    np.testing.assert_allclose(project_points(box_center(out), K), project_points(box_center(boxes), K), atol=1e-9)


def test_the_registry_composes_a_2d_tracker_with_a_lifter():
    cls = registry.get_method("gt2d+centernet")
    assert issubclass(cls, Lifted) and cls.parts == ("gt2d", "centernet")
    assert cls.sees_2d_ground_truth and cls.outputs == "3d-tracks"
    assert "gt2d+centernet" in registry.methods and "gt2d+centernte" not in registry.methods
    assert registry.get_method("gt2d+centernet") is cls
    with pytest.raises(registry.RegistryError, match="Did you mean 'centernet'"):
        registry.get_method("gt2d+centernte")
    with pytest.raises(registry.RegistryError, match="Did you mean 'gt2d'"):
        registry.get_method("gt2e+centernet")
    with pytest.raises(registry.RegistryError, match="not 2d-tracks"):
        registry.get_method("centertrack+centernet")
    # A source's label regime carries over: nkf-em learns without identities, and so does nkf-em+centernet.
    assert registry.get_method("nkf-em+centernet").sees_identities is False
    assert cls.sees_identities is True
    # The parts' parameters come from their own profile sections, declared once.
    method = resolve_config("smoke", "gt2d+centernet")["method"]
    assert method["lifter"] == resolve_config("smoke", "centernet")["method"] and method["tracker"] == {}
    with pytest.raises(ValueError):
        cls(lifter={"flip": 3.0})


SEEN: dict[str, object] = {}


class WatchedLifter(Lifter):
    """Records what the lifter part sees; lifts every box to a fixed 3D box with confidence 0.5."""

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        SEEN["lifter_labels"], SEEN["lifter_tracks_2d"] = len(labels), len(train.tracks_2d)

    def lift_frames(self, seq, boxes, ctx):
        from bench.lift import LiftedFrame

        return {t: LiftedFrame(np.tile([0.0, 1.5, 20.0, 1.5, 1.6, 4.0, 0.0], (len(b), 1)), np.full(len(b), 0.5),
                               np.ones(len(b), bool)) for t, (b, _) in boxes.items()}


class WatchedGT2D(GroundTruth2D):
    def label(self, train: TrainView, ctx: RunContext) -> pd.DataFrame:
        SEEN["gt2d_tracks_2d"], SEEN["gt2d_labels"] = train.tracks_2d.copy(), train.labels.copy()
        return super().label(train, ctx)


def test_gt2d_sees_every_2d_box_and_no_3d_and_the_lifter_only_the_budget(tmp_path):
    registry.register("watched-gt2d", WatchedGT2D)
    registry.lifters.register("watched-lifter", WatchedLifter)
    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    try:
        result = run_sweep([Job("watched-gt2d+watched-lifter", dataset="synth-kitti", budget=1, profile="smoke",
                                base="none")], options)
    finally:
        registry.unregister("watched-gt2d")
        registry.lifters.unregister("watched-lifter")
    planned = result.planned[0]
    assert result.exit_code == 0, Store(options.store()).run(planned.key).error
    from bench.data.datasets import load_dataset

    gt = load_dataset("synth-kitti", scale="smoke", seed=0).train.tracks
    real = gt[gt["cls"] != "DontCare"]
    seen2d = SEEN["gt2d_tracks_2d"]
    assert isinstance(seen2d, pd.DataFrame) and len(seen2d) == len(real)
    assert not has_3d(seen2d).any() and (seen2d["occlusion"] == 0).all()
    assert len(SEEN["gt2d_labels"]) < len(gt)  # type: ignore[arg-type]
    assert SEEN["lifter_tracks_2d"] == 0 and SEEN["lifter_labels"] == len(SEEN["gt2d_labels"])  # type: ignore
    pseudo = pd.read_parquet(planned.run_dir / "pseudolabels" / "pseudolabels.parquet")
    lifted = pseudo[pseudo["cls"] != "DontCare"]
    assert len(lifted) == len(real) and has_3d(lifted).all()
    # conf = 2D conf (1) x lift conf (0.5), except where a human 3D label took the box back (conf 1).
    assert set(np.round(lifted["conf"], 6)) <= {0.5, 1.0} and (lifted["conf"] == 1.0).sum() > 0


@pytest.mark.slow
def test_gt2d_plus_centernet_end_to_end_at_smoke(tmp_path):
    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    result = run_sweep([Job("gt2d+centernet", dataset="synth-kitti", budget=2, profile="smoke")], options)
    planned = result.planned[0]
    assert result.exit_code == 0, Store(options.store()).run(planned.key).error
    assert planned.job.base == "centertrack"
    metrics = Store(options.store(), readonly=True).metrics_frame()
    assert {"train-pseudolabel", "val"} <= set(metrics.loc[metrics["run_key"] == planned.key, "split"])


@pytest.mark.parametrize("name", ["centernet", "fcos3d", "centernet-full"])
def test_the_detectors_see_only_their_budget(tmp_path, name):
    base = registry.get_method(name)

    class Watched(base):  # type: ignore[misc, valid-type]
        def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
            SEEN["det_labels"], SEEN["det_tracks_2d"] = len(labels), len(train.tracks_2d)
            super().fit(train, labels, ctx)

    registry.register(f"watched-{name}", Watched)
    profile = resolve_config("smoke", name)["method"]
    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    try:
        result = run_sweep([Job(f"watched-{name}", dataset="synth-kitti", budget=1, profile="smoke",
                                overrides=tuple(f"method.{k}={v}" for k, v in profile.items()))], options)
    finally:
        registry.unregister(f"watched-{name}")
    assert result.exit_code == 0, Store(options.store()).run(result.planned[0].key).error
    from bench.data.datasets import load_dataset

    gt = load_dataset("synth-kitti", scale="smoke", seed=0).train.tracks
    from bench.runner.jobs import budget_labels

    expected = len(gt) if base.sees_ground_truth else len(budget_labels(gt, 1, seed=0)[0])
    assert SEEN["det_labels"] == expected and SEEN["det_tracks_2d"] == 0


def test_every_lifter_composes():
    for lifter in registry.lifters.names():
        cls = registry.get_method(f"gt2d+{lifter}")
        assert issubclass(cls, Lifted) and cls.lifter_cls is registry.lifters.get(lifter)


def test_a_parts_threads_leave_the_run_key():
    from bench.runner.keys import key_config

    config = resolve_config("smoke", "gt2d+centernet", overrides=("method.lifter.threads=4",))
    assert key_config(config) == key_config(resolve_config("smoke", "gt2d+centernet"))
    assert key_config(resolve_config("smoke", "gt2d+centernet", overrides=("method.lifter.steps=7",))) != \
        key_config(config)
