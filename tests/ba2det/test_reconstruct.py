"""COLMAP reconstruction of a smoke clip against the rendered depth (skipped where pycolmap is not installed)."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from bench.data.synth import generate

pytest.importorskip("pycolmap", reason="pip install 'bench[ba2det]' to test ba2det's reconstruction")


@pytest.fixture(scope="module")
def smoke_world():
    return generate("synth-waymo", "smoke", 0)


def test_smoke_clip_recovers_static_points(tmp_path, smoke_world):
    from methods.ba2det.reconstruct import reconstruct

    split = smoke_world.train
    name = sorted(split.sequences)[0]
    seq, depth = split.sequences[name], split.layers[name]["depth"]
    recon = reconstruct(seq, tmp_path / "colmap")
    assert recon.num_points >= 50
    errors = []
    for t, (idx, xy) in enumerate(recon.obs):
        world = np.c_[recon.points[idx], np.ones(len(idx))]
        z = (world @ np.linalg.inv(seq.cam_to_world[t]).T)[:, 2]
        d = depth[t, xy[:, 1].astype(int), xy[:, 0].astype(int)]
        ok = np.isfinite(d)
        errors.append(np.abs(z[ok] - d[ok]) / d[ok])
    rel = np.concatenate(errors)
    # Measured on this clip: median 6 % (keypoints sit on depth edges at 192x128, and a few points are on movers).
    assert np.median(rel) < 0.10
    assert np.mean(rel < 0.10) > 0.5
    # Same seed, same points: the reconstruction is deterministic, also when it redoes its own scratch folder.
    again = reconstruct(seq, tmp_path / "colmap")
    assert np.array_equal(again.points, recon.points)


def test_a_folder_it_did_not_make_is_refused_not_deleted(tmp_path, smoke_world):
    from bench.ownership import OwnershipError
    from methods.ba2det.reconstruct import reconstruct

    sentinel = tmp_path / "precious"
    sentinel.mkdir()
    (sentinel / "keep.txt").write_text("not bench's")
    seq = smoke_world.train.sequences[sorted(smoke_world.train.sequences)[0]]
    with pytest.raises(OwnershipError):
        reconstruct(seq, sentinel)
    assert (sentinel / "keep.txt").read_text() == "not bench's"


def test_missing_pycolmap_says_how_to_install(monkeypatch):
    from methods.ba2det import reconstruct as module

    real_import = builtins.__import__

    def no_pycolmap(name, *args, **kwargs):
        if name == "pycolmap":
            raise ImportError("No module named 'pycolmap'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pycolmap)
    with pytest.raises(ImportError, match=r"bench\[ba2det\]"):
        module.require_pycolmap()
