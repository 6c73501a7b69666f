"""Fixtures for the harness tests: the tiny dataset helper is importable as ``tiny``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture
def tiny_registered():
    """Register the tiny dataset as "tiny" for the duration of a test."""
    from tiny import load_tiny

    from bench import registry

    registry.register_dataset("tiny", load_tiny)
    yield "tiny"
    registry.unregister("tiny")
