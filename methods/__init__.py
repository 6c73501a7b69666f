"""The label-efficient methods, one package each: ``sparse3dtrack/`` and ``nkf_em/`` (the neural-Kalman EM
tracker); BA²-Det and DELTAv2 are planned and not here yet.

Each method is registered by name as an entry point of the ``bench.methods`` group in ``pyproject.toml``
(the same way a third-party package registers its own), so it is imported only when chosen."""
