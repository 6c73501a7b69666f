"""Re-implemented existing methods: base trackers, detectors and 2D trackers used as baselines.

Each is registered by name as an entry point of the ``bench.methods`` group in ``pyproject.toml`` (the same way
a third-party package registers its own), so it is imported only when chosen."""
