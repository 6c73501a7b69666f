"""The dataset registry: export once, read back through the format readers, clear errors for missing data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.ownership import OwnershipError, is_owned

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "formats"))
from handmade import assert_same_tracks, synth, tiny_dataset  # noqa: E402

from bench.data import DataError  # noqa: E402
from bench.data.datasets import (  # noqa: E402
    COMPLETE,
    DATASETS,
    cache_path,
    export_dataset,
    load_dataset,
)
from bench.data.formats import kitti  # noqa: E402


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    return tmp_path


def test_registry_names_every_preset_and_real_dataset():
    from bench.data.synth import PRESETS

    assert set(PRESETS) <= set(DATASETS)
    assert {"kitti", "nuscenes", "mot17", "tapvid3d", "waymo"} <= set(DATASETS)
    assert all(spec.env for spec in DATASETS.values() if not spec.synthetic)


def test_synthetic_is_exported_then_read_back_through_the_reader(data_dir):
    ds = load_dataset("synth-kitti", scale="smoke", seed=0)
    folder = cache_path("synth-kitti", "smoke", 0)
    assert folder == data_dir / "synth-kitti-smoke-s0" and (folder / COMPLETE).exists()
    assert (folder / "training" / "label_02" / "0000.txt").exists()
    assert ds.root == folder
    # What the harness sees came from the files: images are paths, read lazily.
    assert isinstance(ds.train.sequences["0000"].images, list)
    generated = synth("synth-kitti")
    assert_same_tracks(generated.train.tracks, ds.train.tracks, atol=2e-6)
    assert ds.data_hash == generated.data_hash
    # A second load reuses the export (the marker is not rewritten).
    stamp = (folder / COMPLETE).stat().st_mtime_ns
    load_dataset("synth-kitti", scale="smoke", seed=0)
    assert (folder / COMPLETE).stat().st_mtime_ns == stamp


def test_a_folder_bench_did_not_make_is_refused_and_kept(data_dir):
    folder = data_dir / "x"
    (folder / "training").mkdir(parents=True)  # files, but no bench marker: somebody else's folder
    (folder / "training" / "keep.txt").write_text("k")
    with pytest.raises(OwnershipError, match="not created by bench"):
        export_dataset(tiny_dataset(), "kitti", folder)
    assert (folder / "training" / "keep.txt").read_text() == "k"
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".x.tmp")]


def test_export_into_an_empty_folder_is_readable_and_marked(data_dir):
    folder = data_dir / "x"
    folder.mkdir()
    export_dataset(tiny_dataset(), "kitti", folder)
    assert (folder / COMPLETE).exists() and kitti.read_dataset(folder).train.tracks.shape[0] > 0
    assert is_owned(folder)
    assert folder.stat().st_mode & 0o055, "published with mkdtemp's 0700: other users could not read it"
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".x.tmp")]


def test_export_of_an_older_generator_version_is_regenerated(data_dir):
    from bench.data.synth import data_hash

    load_dataset("synth-kitti", scale="smoke", seed=0)
    marker = cache_path("synth-kitti", "smoke", 0) / COMPLETE
    marker.write_text("synth-kitti 0123stale 2026-01-01T00:00:00\n")  # as a previous GENERATOR_VERSION left it
    ds = load_dataset("synth-kitti", scale="smoke", seed=0)
    assert marker.read_text().split()[1] == data_hash("synth-kitti", "smoke", 0) == ds.data_hash


def test_unknown_names_and_missing_real_data_are_clear(data_dir, monkeypatch):
    with pytest.raises(DataError, match="unknown dataset 'synth-kiti'. Did you mean 'synth-kitti'"):
        load_dataset("synth-kiti")
    monkeypatch.delenv("BENCH_KITTI_ROOT", raising=False)
    with pytest.raises(DataError, match=r"'kitti' .* not found: no --root given and \$BENCH_KITTI_ROOT is not set"):
        load_dataset("kitti")
    with pytest.raises(DataError, match=r"/nowhere \(from --root\) does not exist.*BENCH_KITTI_ROOT=DIR"):
        load_dataset("kitti", root=Path("/nowhere"))


def test_real_kitti_root_from_the_environment(data_dir, monkeypatch, tmp_path):
    root = tmp_path / "KITTI"
    kitti.write_dataset(tiny_dataset(), root)
    (root / "bench.json").unlink()  # a real KITTI download has no sidecar
    monkeypatch.setenv("BENCH_KITTI_ROOT", str(root))
    ds = load_dataset("kitti")
    assert ds.name == "kitti" and list(ds.val.sequences) == ["0001"]  # Hu et al.'s validation split
    assert sorted(ds.train.sequences) == ["0000", "0002"]
    assert len(ds.data_hash) == 16
