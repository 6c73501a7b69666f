"""No number changes: today's code measures exactly what the code before issue 14's refactor measured.

The reference values (tests/fixtures/reference_numbers.json) were written by ``reference_numbers.py`` on
the code before the refactor; every metric row of every smoke run, every metric function's output on the
golden fixtures and every method's resolved per-profile parameters must be equal to the last bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import reference_numbers as ref

REFERENCE = json.loads(ref.FIXTURE.read_text())


def _diff(want: dict, got: dict) -> list[str]:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    return ([f"missing {k}" for k in missing] + [f"new {k}" for k in extra]
            + [f"{k}: was {want[k]!r}, now {got[k]!r}" for k in changed])


@pytest.mark.parametrize("case", ref.SMOKE_CASES, ids=[ref.case_id(*c) for c in ref.SMOKE_CASES])
def test_smoke_run_metrics_unchanged(case: ref.Case, tmp_path: Path) -> None:
    recorded = REFERENCE["smoke"].get(ref.cpu_isa(), {})
    if ref.case_id(*case) not in recorded:  # numbers are per instruction set: see reference_numbers.py
        pytest.skip(f"no reference for {ref.case_id(*case)} recorded on a {ref.cpu_isa()} CPU "
                    "(python tests/harness/reference_numbers.py --smoke-only records them)")
    got = ref.smoke_metrics(*case, tmp_path)
    want = recorded[ref.case_id(*case)]
    assert not _diff(want, got), "\n".join(_diff(want, got)[:20])


def test_metric_functions_on_fixtures_unchanged() -> None:
    got = json.loads(json.dumps(ref.fixture_metrics()))
    assert not _diff(REFERENCE["fixtures"], got), "\n".join(_diff(REFERENCE["fixtures"], got)[:20])


def test_resolved_parameters_unchanged() -> None:
    got = ref.resolved_parameters()
    for profile in ("smoke", "quick", "paper"):
        # The one recorded setting that no longer exists: the labeler's own profile name (switches.profile);
        # a method has no profile of its own now, the run's profile YAML gives its parameters.
        assert REFERENCE["resolved"][f"sparse3dtrack/{profile}"]["switches"].pop("profile") == profile
    assert not _diff(REFERENCE["resolved"], got), "\n".join(_diff(REFERENCE["resolved"], got)[:20])
