"""Real on-disk dataset formats, each written and read by its own module.

``kitti`` (KITTI tracking), ``nuscenes`` (v1.0 tables + tracking submissions), ``mot``
(MOTChallenge), ``tapvid3d`` (TAPVid-3D npz) and ``waymo`` (Waymo v2 parquet components). Every
reader returns the track table of ``bench.data.tracks``; every writer takes one.
"""

# Dataset format name -> module that has ``write_dataset(dataset, root)`` / ``read_dataset(root)``.
FORMAT_MODULES: dict[str, str] = {
    "kitti": "bench.data.formats.kitti",
    "nuscenes": "bench.data.formats.nuscenes",
    "mot": "bench.data.formats.mot",
    "tapvid3d": "bench.data.formats.tapvid3d",
    "waymo": "bench.data.formats.waymo",
}
