"""Re-implemented existing methods: base trackers, detectors and 2D trackers used as baselines."""

# Registered method name -> "module:Class", imported only when chosen (see bench.registry).
METHODS: dict[str, str] = {
    "bytetrack": "baselines.bytetrack:ByteTrack",
    "centertrack": "baselines.centertrack.learner:CenterTrackLearner",
    "interpolate": "baselines.interpolate:Interpolate",
    "oracle": "baselines.oracle:Oracle",
    "sort": "baselines.sort:Sort",
    "sparse": "baselines.sparse:Sparse",
}
