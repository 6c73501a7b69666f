"""bench never changes a folder it did not create: every command that takes a path, aimed at a sentinel tree.

The sentinel holds files, a read-only file, a nested folder and a symlink to a folder outside it (which is
hashed too). Each command is pointed at the sentinel itself (it must refuse with one line and exit 2) and at
a new folder beside it (it must work). The tree is hashed before and after: not a byte, mode or link may
change. (Once, ``bench run --set data.root=/etc`` as root removed /etc.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.ownership import MARKER


def _tree_digest(*roots: Path) -> dict[str, str]:
    """Path -> kind, mode and content (or link target) for everything under ``roots``, links not followed."""
    out = {}
    for root in roots:
        for folder, dirs, files in os.walk(root, followlinks=False):
            for name in sorted(dirs + files):
                path = Path(folder) / name
                st = path.lstat()
                if path.is_symlink():
                    what = "link:" + os.readlink(path)
                elif path.is_dir():
                    what = "dir"
                else:
                    what = "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
                out[str(path)] = f"{oct(st.st_mode)} {what}"
    return out


@pytest.fixture
def sentinel(tmp_path: Path) -> tuple[Path, Path]:
    """``tmp/sentinel`` (a user's folder) and ``tmp/outside`` (where its symlink points)."""
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "precious.txt").write_text("do not touch")
    s = tmp_path / "sentinel"
    (s / "training" / "label_02").mkdir(parents=True)
    (s / "a.txt").write_text("k")
    (s / "training" / "label_02" / "0000.txt").write_text("my real KITTI labels\n")
    (s / "COMPLETE").write_text("not bench's marker\n")  # a user's file that happens to share a name
    ro = s / "readonly.bin"
    ro.write_bytes(b"\x00\x01")
    ro.chmod(0o444)
    (s / "link_out").symlink_to(outside, target_is_directory=True)
    return s, outside


def _invoke(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env=env)
    return result.exit_code, result.output


def test_every_path_taking_command_refuses_a_foreign_folder_and_changes_nothing(sentinel, tmp_path: Path) -> None:
    s, outside = sentinel
    beside = tmp_path / "beside"
    env = {"BENCH_DATA_DIR": str(beside / "cache"), "BENCH_RUNS_DIR": str(beside / "runs"), "COLUMNS": "200"}
    before = _tree_digest(s, outside)
    smoke = ["--scale", "smoke"]
    run = ["--method", "interpolate", "--budget", "4", "--profile", "smoke"]
    against = {
        "data make --out": ["data", "make", "synth-kitti", *smoke, "--out", str(s)],
        "data make --out symlink": ["data", "make", "synth-kitti", *smoke, "--out", str(s / "link_out")],
        "data make --out a file": ["data", "make", "synth-kitti", *smoke, "--out", str(s / "a.txt")],
        "data info --root": ["data", "info", "synth-kitti", *smoke, "--root", str(s)],
        "data show --root": ["data", "show", "synth-kitti", *smoke, "--root", str(s), "--seq", "0000", "--frame", "0",
                             "-o", str(beside / "f.png")],
        "data clip --root": ["data", "clip", "synth-kitti", *smoke, "--root", str(s), "--seq", "0000",
                             "-o", str(beside / "c.gif")],
        "run data.root": ["run", *run, "--set", f"data.root={s}"],
        "run --runs-dir": ["run", *run, "--runs-dir", str(s)],
        "sweep data.root": ["sweep", "--methods", "interpolate", "--budgets", "4", "--profile", "smoke",
                            "--set", f"data.root={s}"],
        "sweep --runs-dir": ["sweep", "--methods", "interpolate", "--budgets", "4", "--profile", "smoke",
                             "--runs-dir", str(s)],
    }
    for what, args in against.items():
        code, text = _invoke(args, env)
        assert code == 2, f"{what}: exit {code}\n{text}"
        assert "Traceback" not in text, what
        assert _tree_digest(s, outside) == before, f"{what} changed the sentinel tree"

    # The same commands aimed beside the sentinel work, and leave it alone.
    runs = beside / "runs"
    assert _invoke(["data", "make", "synth-kitti", *smoke, "--out", str(beside / "export")], env)[0] == 0
    assert (beside / "export" / MARKER).is_file()
    assert _invoke(["data", "info", "synth-kitti", *smoke, "--root", str(beside / "export")], env)[0] == 0
    code, text = _invoke(["run", *run, "--set", f"data.root={beside / 'root'}", "--runs-dir", str(runs)], env)
    assert code == 0, text
    report_against = _invoke(["report", "-o", str(s), "--store", str(runs / "bench.sqlite")], env)
    assert report_against[0] == 2 and "not created by bench" in report_against[1], report_against
    assert _invoke(["report", "-o", str(beside / "site"), "--store", str(runs / "bench.sqlite")], env)[0] == 0
    labels = beside / "export" / "training" / "label_02"
    code, text = _invoke(["eval", "--format", "kitti", "--gt", str(labels), "--pred", str(labels), "--json", str(s)],
                         env)
    assert code == 2, text
    code, text = _invoke(["eval", "--format", "kitti", "--gt", str(labels), "--pred", str(labels),
                          "--json", str(beside / "r.json")], env)
    assert code == 0, text
    store = ["--store", str(runs / "bench.sqlite")]
    for target in (s, s / "link_out"):  # the folder itself and the symlink to a folder outside it
        code, text = _invoke(["store", "export", "-o", str(target), *store], env)
        assert code == 2 and "Traceback" not in text, text
    code, text = _invoke(["store", "export", "-o", str(beside / "results.json"), *store], env)
    assert code == 0, text
    assert _tree_digest(s, outside) == before


def test_bench_replaces_only_its_own_stale_export(tmp_path: Path) -> None:
    """An export bench made (its marker inside) may be regenerated; the marker is what makes it bench's."""
    from bench.data.datasets import COMPLETE, export_hash, make_synthetic
    from bench.data.synth import data_hash

    folder = make_synthetic("synth-kitti", "smoke", 0, out=tmp_path / "exp")
    (folder / COMPLETE).write_text("synth-kitti " + "0" * 64 + " 2026-01-01T00:00:00\n")  # an older generator's
    make_synthetic("synth-kitti", "smoke", 0, out=folder)
    assert export_hash(folder) == data_hash("synth-kitti", "smoke", 0)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".exp.")], "temp or set-aside folders left"
