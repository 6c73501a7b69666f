"""Label budget sampler and manifest: SPOT rules, nesting, determinism, hashes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.data import DataError, make_tracks
from bench.labels import LabelManifest, default_visible, density_reduction, make_manifest, sample_budget


def random_tracks(seed: int = 0, n_tracks: int = 40) -> pd.DataFrame:
    """Tracks of lengths 1..120 with random occlusion/visibility, gaps, and DontCare rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_tracks):
        seq = f"{t % 3:04d}"
        length = int(rng.integers(1, 120))
        start = int(rng.integers(0, 50))
        frames = start + np.sort(rng.choice(length + 10, size=length, replace=False))
        for f in frames:
            rows.append(dict(seq=seq, frame=int(f), track_id=t, cls="Car", x1=0.0, y1=0.0, x2=10.0, y2=10.0,
                             occlusion=int(rng.choice(4, p=[0.5, 0.2, 0.2, 0.1])),
                             visibility=int(rng.choice([0, 1, 2, 3, 4]))))
    for f in range(5):
        rows.append(dict(seq="0000", frame=f, track_id=-1, cls="DontCare", x1=1.0, y1=1.0, x2=2.0, y2=2.0,
                         occlusion=-1, visibility=0))
    return make_tracks(pd.DataFrame(rows))


@pytest.fixture(scope="module")
def tracks() -> pd.DataFrame:
    return random_tracks()


def label_keys(labels: pd.DataFrame) -> set[tuple]:
    real = labels[labels["cls"] != "DontCare"]
    return set(zip(real["seq"], real["frame"], real["track_id"], strict=True))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8, 16])
def test_at_most_k_per_track_and_only_eligible_frames(tracks, k):
    labels = sample_budget(tracks, k, seed=1)
    real = labels[labels["cls"] != "DontCare"]
    assert real.groupby(["seq", "track_id"]).size().max() <= k
    assert default_visible(real).all(), "a heavily occluded frame was labelled"
    # Every track with an eligible frame gets at least one label.
    gt = tracks[tracks["cls"] != "DontCare"]
    eligible_tracks = set(gt[default_visible(gt)]["track_id"])
    assert set(real["track_id"]) == eligible_tracks


def test_dontcare_passes_through_and_is_never_a_label(tracks):
    labels = sample_budget(tracks, 4, seed=0)
    assert (labels["cls"] == "DontCare").sum() == (tracks["cls"] == "DontCare").sum()
    manifest = make_manifest(tracks, 4, seed=0)
    assert (manifest.rows["track_id"] >= 0).all()


def test_budgets_are_nested(tracks):
    sets = [label_keys(sample_budget(tracks, k, seed=7)) for k in (2, 4, 8, 16)]
    for small, large in zip(sets, sets[1:], strict=False):
        assert small <= large and len(small) < len(large)


def test_each_of_k_segments_holds_one_label_when_all_frames_eligible():
    # One long fully visible track: the binary-tree scheme must put one label in every k-th of it.
    n = 160
    table = make_tracks(pd.DataFrame(dict(seq="s", frame=np.arange(n), track_id=0, cls="Car", x1=0.0, y1=0.0,
                                          x2=1.0, y2=1.0)))
    for k in (2, 4, 8, 16):
        frames = np.sort(sample_budget(table, k, seed=3)["frame"].to_numpy())
        assert len(frames) == k
        assert np.array_equal(frames * k // n, np.arange(k)), f"k={k}: {frames}"
    # Level 2 is SPOT exactly: within +-max(1, L/16) of i*L/2 + L/4.
    frames = np.sort(sample_budget(table, 2, seed=3)["frame"].to_numpy())
    assert np.all(np.abs(frames - np.array([40, 120])) <= n / 16)


def test_widens_the_window_when_the_centre_is_occluded():
    n = 40
    occlusion = np.full(n, 3)
    occlusion[[2, 37]] = 0  # only frames far from the centres L/4 = 10 and 3L/4 = 30 are usable
    table = make_tracks(pd.DataFrame(dict(seq="s", frame=np.arange(n), track_id=0, cls="Car", x1=0.0, y1=0.0,
                                          x2=1.0, y2=1.0, occlusion=occlusion)))
    assert sorted(sample_budget(table, 2, seed=0)["frame"]) == [2, 37]


def test_segments_are_cut_in_frames_not_in_labelled_rows():
    # Seen in frames 0-4, hidden 5-49, seen again 50-99: the first half of the track is frames 0-49.
    frames = np.r_[0:5, 50:100]
    table = make_tracks(pd.DataFrame(dict(seq="s", frame=frames, track_id=0, cls="Car", x1=0.0, y1=0.0,
                                          x2=1.0, y2=1.0)))
    for seed in range(5):
        first, second = sorted(sample_budget(table, 2, seed=seed)["frame"])
        assert first < 5 and 75 - 100 / 16 <= second <= 75 + 100 / 16


def test_deterministic_per_seed_and_independent_of_other_tracks(tracks):
    a = sample_budget(tracks, 4, seed=5)
    pd.testing.assert_frame_equal(a, sample_budget(tracks, 4, seed=5))
    assert label_keys(a) != label_keys(sample_budget(tracks, 4, seed=6))
    # Dropping other tracks does not change a track's labels (per-(seed, seq, track_id) streams).
    one = tracks[tracks["track_id"] == 3]
    assert label_keys(sample_budget(one, 4, seed=5)) == {key for key in label_keys(a) if key[2] == 3}


def test_custom_visibility_rule(tracks):
    labels = sample_budget(tracks, 8, seed=0, visible=lambda t: (t["frame"] % 2 == 0).to_numpy())
    real = labels[labels["cls"] != "DontCare"]
    assert (real["frame"] % 2 == 0).all()


def test_density_reduction(tracks):
    dense = (tracks["cls"] != "DontCare").sum()
    labels = sample_budget(tracks, 2, seed=0)
    n = (labels["cls"] != "DontCare").sum()
    assert density_reduction(tracks, labels) == pytest.approx(dense / n)
    assert density_reduction(tracks, sample_budget(tracks, 16, seed=0)) < density_reduction(tracks, labels)


def test_manifest_hash_is_stable_and_round_trips(tmp_path, tracks):
    manifest = make_manifest(tracks, 4, seed=0, meta={"dataset": "test"})
    # The hash covers the label rows only, so yaml and json files of one manifest agree.
    for name in ("m.yaml", "m.json"):
        back = LabelManifest.read(manifest.write(tmp_path / name))
        assert back.sha256 == manifest.sha256 and back.k == 4 and back.meta == {"dataset": "test"}
        pd.testing.assert_frame_equal(back.rows, manifest.rows)
    assert make_manifest(random_tracks(), 4, seed=0).sha256 == manifest.sha256
    assert make_manifest(tracks, 4, seed=1).sha256 != manifest.sha256
    # Golden value: a changed sampler or hash recipe must show up here (and invalidates cached runs).
    tiny = make_tracks(pd.DataFrame(dict(seq="a", frame=np.arange(20), track_id=1, cls="Car", x1=0.0, y1=0.0,
                                         x2=1.0, y2=1.0)))
    assert make_manifest(tiny, 2, seed=0).sha256 == GOLDEN_TINY_HASH
    labels = manifest.labels(tracks)
    assert label_keys(labels) == set(map(tuple, manifest.rows.itertuples(index=False)))


def test_manifest_errors_name_the_file(tmp_path, tracks):
    manifest = make_manifest(tracks, 2, seed=0)
    path = manifest.write(tmp_path / "m.json")
    path.write_text(path.read_text().replace('"k": 2', '"k": 2, "x": 1').replace("]]", "], [\"0000\", 1, 999]]"))
    with pytest.raises(DataError, match=r"m\.json: sha256 .* does not match"):
        LabelManifest.read(path)
    with pytest.raises(DataError, match="not in the ground truth"):
        LabelManifest(k=2, seed=0, rows=pd.DataFrame([["0000", 1, 999]], columns=["seq", "frame", "track_id"])) \
            .labels(tracks)
    (tmp_path / "bad.yaml").write_text("k: 2\nseed: 0\nrows: [[a, 1]]\n")
    with pytest.raises(DataError, match=r"bad\.yaml: rows\[0\]"):
        LabelManifest.read(tmp_path / "bad.yaml")


GOLDEN_TINY_HASH = "b844a518af391343f3dee8e653b43e98b14ec81e3f7c8c2e0f90388d18f0c923"
