"""Re-implemented existing methods: base trackers, detectors and 2D trackers used as baselines."""
