"""pretrained2d (the SAM2 role): its corpus is never benchmark data (real data hashes and pixel fingerprints), its
checkpoint is built once and content-addressed, its pretraining makes propagation better than an untrained
network, and every table names its row as the SAM2 role with the corpus's real size."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from baselines.pretrained2d.checkpoint import load_or_build
from baselines.pretrained2d.corpus import (
    check_disjoint,
    corpus_hash,
    corpus_size,
    generate_corpus,
    parse_worlds,
    sequence_fingerprint,
    world_hashes,
)
from baselines.pretrained2d.labeler import DEFAULT_CORPUS, Pretrained2D, role_label
from baselines.pretrained2d.train import PretrainConfig, pretrain
from baselines.spot.crops import to_input
from baselines.spot.model import SiameseTracker
from baselines.spot.track import chains_for, run_chains
from bench.config import resolve_config
from bench.data.datasets import load_dataset
from bench.data.synth import SCALES, data_hash, generate
from bench.labels import make_manifest
from bench.metrics.similarity import iou_2d
from bench.ownership import is_owned
from bench.report.specs import TABLES_DIR, load_table_spec

SMOKE_CORPUS = ["synth-kitti:1001", "synth-nuscenes:1001"]
TABLE1_DATASETS = ("synth-kitti", "synth-nuscenes")


def test_corpus_worlds_never_have_a_benchmark_data_hash():
    benchmark = {data_hash(preset, scale, seed) for preset in TABLE1_DATASETS for scale in SCALES for seed in (0, 1, 7)}
    # The hash a run records for its data, read back from the export as the runner reads it.
    recorded = {str(load_dataset(preset, scale="smoke", seed=0).data_hash) for preset in TABLE1_DATASETS}
    assert recorded <= benchmark
    for corpus in (DEFAULT_CORPUS, SMOKE_CORPUS):
        for scale in SCALES:
            hashes = world_hashes(parse_worlds(list(corpus)), scale)
            assert len(set(hashes.values())) == len(hashes)
            assert not set(hashes.values()) & benchmark


def test_corpus_holds_no_benchmark_sequence_by_pixels():
    corpus = {v.name: v.fingerprint for v in generate_corpus(parse_worlds(SMOKE_CORPUS), "smoke")}
    assert len(corpus) == corpus_size(parse_worlds(SMOKE_CORPUS), "smoke") == 6
    for preset in TABLE1_DATASETS:
        dataset = generate(preset, "smoke", seed=0)
        videos = {f"{split.name}/{name}": np.asarray(seq.images)
                  for split in (dataset.train, dataset.val) for name, seq in split.sequences.items()}
        assert not set(map(sequence_fingerprint, videos.values())) & set(corpus.values())
        check_disjoint(corpus, videos)  # the run-time check agrees
    # ... and it catches a corpus world that is the data being labelled.
    same = generate("synth-kitti", "smoke", seed=1001).train
    with pytest.raises(RuntimeError, match="never hold a benchmark sequence"):
        check_disjoint(corpus, {name: np.asarray(seq.images) for name, seq in same.sequences.items()})


@pytest.mark.parametrize("bad", [["synth-kitti:0"], ["synth-kitti:7"], ["synth-kitti"], ["kitti:1001"],
                                 ["synth-kitti:1001", "synth-kitti:1001"], []])
def test_a_corpus_of_benchmark_or_development_worlds_is_refused(bad):
    with pytest.raises(ValueError, match="pretrained2d"):
        Pretrained2D(corpus=bad)


def test_checkpoint_is_built_once_cached_as_bench_own_and_content_addressed(tmp_path):
    worlds = parse_worlds(["synth-kitti:1001"])
    network = {"width": 8, "template_size": 32, "search_size": 80}
    cfg = PretrainConfig(steps=2, batch=4, negatives=1)
    model, meta = load_or_build(tmp_path, worlds, "smoke", network, cfg, seed=0)
    folder = tmp_path / "pretrained2d" / meta["key"][:32]
    assert meta["path"] == str(folder) and is_owned(folder)
    assert meta["corpus_hash"] == corpus_hash(worlds, "smoke")
    assert meta["worlds"] == {"synth-kitti:1001": data_hash("synth-kitti", "smoke", 1001)}
    assert meta["sequences"] == 3 and len(meta["fingerprints"]) == 3
    stamp = (folder / "model.pt").stat().st_mtime_ns
    again, meta2 = load_or_build(tmp_path, worlds, "smoke", network, cfg, seed=0)
    assert (folder / "model.pt").stat().st_mtime_ns == stamp and meta2 == meta  # loaded, not rebuilt
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other = load_or_build(tmp_path, worlds, "smoke", network, PretrainConfig(steps=3, batch=4, negatives=1), 0)[1]
    assert other["key"] != meta["key"] and other["corpus_hash"] == meta["corpus_hash"]
    assert len([p for p in (tmp_path / "pretrained2d").iterdir() if not p.name.startswith(".")]) == 2


def _mean_iou(model: SiameseTracker) -> float:
    """Mean 2D IoU with the ground truth of every box propagated from one label per track (benchmark smoke data)."""
    train = generate("synth-kitti", "smoke", seed=0).train
    gt = train.tracks
    labels = make_manifest(gt, 1, 0).labels(gt)
    labels = labels[labels["cls"] != "DontCare"]
    ious = []
    for name, seq in sorted(train.sequences.items()):
        frames = torch.stack([to_input(seq.images[i]) for i in range(seq.num_frames)])
        mine = labels[labels["seq"] == name]
        ids, chains = [], []
        for k, (track_id, rows) in enumerate(mine.groupby("track_id")):
            keys = {seq.index_of(int(f)): box for f, box in zip(rows["frame"], rows[["x1", "y1", "x2", "y2"]].to_numpy(
                float), strict=True)}
            chains += chains_for(keys, seq.num_frames, k)
            ids.append(track_id)
        for k, index, box, _, _ in run_chains(model, frames, chains):
            truth = gt[(gt["seq"] == name).to_numpy() & (gt["track_id"] == ids[k]).to_numpy()
                       & (gt["frame"] == seq.frame_ids[index]).to_numpy()]
            if len(truth):
                ious.append(float(iou_2d(box[None], truth[["x1", "y1", "x2", "y2"]].to_numpy(float))[0, 0]))
    assert len(ious) > 50
    return float(np.mean(ious))


def test_pretraining_makes_propagation_better_than_an_untrained_network():
    videos = list(generate_corpus(parse_worlds(SMOKE_CORPUS), "smoke"))
    torch.manual_seed(0)
    untrained = SiameseTracker(8).eval()
    torch.manual_seed(0)
    trained = SiameseTracker(8)
    pretrain(trained, videos, PretrainConfig(steps=80, batch=8, negatives=2), seed=0)
    before, after = _mean_iou(untrained), _mean_iou(trained)
    assert after > before + 0.1, (before, after)  # measured: 0.17 -> 0.44 at 100 steps


def test_every_table1_row_of_pretrained2d_is_labelled_as_the_sam2_role_with_the_real_corpus_size():
    quick = resolve_config("quick", "pretrained2d")["method"]
    label = role_label(quick.get("corpus", DEFAULT_CORPUS), quick.get("corpus_scale", "quick"))
    assert label == "SAM2 role: 2D tracker pretrained on 80 synthetic sequences"
    spec = load_table_spec(TABLES_DIR / "table1.yaml")
    rows = [r for r in spec.rows if r.method.startswith("pretrained2d")]
    assert len(rows) == 6 and all(r.label.startswith(label + " + ") for r in rows)
    assert all("sam2" not in r.label.lower().replace("sam2 role", "") for r in spec.rows)
    sweep = yaml.safe_load((TABLES_DIR.parents[1] / "bench" / "sweeps" / "table1.yaml").read_text())
    assert {r.method for r in spec.rows} == set(sweep["methods"]) and sweep["bases"] == ["centertrack", "deft"]


def test_the_run_manifest_records_the_corpus(tmp_path):
    from bench.runner import Job, SweepOptions, run_sweep
    from bench.store import Store

    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    result = run_sweep([Job("pretrained2d", dataset="synth-kitti", budget=2, seed=0, profile="smoke", base="none")],
                       options)
    planned = result.planned[0]
    record = Store(options.store()).run(planned.key)
    assert result.exit_code == 0, record.error
    notes = record.manifest["method_notes"]["pretrained2d"]
    assert notes["corpus_hash"] == corpus_hash(parse_worlds(SMOKE_CORPUS), "smoke")
    assert notes["label"] == "SAM2 role: 2D tracker pretrained on 6 synthetic sequences"
    assert notes["worlds"]["synth-kitti:1001"] == data_hash("synth-kitti", "smoke", 1001)
    assert record.manifest["data_hash"] not in notes["worlds"].values()
    cache = tmp_path / "runs" / ".cache" / "methods"
    meta = json.loads((cache / "pretrained2d" / notes["key"][:32] / "meta.json").read_text())
    assert is_owned(cache) and meta["corpus_hash"] == notes["corpus_hash"]
