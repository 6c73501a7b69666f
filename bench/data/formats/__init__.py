"""Real on-disk dataset formats, each written and read by its own module.

``kitti`` (KITTI tracking), ``nuscenes`` (v1.0 tables + tracking submissions), ``mot``
(MOTChallenge), ``tapvid3d`` (TAPVid-3D npz) and ``waymo`` (Waymo v2 parquet components). Every
reader returns the track table of ``bench.data.tracks``; every writer takes one.
"""

from types import ModuleType

from bench.registry import Registry


def _check_format(module: object) -> None:
    if not (isinstance(module, ModuleType) and callable(getattr(module, "read_dataset", None))):
        raise TypeError(f"{module!r} is not a format module with read_dataset(root)")


# Dataset format name -> module that has ``write_dataset(dataset, root)`` / ``read_dataset(root)``.
FORMATS: Registry[ModuleType] = Registry("data format", {
    "kitti": "bench.data.formats.kitti",
    "nuscenes": "bench.data.formats.nuscenes",
    "mot": "bench.data.formats.mot",
    "tapvid3d": "bench.data.formats.tapvid3d",
    "waymo": "bench.data.formats.waymo",
}, check=_check_format)
