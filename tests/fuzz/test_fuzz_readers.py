"""Dataset readers (bench.data.formats.*.read_dataset) on damaged files: a DataError naming the file, or a dataset.

Each example hard-link-copies a smoke-scale synthetic export (with or without its ``bench/`` sidecar
tables, so native files are read both as a real dataset's and as an export's), replaces one native file
(or the hand-writable ``bench.json``) with a damaged copy and reads the folder. Anything but a DataError /
TrackTableError whose message names a file of the input is a failure.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

import pytest
from cases import READER_DATASETS, damageable, export, link_copy
from fuzzkit import count, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from mutate import damaged_file

from bench.data.sequence import DataError
from bench.data.tracks import TrackTableError


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("exports")
    return {fmt: export(fmt, base / fmt) for fmt in READER_DATASETS}


def read(fmt: str, root: Path) -> object:
    return importlib.import_module(f"bench.data.formats.{fmt}").read_dataset(root)


@pytest.mark.parametrize("fmt", sorted(READER_DATASETS))
@fuzz_settings()
@given(data=st.data())
def test_damaged_dataset_files(exports: dict[str, Path], fmt: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        link_copy(exports[fmt], root, sidecar_tables=data.draw(st.booleans(), label="sidecar tables"))
        path, damage = data.draw(damaged_file(damageable(fmt, root)), label="damaged file")
        path.unlink()  # a new file: the hard-linked original stays intact
        path.write_bytes(damage)
        failed = True
        try:
            read(fmt, root)
            failed = False
        except (DataError, TrackTableError) as err:
            message = str(err)
            assert str(root) in message, f"error names no input file: {message}"
            assert "\n" not in message.strip(), f"not one line: {message}"
            failed = False
        finally:
            count(f"reader-{fmt}", failed)


@pytest.mark.parametrize("fmt", sorted(READER_DATASETS))
def test_undamaged_exports_read(exports: dict[str, Path], fmt: str, tmp_path: Path) -> None:
    for sidecar_tables in (True, False):
        root = tmp_path / f"copy-{sidecar_tables}"
        link_copy(exports[fmt], root, sidecar_tables=sidecar_tables)
        dataset = read(fmt, root)
        assert dataset.val.sequences, fmt
