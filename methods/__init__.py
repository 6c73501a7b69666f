"""The label-efficient methods, one package each: ``sparse3dtrack/`` and ``nkf_em/`` (the neural-Kalman EM
tracker); BA²-Det and DELTAv2 are planned and not here yet."""

# Registered method name -> "module:Class", imported only when chosen (see bench.registry).
METHODS: dict[str, str] = {
    "nkf-em": "methods.nkf_em.method:NkfEm",
    "nkf-em-supervised": "methods.nkf_em.method:NkfEmSupervised",
    "sparse3dtrack": "methods.sparse3dtrack.labeler:Sparse3DTrack",
    "sparse3dtrack-lift": "methods.sparse3dtrack.labeler:Sparse3DTrackLift",
}
