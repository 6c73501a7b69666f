"""nkf-em end to end: it learns (fewer identity switches than untrained), it never sees a track id, and the
MOT17 layout (public detections included) works through `bench eval --format mot` and `bench run`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from bench import firewall, metrics, registry
from bench.cli import main
from bench.data.datasets import load_dataset
from bench.interface import RunContext, TrainView
from bench.runner import Job, SweepOptions, run_sweep
from methods.nkf_em.method import NkfEm

sys.path.insert(0, str(Path(__file__).parent))
from mot17_fixture import make_mot17  # noqa: E402


@pytest.fixture(scope="module")
def smoke_mot():
    return load_dataset("synth-mot", scale="smoke", seed=0)


def _idsw(ds, model: NkfEm) -> float:
    train = firewall.train_view(ds.train, ds.train.tracks, ds.frame_rate, 4, identities=False)
    torch.manual_seed(0)
    model.fit(train, train.labels, RunContext(seed=0))
    pred = model.predict(firewall.split_view(ds.val, ds.frame_rate), RunContext(seed=0))
    # Score on the training clips too: the smoke val split has one 12-frame video, too few switches to compare.
    pred_train = model.predict(firewall.split_view(ds.train, ds.frame_rate), RunContext(seed=0))
    total = 0.0
    for gt, p, seqs in ((ds.val.tracks, pred, ds.val.sequences), (ds.train.tracks, pred_train, ds.train.sequences)):
        total += float(metrics.evaluate("mot17", gt, p, sequences=seqs).summary["IDSW"])
    return total


def test_trained_model_switches_identities_less_than_untrained(smoke_mot) -> None:
    untrained = _idsw(smoke_mot, NkfEm(steps=0))
    trained = _idsw(smoke_mot, NkfEm(steps=150))
    assert trained < untrained, (trained, untrained)


SEEN: dict[str, object] = {}


class SpyNkfEm(NkfEm):
    """nkf-em that records what the runner hands it."""

    def fit(self, train: TrainView, labels: pd.DataFrame, ctx: RunContext) -> None:
        SEEN["labels_ids"] = set(labels["track_id"].tolist())
        SEEN["view_label_ids"] = set(train.labels["track_id"].tolist())
        SEEN["n_labels"] = len(labels)
        SEEN["detection_ids"] = set(train.detections["track_id"].tolist())
        SEEN["n_detections"] = len(train.detections)
        super().fit(train, labels, ctx)


class SpySupervised(SpyNkfEm):
    sees_identities = True
    sees_ground_truth = True
    supervised = True


def test_firewall_hands_nkf_em_no_track_id(tmp_path: Path) -> None:
    registry.register("nkf-em-spy", SpyNkfEm)
    registry.register("nkf-em-spy-sup", SpySupervised)
    try:
        result = run_sweep([Job("nkf-em-spy", dataset="synth-mot", budget=4, profile="smoke",
                                overrides=("method.steps=2",))],
                           SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu"))
        assert result.exit_code == 0
        assert SEEN["labels_ids"] == {-1} and SEEN["view_label_ids"] == {-1}  # labels without identities
        assert SEEN["n_labels"] > 0
        assert SEEN["detection_ids"] == {-1} and SEEN["n_detections"] > 0  # public detections: inputs, no ids
        # The same firewall gives the identity-labelled twin its ids (so the check above is not vacuous).
        result = run_sweep([Job("nkf-em-spy-sup", dataset="synth-mot", budget=4, profile="smoke",
                                overrides=("method.steps=2",))],
                           SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu"))
        assert result.exit_code == 0
        assert len(SEEN["labels_ids"] - {-1}) > 10  # (-1: DontCare regions, which have no identity anyway)
    finally:
        registry.unregister("nkf-em-spy")
        registry.unregister("nkf-em-spy-sup")


def test_id_free_view_order_carries_no_identity() -> None:
    labels = pd.DataFrame({"seq": ["a"] * 4, "frame": [0, 0, 1, 1], "track_id": [0, 1, 0, 1],
                           "cls": ["Pedestrian"] * 4, "score": 1.0, "x1": [50.0, 10.0, 12.0, 52.0],
                           "y1": 0.0, "x2": [60.0, 20.0, 22.0, 62.0], "y2": 10.0})
    from bench.data.tracks import make_tracks

    view = firewall.without_identities(make_tracks(labels))
    assert view["track_id"].tolist() == [-1] * 4
    assert view["x1"].tolist() == [10.0, 50.0, 12.0, 52.0]  # by box within a frame, not by the hidden id


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output + (str(result.exception) if result.exit_code not in (0, 2) else "")


def test_mot17_layout_bench_eval_and_run(tmp_path: Path, monkeypatch) -> None:
    root = make_mot17(tmp_path / "MOT17")
    # bench eval --format mot: the ground truth itself as the prediction scores HOTA 1.
    pred = tmp_path / "pred"
    pred.mkdir()
    for seq in ("MOT17-02-FRCNN", "MOT17-10-FRCNN"):
        shutil.copy(root / "train" / seq / "gt" / "gt.txt", pred / f"{seq}.txt")
    out = tmp_path / "s.json"
    code, text = _cli("eval", "--format", "mot", "--gt", str(root / "train"), "--pred", str(pred), "--json", str(out))
    assert code == 0, text
    assert json.loads(out.read_text())["summary"]["HOTA"] == pytest.approx(1.0)
    # The reader hands the public detections to the split; bench run tracks them.
    ds = load_dataset("mot17", root=root)
    assert ds.val.detections is not None and len(ds.val.detections) == 10 * 3 - 1 + 1
    assert set(ds.val.sequences) == {"MOT17-10-FRCNN"} and (ds.val.detections["track_id"] == -1).all()
    monkeypatch.chdir(tmp_path)
    for method in ("sort", "nkf-em"):
        code, text = _cli("run", "--method", method, "--dataset", "mot17", "--profile", "smoke",
                          "--set", f"data.root={root}", "--set", "method.steps=5" if method == "nkf-em" else
                          "method.max_age=5")
        assert code == 0, text
        assert "IDF1" in text


BAD_LINES = [("NaN", "3,-1,nan,10,8,20,0.9", "'bb_left' is 'nan'"),
             ("negative size", "3,-1,10,10,-8,20,0.9", "box size -8.0 x 20.0"),
             ("frame beyond seqLength", "11,-1,10,10,8,20,0.9", "frame 11, but seqLength is 10"),
             ("frame 0", "0,-1,10,10,8,20,0.9", "frame 0, expected >= 1")]


@pytest.mark.parametrize("what,line,message", BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_bad_detections_name_file_and_line(tmp_path: Path, monkeypatch, what: str, line: str, message: str) -> None:
    root = make_mot17(tmp_path / "MOT17")
    det = root / "train" / "MOT17-10-FRCNN" / "det" / "det.txt"
    with det.open("a") as fh:
        fh.write(line + "\n")
    n = len(det.read_text().splitlines())
    monkeypatch.chdir(tmp_path)
    code, text = _cli("run", "--method", "sort", "--dataset", "mot17", "--profile", "smoke",
                      "--set", f"data.root={root}")
    assert code == 2, text
    assert f"det.txt:{n}:" in text.replace("\n", "") and message in text.replace("\n", "")
    pred = tmp_path / "pred"
    pred.mkdir(exist_ok=True)
    for seq in ("MOT17-02-FRCNN", "MOT17-10-FRCNN"):
        shutil.copy(root / "train" / seq / "gt" / "gt.txt", pred / f"{seq}.txt")
    code, text = _cli("eval", "--format", "mot", "--gt", str(root / "train"), "--pred", str(pred))
    assert code == 2, text
    assert f"det.txt:{n}:" in text.replace("\n", "")


