"""The label-efficient methods, one package each. Today there is one, ``sparse3dtrack/``; BA²-Det, the neural-Kalman
EM tracker and DELTAv2 are planned and not here yet."""

# Registered method name -> "module:Class", imported only when chosen (see bench.registry).
METHODS: dict[str, str] = {
    "sparse3dtrack": "methods.sparse3dtrack.labeler:Sparse3DTrack",
    "sparse3dtrack-lift": "methods.sparse3dtrack.labeler:Sparse3DTrackLift",
}
