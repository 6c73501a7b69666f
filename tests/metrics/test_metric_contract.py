"""The metric contract (bench.metrics.base.Metric, TrackEval's shape): per-sequence results, an explicit combine."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data.sequence import PointTracks
from bench.metrics.base import Metric
from bench.metrics.clear import ClearMetric
from bench.metrics.depth_error import DepthErrorMetric
from bench.metrics.hota import HotaMetric
from bench.metrics.identity import IdentityMetric
from bench.metrics.let_ap import WaymoDetectionMetric
from bench.metrics.nuscenes_tracking import NuscenesTrackingMetric
from bench.metrics.pseudolabel import BoxQualityMetric
from bench.metrics.tapvid3d import Tapvid3dMetric, evaluate_protocol


def test_every_family_is_a_metric():
    families = (ClearMetric(0.5), IdentityMetric(0.5), HotaMetric(), Tapvid3dMetric(), NuscenesTrackingMetric(),
                WaymoDetectionMetric(), BoxQualityMetric(), DepthErrorMetric())
    for metric in families:
        assert isinstance(metric, Metric) and metric.FIELDS, type(metric).__name__


def _video(rng: np.random.Generator, noise: float) -> tuple[PointTracks, PointTracks]:
    xyz = rng.uniform([-2, -1, 4], [2, 1, 12], (5, 7, 3))
    vis = rng.random((5, 7)) > 0.2
    queries = np.column_stack([rng.uniform(0, 200, 7), rng.uniform(0, 100, 7), np.zeros(7)])
    gt = PointTracks(xyz=xyz, visible=vis, queries=queries)
    return gt, PointTracks(xyz=xyz + rng.normal(0, noise, xyz.shape), visible=vis, queries=queries)


def test_tapvid3d_is_per_video_then_a_mean_and_the_protocol_says_the_same():
    rng = np.random.default_rng(0)
    videos = {"a": _video(rng, 0.05), "b": _video(rng, 0.5), "c": _video(rng, 0.2)}
    gt = {n: g for n, (g, _) in videos.items()}
    pred = {n: p for n, (_, p) in videos.items() if n != "c"}  # "c" has no prediction: it scores 0
    intrinsics = {n: np.array([200.0, 200.0, 128.0, 96.0]) for n in gt}
    metric = Tapvid3dMetric()
    per_video = {n: metric.eval_sequence(gt[n], pred.get(n), intrinsics[n]) for n in gt}
    assert per_video["c"]["average_jaccard"] == 0.0 and per_video["a"]["average_jaccard"] > 0
    combined = metric.summary(metric.combine_sequences(per_video))
    assert combined["3D-AJ"] == pytest.approx(np.mean([m["average_jaccard"] for m in per_video.values()]))
    alone = metric.summary(metric.combine_sequences({"a": per_video["a"]}))
    assert alone["APD3D"] == per_video["a"]["average_pts_within_thresh"]
    result = evaluate_protocol(gt, pred, intrinsics=intrinsics)
    assert result.summary == combined
    grouped = Tapvid3dMetric(groups={"a": "x", "b": "x", "c": "y"})
    by_source = grouped.summary(grouped.combine_sequences(per_video))
    x = np.mean([per_video[n]["average_jaccard"] for n in "ab"])
    assert by_source["3D-AJ"] == pytest.approx((x + per_video["c"]["average_jaccard"]) / 2)
