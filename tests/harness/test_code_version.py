"""A method's code version covers the code it borrows from other method packages (run keys hash what decides
results: centernet and deft train CenterTrack's network blocks and targets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import registry
from bench.runner import keys


def test_borrowed_packages_are_hashed_with_the_method():
    root = Path(keys.__file__).resolve().parents[2]
    own = sorted((root / "baselines" / "centernet").rglob("*.py"))
    files = keys._with_borrowed_code(own)
    assert files[:len(own)] == own
    borrowed = {f.relative_to(root).as_posix() for f in files[len(own):]}
    assert "baselines/centertrack/model.py" in borrowed and "baselines/centertrack/targets.py" in borrowed
    assert not any(name.startswith("methods/nkf_em") for name in borrowed)  # only what it imports


def test_an_edit_to_borrowed_code_changes_the_version(monkeypatch: pytest.MonkeyPatch):
    centernet, sort = registry.get_method("centernet"), registry.get_method("sort")
    monkeypatch.setattr(keys, "_code_versions", {})
    before = keys.code_version(centernet), keys.code_version(sort)
    read = Path.read_bytes

    def edited(path: Path) -> bytes:  # as if baselines/centertrack/model.py had one more line
        data = read(path)
        return data + b"\n# edited\n" if path.as_posix().endswith("baselines/centertrack/model.py") else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    monkeypatch.setattr(keys, "_code_versions", {})
    after = keys.code_version(centernet), keys.code_version(sort)
    assert after[0] != before[0]  # centernet borrows CenterTrack's blocks
    assert after[1] == before[1]  # sort borrows nothing of CenterTrack's
