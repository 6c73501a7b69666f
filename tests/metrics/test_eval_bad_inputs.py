"""``bench eval`` answers each bad input of issue 13 with one line naming the file, exit 2 and no ``--json``.

Each of these was a traceback, a bare error without the file, or silently accepted. The fuzz suite
(tests/fuzz) covers damage at random; these pin the reported cases.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from cases import kitti_eval_case, nuscenes_eval_case, tapvid3d_eval_case, waymo_eval_case  # noqa: E402

V2 = "[LiDARBoxComponent]"


def refused(fmt: str, gt: Path, pred: Path, tmp_path: Path) -> str:
    """Run the CLI with --json; assert exit 2, one error line, no traceback, no JSON. Returns the line."""
    out = tmp_path / "out" / "scores.json"
    result = CliRunner().invoke(main, ["eval", "--format", fmt, "--gt", str(gt), "--pred", str(pred),
                                       "--json", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not out.exists() and not out.parent.exists()
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.mark.parametrize(("value", "expected"), [(5, "is 5, expected label.proto type"),
                                                 (-1, "is -1, expected label.proto type"),
                                                 (1.5, "is 1.5, expected an integer")])
def test_waymo_type_outside_the_enum(tmp_path: Path, value: float, expected: str) -> None:
    gt, pred = waymo_eval_case(tmp_path / "case")
    df = pd.read_parquet(pred)
    df[f"{V2}.type"] = df[f"{V2}.type"].astype(float)
    df.loc[3, f"{V2}.type"] = value
    df.to_parquet(pred)
    line = refused("waymo", gt, pred, tmp_path)
    assert f"pred.parquet: row 4: {V2}.type {expected}" in line


def test_waymo_non_numeric_cell_names_file_row_and_column(tmp_path: Path) -> None:
    gt, pred = waymo_eval_case(tmp_path / "case")
    df = pd.read_parquet(gt)
    df[f"{V2}.box.center.x"] = df[f"{V2}.box.center.x"].map(str)
    df.loc[2, f"{V2}.box.center.x"] = "far"
    df.to_parquet(gt)
    line = refused("waymo", gt, pred, tmp_path)
    assert f"gt.parquet: row 3: 'far', not a number, in {V2}.box.center.x" in line


@pytest.mark.parametrize("damage", ["directory", "symlink_loop", "binary"])
def test_kitti_prediction_file_that_cannot_be_read(tmp_path: Path, damage: str) -> None:
    gt, pred = kitti_eval_case(tmp_path / "case")
    target = pred / "0001.txt"
    target.unlink()
    if damage == "directory":
        target.mkdir()
        expected = "0001.txt: is a folder, expected a KITTI label file"
    elif damage == "symlink_loop":
        os.symlink(target, target)
        expected = "0001.txt: cannot read the KITTI label file"
    else:
        target.write_bytes(b"0 1 Car 0 0 0 1 2 3 4\n\x89PNG\r\n\x1a\n\xff\xfe")
        expected = "0001.txt:2: byte 0x89 is not UTF-8 text"
    assert expected in refused("kitti", gt, pred, tmp_path)


@pytest.mark.parametrize("content", [b"", b"garbage, not an archive", b"\x80\x04\x95 pickled"])
def test_tapvid3d_unreadable_prediction(tmp_path: Path, content: bytes) -> None:
    gt, pred = tapvid3d_eval_case(tmp_path / "case")
    (pred / "a.npz").write_bytes(content)
    assert "a.npz: not a readable TAPVid-3D prediction file" in refused("tapvid3d", gt, pred, tmp_path)


def test_tapvid3d_missing_prediction_is_refused_like_kitti_and_mot(tmp_path: Path) -> None:
    gt, pred = tapvid3d_eval_case(tmp_path / "case")
    (pred / "b.npz").unlink()
    line = refused("tapvid3d", gt, pred, tmp_path)
    assert f"{pred}: no prediction file for video(s) b" in line


def test_binary_files_in_text_formats_name_the_file(tmp_path: Path) -> None:
    gt, pred = nuscenes_eval_case(tmp_path / "nusc")
    text = pred.read_bytes()
    pred.write_bytes(text[:40] + b"\xff\xd8\xff\xe0" + text[40:])
    line = text[:40].count(b"\n") + 1
    assert f"pred.json:{line}: byte 0xff is not UTF-8 text" in refused("nuscenes", gt, pred, tmp_path)


def _submission_with(tmp_path: Path, **changes: object) -> tuple[Path, Path]:
    gt, pred = nuscenes_eval_case(tmp_path / "nusc")
    submission = json.loads(pred.read_text())
    first = next(token for token, boxes in submission["results"].items() if boxes)
    submission["results"][first][0].update(changes)
    pred.write_text(json.dumps(submission))
    return gt, pred


@pytest.mark.parametrize(("changes", "expected"), [
    ({"tracking_id": None}, "tracking_id null, expected a string (or integer) id"),
    ({"tracking_id": [1, 2]}, "tracking_id [1, 2], expected a string (or integer) id"),
    ({"rotation": [0, 0, 0, 0]}, "rotation [0, 0, 0, 0], expected a quaternion"),
])
def test_nuscenes_submission_values_the_devkit_cannot_use(tmp_path: Path, changes: dict, expected: str) -> None:
    gt, pred = _submission_with(tmp_path, **changes)
    line = refused("nuscenes", gt, pred, tmp_path)
    assert "pred.json: results[" in line and expected in line


def test_kitti_warning_and_score_for_skipped_rows(tmp_path: Path) -> None:
    """A skipped row (id -1) is a warning line with file:line; the run scores (exit 0) and writes --json."""
    gt, pred = kitti_eval_case(tmp_path / "case")
    first = (pred / "0000.txt").read_text().splitlines()[0].split()
    first[1] = "-1"
    with (pred / "0000.txt").open("a") as fh:
        fh.write(" ".join(first) + "\n")
    n = len((pred / "0000.txt").read_text().splitlines())
    out = tmp_path / "s.json"
    result = CliRunner().invoke(main, ["eval", "--format", "kitti", "--gt", str(gt), "--pred", str(pred),
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert f"warning: {pred / '0000.txt'}:{n}: negative track_id: row skipped" in result.output
    assert json.loads(out.read_text())["protocol"] == "kitti-2d"


def test_json_target_that_cannot_be_written(tmp_path: Path) -> None:
    gt, pred = kitti_eval_case(tmp_path / "case")
    (tmp_path / "taken").mkdir()
    result = CliRunner().invoke(main, ["eval", "--format", "kitti", "--gt", str(gt), "--pred", str(pred),
                                       "--json", str(tmp_path / "taken")])
    # click refuses a folder for a file option before any work (exit 2); nothing appears inside it.
    assert result.exit_code == 2 and not any((tmp_path / "taken").iterdir())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["eval", "--format", "kitti", "--gt", str(gt), "--pred", str(pred),
                                       "--json", str(blocker / "scores.json")])
    assert result.exit_code == 2 and "cannot write the scores" in result.output
    assert blocker.read_text() == "x"


def test_bench_json_with_only_splits_is_enough(tmp_path: Path) -> None:
    """Users write bench.json by hand (nuScenes splits); name, frame rate and hash are optional."""
    from bench.data.datasets import make_synthetic
    from bench.data.formats.kitti import read_dataset

    root = make_synthetic("synth-kitti", scale="smoke", out=tmp_path / "export")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("bench"))
    splits = json.loads((copy / "bench.json").read_text())["splits"]
    (copy / "bench.json").write_text(json.dumps({"splits": splits}))
    dataset = read_dataset(copy)
    assert sorted(dataset.val.sequences) == splits["val"] and dataset.frame_rate == 10.0
    (copy / "bench.json").write_text(json.dumps({"splits": {"train": "0000"}}))
    from bench.data.sequence import DataError

    with pytest.raises(DataError, match=r"bench\.json: expected \{\"splits\""):
        read_dataset(copy)
    assert np.isfinite(dataset.frame_rate)
