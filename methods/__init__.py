"""The label-efficient methods (sparse3dtrack, ba2det, nkf_em, deltav2), one package each."""

# Registered method name -> "module:Class", imported only when chosen (see bench.registry).
METHODS: dict[str, str] = {
    "sparse3dtrack": "methods.sparse3dtrack.labeler:Sparse3DTrack",
    "sparse3dtrack-lift": "methods.sparse3dtrack.labeler:Sparse3DTrackLift",
}
