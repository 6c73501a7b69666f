"""Fuzz suite: makes the helper modules importable and writes the long run's counts (see fuzzkit)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from fuzzkit import apply_seed

    apply_seed([item for item in items if item.path.parent == HERE])


@pytest.fixture(scope="session", autouse=True)
def _fuzz_report() -> Iterator[None]:
    from fuzzkit import write_report

    yield
    write_report()
