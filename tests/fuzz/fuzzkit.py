"""Fuzz suite settings and bookkeeping: a short, derandomized run in CI; a long run on demand.

    pytest tests/fuzz -q                                          # CI: BENCH_FUZZ_EXAMPLES per test (default 30)
    BENCH_FUZZ_EXAMPLES=2000 BENCH_FUZZ_SEED=7 BENCH_FUZZ_REPORT=fuzz.json pytest tests/fuzz -q   # long run

CI is reproducible: hypothesis draws from a fixed seed (derandomize) and keeps no example database. A
long run with ``BENCH_FUZZ_SEED`` draws other inputs; ``BENCH_FUZZ_REPORT`` records how many damaged
inputs each test tried and how many of them broke the contract (a traceback, a wrong exit code, an
error that names no file, or output left behind).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

TRIED: Counter[str] = Counter()
FAILED: Counter[str] = Counter()


def fuzz_settings() -> settings:
    examples = int(os.environ.get("BENCH_FUZZ_EXAMPLES", "30"))
    return settings(max_examples=examples, deadline=None, derandomize="BENCH_FUZZ_SEED" not in os.environ,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])


def apply_seed(items: list[Any]) -> None:
    """With ``BENCH_FUZZ_SEED``, every fuzz test draws from that seed (a long run that can be repeated)."""
    seed = os.environ.get("BENCH_FUZZ_SEED")
    if seed is None:
        return
    from hypothesis import seed as hypothesis_seed

    for item in items:
        function = getattr(item, "obj", None)
        if function is not None and hasattr(function, "hypothesis"):
            hypothesis_seed(int(seed))(function)


def count(test: str, failed: bool) -> None:
    TRIED[test] += 1
    if failed:
        FAILED[test] += 1


def write_report() -> None:
    target = os.environ.get("BENCH_FUZZ_REPORT")
    if target:
        report = {"tried": dict(TRIED), "failed": dict(FAILED), "total_tried": sum(TRIED.values()),
                  "total_failed": sum(FAILED.values()), "examples_per_test": fuzz_settings().max_examples,
                  "seed": os.environ.get("BENCH_FUZZ_SEED")}
        Path(target).write_text(json.dumps(report, indent=1))
