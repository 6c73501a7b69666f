"""The dataset registry: names -> where the data comes from and which on-disk format reads it.

Synthetic datasets are generated once, exported to their native format under a cache folder
(``data/<name>-<scale>-s<seed>/``, or ``$BENCH_DATA_DIR/<...>``), marked complete atomically, and
then read back through the same reader a real dataset uses, so the harness always consumes reader
output and a bug in a reader shows up on the default data too. Real datasets are found through
``root=`` (the CLI's ``--root``) or an environment variable.

>>> ds = load_dataset("synth-kitti", scale="smoke")
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType

from bench.data.formats import FORMATS
from bench.data.sequence import DataError, Dataset
from bench.ownership import claim_dir, is_owned, make_tmp_dir, publish_dir
from bench.registry import did_you_mean

COMPLETE = "COMPLETE"  # written last inside the export, before the folder is renamed into place


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset: its on-disk format and where it comes from."""

    name: str
    format: str  # a name in bench.data.formats.FORMATS
    synthetic: bool
    description: str
    env: str | None = None  # environment variable naming a real dataset's root
    layout: str = ""  # what the root must contain, for the error message


DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec("synth-kitti", "kitti", True, "synthetic KITTI-like drives, 10 Hz, 3D tracks"),
    DatasetSpec("synth-nuscenes", "nuscenes", True, "synthetic nuScenes-like CAM_FRONT key frames, 2 Hz"),
    DatasetSpec("synth-waymo", "waymo", True, "synthetic Waymo-like FRONT camera, 10 Hz"),
    DatasetSpec("synth-mot", "mot", True, "synthetic MOTChallenge-like 2D pedestrian tracks + public detections"),
    DatasetSpec("synth-dense", "tapvid3d", True, "synthetic dense 3D point tracks (TAPVid-3D / Kubric3D style)"),
    DatasetSpec("kitti", "kitti", False, "KITTI tracking", "BENCH_KITTI_ROOT",
                "training/{image_02,label_02,calib,oxts}"),
    DatasetSpec("nuscenes", "nuscenes", False, "nuScenes (CAM_FRONT)", "BENCH_NUSCENES_ROOT",
                "v1.0-*/{scene,sample,...}.json and samples/CAM_FRONT/"),
    DatasetSpec("mot17", "mot", False, "MOT17", "BENCH_MOT17_ROOT", "train/MOT17-XX-FRCNN/{img1,gt,det,seqinfo.ini}"),
    DatasetSpec("tapvid3d", "tapvid3d", False, "TAPVid-3D", "BENCH_TAPVID3D_ROOT", "*.npz (tapnet's generator output)"),
    DatasetSpec("waymo", "waymo", False, "Waymo Open Dataset v2 (FRONT camera)", "BENCH_WAYMO_ROOT",
                "training/ and validation/ with camera_image, camera_box, camera_calibration, lidar_box, "
                "vehicle_pose"),
)}


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name``; an unknown name raises DataError with a did-you-mean hint."""
    if name not in DATASETS:
        raise DataError(str(did_you_mean("dataset", name, DATASETS)))
    return DATASETS[name]


def format_module(fmt: str) -> ModuleType:
    return FORMATS.get(fmt)


def data_dir() -> Path:
    """Where synthetic exports are cached: ``$BENCH_DATA_DIR`` or ``./data``."""
    return Path(os.environ.get("BENCH_DATA_DIR") or "data")


def cache_path(name: str, scale: str = "quick", seed: int = 0) -> Path:
    return data_dir() / f"{name}-{scale}-s{seed}"


def _legacy_export(folder: Path) -> bool:
    """An export written before the ownership marker: its COMPLETE file reads ``<synthetic name> <sha256> ...``."""
    try:
        fields = (folder / COMPLETE).read_text()[:400].split()
    except (OSError, UnicodeDecodeError):
        return False
    return (len(fields) >= 2 and fields[0] in DATASETS and DATASETS[fields[0]].synthetic
            and len(fields[1]) == 64 and all(c in "0123456789abcdef" for c in fields[1]))


def is_complete(folder: Path) -> bool:
    """A finished export that bench wrote (its marker and COMPLETE are both there)."""
    return is_owned(folder, _legacy_export) and (Path(folder) / COMPLETE).is_file()


def export_hash(folder: Path) -> str | None:
    """The data hash of the finished bench export in ``folder``, or None."""
    fields = (Path(folder) / COMPLETE).read_text().split() if is_complete(folder) else []
    return fields[1] if len(fields) >= 2 else None


def export_dataset(dataset: Dataset, fmt: str, folder: Path) -> Path:
    """Write ``dataset`` in format ``fmt`` to ``folder`` atomically (temp folder + marker + rename).

    ``folder`` may be new, empty, or an export bench made before: one holding this very dataset is left
    alone, any other bench export is replaced. A folder bench did not make is refused up front
    (:class:`~bench.ownership.OwnershipError`) and nothing in it changes. A crash leaves only a
    ``.<name>.tmp-*`` folder, never a half-written export under the real name.
    """
    folder = Path(folder)
    if export_hash(folder) == dataset.data_hash:
        return folder
    if folder.exists() or folder.is_symlink():
        claim_dir(folder, "dataset", "--out (or --root / data.root)", _legacy_export)  # refuses others' folders
    tmp = make_tmp_dir(folder, "dataset")
    try:
        format_module(fmt).write_dataset(dataset, tmp)
        (tmp / COMPLETE).write_text(f"{dataset.name} {dataset.data_hash} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if export_hash(folder) == dataset.data_hash:  # another process finished the same export first
        shutil.rmtree(tmp)
        return folder
    publish_dir(tmp, folder, _legacy_export)
    return folder


def make_synthetic(name: str, scale: str = "quick", seed: int = 0, out: Path | None = None,
                   progress: bool = False) -> Path:
    """Generate and export a synthetic dataset unless the same export is already there."""
    spec = dataset_spec(name)
    if not spec.synthetic:
        raise DataError(f"{name!r} is a real dataset: nothing to generate; point --root or ${spec.env} at it")
    folder = Path(out) if out is not None else cache_path(name, scale, seed)
    from bench.data.synth import data_hash, generate

    if export_hash(folder) == data_hash(name, scale, seed):
        return folder
    if folder.exists() or folder.is_symlink():  # refuse a foreign folder before minutes of generation
        claim_dir(folder, "dataset", "--out (or --root / data.root)", _legacy_export)
    try:
        dataset = generate(name, scale=scale, seed=seed, progress=progress)
    except ValueError as err:  # unknown scale and the like, with the generator's own hint
        raise DataError(str(err)) from None
    return export_dataset(dataset, spec.format, folder)


def real_root(spec: DatasetSpec, root: Path | None) -> Path:
    """The root of a real dataset from ``root`` or its environment variable, or a clear error."""
    candidates = [("--root", root), (f"${spec.env}", os.environ.get(spec.env or ""))]
    looked = []
    for how, value in candidates:
        if value:
            path = Path(value).expanduser()
            if path.exists():
                return path
            looked.append(f"{path} (from {how}) does not exist")
    where = "; ".join(looked) if looked else f"no --root given and ${spec.env} is not set"
    raise DataError(f"dataset {spec.name!r} ({spec.description}) not found: {where}. Download it and pass "
                    f"--root DIR or set {spec.env}=DIR; DIR must contain {spec.layout}")


def load_dataset(name: str, scale: str = "quick", seed: int = 0, root: Path | None = None,
                 progress: bool = False) -> Dataset:
    """Load a registered dataset by name, always through its format's reader.

    Synthetic: generated and exported on first use (to ``root`` if given, else the cache folder),
    then read back. Real: read from ``root`` or the dataset's environment variable. ``scale`` and
    ``seed`` matter only for synthetic data.
    """
    spec = dataset_spec(name)
    if spec.synthetic:
        folder = make_synthetic(name, scale, seed, out=root, progress=progress)
    else:
        folder = real_root(spec, root)
    dataset = format_module(spec.format).read_dataset(folder)
    if not spec.synthetic:
        dataset.name = name
    return dataset


# The dataset registry's built-in entries (bench.registry.datasets reads this by name): name -> loader
# ``(scale=..., seed=..., root=..., progress=...) -> Dataset``.
LOADERS: dict[str, Callable[..., Dataset]] = {name: partial(load_dataset, name) for name in DATASETS}
