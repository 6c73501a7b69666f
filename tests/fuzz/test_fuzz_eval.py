"""``bench eval`` on damaged files of every format: one clear line, exit 2, nothing written; or a score.

Each example copies a small valid case (ground truth + predictions), damages one of its files (see
mutate.py) and runs the real CLI with ``--json``. The contract: exit 0 with the JSON written, or exit 2
with exactly one ``error:`` line that names the file it is about, no traceback, and no JSON left behind.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from cases import EVAL_CASES
from click.testing import CliRunner
from fuzzkit import count, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from mutate import damaged_file

from bench.cli import main


@pytest.fixture(scope="module")
def valid_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, Path]]:
    base = tmp_path_factory.mktemp("eval_cases")
    out = {}
    for fmt, make in EVAL_CASES.items():
        gt, pred = make(base / fmt)
        out[fmt] = (base / fmt, gt, pred)
    return out


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def run_eval(fmt: str, gt: Path, pred: Path, json_out: Path) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(main, ["eval", "--format", fmt, "--gt", str(gt), "--pred", str(pred),
                                       "--json", str(json_out)])
    return result.exit_code, result.output, result.exception


def check_contract(fmt: str, work: Path, damaged: Path, gt: Path, pred: Path) -> None:
    json_out = work / "out" / "scores.json"
    code, output, exception = run_eval(fmt, gt, pred, json_out)
    failed = True
    try:
        assert "Traceback" not in output, output
        assert exception is None or isinstance(exception, SystemExit), repr(exception)
        assert code in (0, 2), f"exit {code}: {output}"
        if code == 0:
            assert json_out.is_file(), output
        else:
            assert not json_out.exists() and not json_out.parent.exists(), "output left behind on failure"
            errors = [line for line in output.splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and output.strip().splitlines()[-1] == errors[0], output
            # The one line names the damaged file, or (when the damage shows only against the other side)
            # some file or folder of the input.
            assert str(work) in errors[0], f"error names no input file: {errors[0]}"
        failed = False
    finally:
        count(f"eval-{fmt}", failed)


@pytest.mark.parametrize("fmt", sorted(EVAL_CASES))
@fuzz_settings()
@given(data=st.data())
def test_damaged_eval_inputs(valid_cases: dict, fmt: str, data: st.DataObject) -> None:
    folder, gt, pred = valid_cases[fmt]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "case"
        shutil.copytree(folder, work)
        path, damage = data.draw(damaged_file(files_of(work)), label="damaged file")
        path.write_bytes(damage)
        check_contract(fmt, work, path, work / gt.relative_to(folder), work / pred.relative_to(folder))


@pytest.mark.parametrize("fmt", sorted(EVAL_CASES))
def test_valid_cases_score(valid_cases: dict, fmt: str, tmp_path: Path) -> None:
    """The undamaged cases score (exit 0): otherwise every damaged run above would prove nothing."""
    folder, gt, pred = valid_cases[fmt]
    code, output, exception = run_eval(fmt, gt, pred, tmp_path / "s.json")
    assert code == 0 and exception is None, output
