"""``bench eval``: scores files like the golden TrackEval numbers, rejects bad files with file:line and exit 2."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics" / "trackeval"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["eval", *args])
    return result.exit_code, result.output


@pytest.fixture
def kitti_case(tmp_path: Path) -> Path:
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "kitti" / "random_0", case)
    return case


def test_kitti_scores_equal_trackeval_and_json(kitti_case: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.json"
    code, text = _run("--format", "kitti", "--gt", str(kitti_case / "gt"), "--pred", str(kitti_case / "pred"),
                      "--json", str(out))
    assert code == 0, text
    assert "HOTA" in text and "pedestrian" in text
    written = json.loads(out.read_text())
    expected = json.loads((kitti_case / "expected.json").read_text())["results"]["car"]["combined"]
    assert written["protocol"] == "kitti-2d"
    for name, value in expected.items():
        assert written["summary"][name] == pytest.approx(value, abs=1e-6)
    assert {"seq", "metric", "value"} <= set(written["per_sequence"][0])


def test_mot_folder_layout(tmp_path: Path) -> None:
    case = FIXTURES / "mot17" / "noisy"
    expected = json.loads((case / "expected.json").read_text())
    gt = tmp_path / "train"
    for seq, n in expected["n_frames"].items():
        (gt / seq / "gt").mkdir(parents=True)
        shutil.copy(case / "gt" / f"{seq}.txt", gt / seq / "gt" / "gt.txt")
        (gt / seq / "seqinfo.ini").write_text(f"[Sequence]\nname={seq}\nimDir=img1\nframeRate=30\nseqLength={n}\n"
                                              "imWidth=1920\nimHeight=1080\nimExt=.jpg\n")
    out = tmp_path / "s.json"
    code, text = _run("--format", "mot", "--gt", str(gt), "--pred", str(case / "pred"), "--json", str(out))
    assert code == 0, text
    summary = json.loads(out.read_text())["summary"]
    assert summary["HOTA"] == pytest.approx(expected["results"]["pedestrian"]["combined"]["HOTA"], abs=1e-6)
    # A predicted frame past seqLength names the file and line.
    seq = sorted(expected["n_frames"])[0]
    bad = tmp_path / "pred_bad"
    shutil.copytree(case / "pred", bad)
    with (bad / f"{seq}.txt").open("a") as fh:
        fh.write("999,5,10,10,20,40,0.5\n")
    n_lines = len((bad / f"{seq}.txt").read_text().splitlines())
    code, text = _run("--format", "mot", "--gt", str(gt), "--pred", str(bad))
    assert code == 2 and f"{seq}.txt:{n_lines}: frame 999 is outside sequence" in text


def _append_line(path: Path, line: str) -> int:
    with path.open("a") as fh:
        fh.write(line + "\n")
    return len(path.read_text().splitlines())


def _first_pred_line(case: Path) -> list[str]:
    return (case / "pred" / "0000.txt").read_text().splitlines()[0].split()


@pytest.mark.parametrize("problem", ["duplicate", "nan", "columns"])
def test_bad_prediction_lines_name_file_and_line(kitti_case: Path, problem: str) -> None:
    fields = _first_pred_line(kitti_case)
    if problem == "nan":
        fields[6] = "nan"
    elif problem == "columns":
        fields = fields[:12]
    line = _append_line(kitti_case / "pred" / "0000.txt", " ".join(fields))
    code, text = _run("--format", "kitti", "--gt", str(kitti_case / "gt"), "--pred", str(kitti_case / "pred"))
    assert code == 2
    assert f"0000.txt:{line}:" in text


def test_unknown_and_missing_sequences(kitti_case: Path) -> None:
    shutil.copy(kitti_case / "pred" / "0000.txt", kitti_case / "pred" / "0099.txt")
    code, text = _run("--format", "kitti", "--gt", str(kitti_case / "gt"), "--pred", str(kitti_case / "pred"))
    assert code == 2 and "0099.txt: unknown sequence '0099'" in text
    (kitti_case / "pred" / "0099.txt").unlink()
    (kitti_case / "pred" / "0001.txt").unlink()
    code, text = _run("--format", "kitti", "--gt", str(kitti_case / "gt"), "--pred", str(kitti_case / "pred"))
    assert code == 2 and "no prediction file for sequence(s) 0001" in text


def test_frames_outside_a_sequence_with_a_seqmap(kitti_case: Path) -> None:
    (kitti_case / "gt" / "evaluate_tracking.seqmap.val").write_text(
        "0000 empty 000000 000030\n0001 empty 000000 000030\n0002 empty 000000 000030\n")
    fields = _first_pred_line(kitti_case)
    fields[0], fields[1] = "30", "4242"
    line = _append_line(kitti_case / "pred" / "0002.txt", " ".join(fields))
    code, text = _run("--format", "kitti", "--gt", str(kitti_case / "gt"), "--pred", str(kitti_case / "pred"))
    assert code == 2 and f"0002.txt:{line}: frame 30 is outside sequence 0002 (30 frames)" in text


def test_unknown_protocol_suggests(kitti_case: Path) -> None:
    code, text = _run("--format", "kitti", "--gt", str(kitti_case / "gt"), "--pred", str(kitti_case / "pred"),
                      "--protocol", "kitti2d")
    assert code == 2 and "Did you mean 'kitti-2d'" in text


def _nuscenes_files(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A GT JSON and a submission built from the nuScenes golden case ``multi_class`` (devkit numbers known)."""
    case = json.loads((FIXTURES.parent / "nuscenes" / "multi_class.json").read_text())
    inputs = case["inputs"]
    ego: dict[str, list[float]] = {}
    for part in ("gt", "pred"):
        cols = inputs[part]
        for tok, t, e in zip(cols["sample_token"], cols["translation"], cols["ego_translation"], strict=True):
            ego[tok] = [a - b for a, b in zip(t, e, strict=True)]
    s = inputs["samples"]
    samples = {tok: {"scene": sc, "timestamp": ts, "ego_translation": ego.get(tok, [0.0, 0.0, 0.0])}
               for tok, sc, ts in zip(s["sample_token"], s["scene"], s["timestamp"], strict=True)}

    def boxes(part: str, extra: str) -> dict[str, list[dict]]:
        cols = inputs[part]
        out: dict[str, list[dict]] = {tok: [] for tok in samples}
        for i, tok in enumerate(cols["sample_token"]):
            out[tok].append({"sample_token": tok, "translation": cols["translation"][i], "size": [1.8, 4.5, 1.6],
                             "rotation": [1.0, 0.0, 0.0, 0.0], "velocity": [0.0, 0.0],
                             "tracking_id": str(cols["tracking_id"][i]), "tracking_name": cols["tracking_name"][i],
                             extra: cols[extra][i]})
        return out

    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"samples": samples, "results": boxes("gt", "num_pts")}))
    submission = {"meta": {"use_camera": True, "use_lidar": False, "use_radar": False, "use_map": False,
                           "use_external": False}, "results": boxes("pred", "tracking_score")}
    return gt, tmp_path / "pred.json", {"submission": submission, "expected": case["expected"]["overall"]}


# Every committed case these tests read. A missing one fails (it once skipped, so a fixture left out of a commit or a
# broken nuScenes import read as a skip in a fresh clone).
CASES = [FIXTURES / "kitti" / "random_0", FIXTURES / "mot17" / "noisy",
         FIXTURES.parent / "nuscenes" / "multi_class.json"]


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.relative_to(FIXTURES.parents[1]).as_posix())
def test_golden_cases_are_committed(case: Path) -> None:
    assert case.exists(), f"golden case missing: {case}"
    root = FIXTURES.parents[3]
    if (root / ".git").exists() and shutil.which("git"):  # present is not enough: a fresh clone has only what git has
        tracked = subprocess.run(["git", "-C", str(root), "ls-files", "--", str(case.relative_to(root))],
                                 capture_output=True, text=True, check=True).stdout
        assert tracked.strip(), f"golden case not committed: {case}"


def test_nuscenes_submission(tmp_path: Path) -> None:
    gt, pred, data = _nuscenes_files(tmp_path)
    pred.write_text(json.dumps(data["submission"]))
    out = tmp_path / "s.json"
    code, text = _run("--format", "nuscenes", "--gt", str(gt), "--pred", str(pred), "--json", str(out))
    assert code == 0, text
    summary = json.loads(out.read_text())["summary"]
    for name in ("amota", "amotp", "mota", "ids"):
        assert summary[name] == pytest.approx(data["expected"][name], abs=1e-6)

    results = data["submission"]["results"]
    first = next(iter(results))
    too_many = dict(results, **{first: [dict(results[first][0], tracking_id=str(i)) for i in range(501)]})
    pred.write_text(json.dumps(dict(data["submission"], results=too_many)))
    code, text = _run("--format", "nuscenes", "--gt", str(gt), "--pred", str(pred))
    assert code == 2 and "501 boxes, at most 500" in text and "pred.json" in text

    pred.write_text(json.dumps(dict(data["submission"], results=dict(results, **{"no-such-sample": []}))))
    code, text = _run("--format", "nuscenes", "--gt", str(gt), "--pred", str(pred))
    assert code == 2 and "'no-such-sample'" in text and "unknown sample token" in text

    pred.write_text(json.dumps(dict(data["submission"], results={k: v for k, v in results.items() if k != first})))
    code, text = _run("--format", "nuscenes", "--gt", str(gt), "--pred", str(pred))
    assert code == 2 and "results lack 1 of the" in text


def test_waymo_parquet(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    v2 = "[LiDARBoxComponent]"
    rng = np.random.default_rng(1)
    n = 8
    df = pd.DataFrame({
        "key.segment_context_name": ["seg"] * n, "key.frame_timestamp_micros": np.arange(n) // 2,
        "key.laser_object_id": [f"o{i}" for i in range(n)],
        f"{v2}.box.center.x": rng.uniform(5, 40, n), f"{v2}.box.center.y": rng.uniform(-5, 5, n),
        f"{v2}.box.center.z": np.ones(n), f"{v2}.box.size.x": np.full(n, 4.5), f"{v2}.box.size.y": np.full(n, 1.9),
        f"{v2}.box.size.z": np.full(n, 1.6), f"{v2}.box.heading": rng.uniform(-3, 3, n), f"{v2}.type": np.ones(n, int)})
    df.to_parquet(tmp_path / "gt.parquet")
    df.assign(score=0.7).to_parquet(tmp_path / "pred.parquet")
    out = tmp_path / "s.json"
    code, text = _run("--format", "waymo", "--gt", str(tmp_path / "gt.parquet"), "--pred",
                      str(tmp_path / "pred.parquet"), "--json", str(out))
    assert code == 0, text
    assert json.loads(out.read_text())["summary"]["LET-3D-AP/VEHICLE"] == pytest.approx(1.0)
    df.assign(score=[0.7] * 3 + [float("nan")] + [0.7] * 4).to_parquet(tmp_path / "nan.parquet")
    code, text = _run("--format", "waymo", "--gt", str(tmp_path / "gt.parquet"),
                      "--pred", str(tmp_path / "nan.parquet"))
    assert code == 2 and "nan.parquet: row 4: NaN" in text


def test_tapvid3d_npz(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(2)
    xyz = np.column_stack([rng.uniform(-1, 1, 5), rng.uniform(-1, 1, 5), rng.uniform(3, 8, 5)])
    xyz = np.repeat(xyz[None], 4, 0) + rng.normal(0, 0.01, (4, 5, 3))
    visible = rng.uniform(size=(4, 5)) < 0.8
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    np.savez(tmp_path / "gt" / "a.npz", tracks_XYZ=xyz, visibility=visible, queries_xyt=np.zeros((5, 3)),
             fx_fy_cx_cy=np.array([600.0, 600, 320, 240]), image_size=np.array([640, 480]))
    np.savez(tmp_path / "pred" / "a.npz", tracks_XYZ=xyz * 2, visibility=visible)  # median scaling undoes x2
    out = tmp_path / "s.json"
    code, text = _run("--format", "tapvid3d", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"),
                      "--json", str(out))
    assert code == 0, text
    assert json.loads(out.read_text())["summary"]["APD3D"] == pytest.approx(1.0)
    np.savez(tmp_path / "pred" / "zz.npz", tracks_XYZ=xyz, visibility=visible)
    code, text = _run("--format", "tapvid3d", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"))
    assert code == 2 and "zz" in text
