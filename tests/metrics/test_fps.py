"""FPS measurement: warm-up calls are not timed, every repeat covers all inputs, the median is used."""

from __future__ import annotations

import time

import pytest

from bench.metrics.fps import measure_fps


def test_warmup_repeats_and_median() -> None:
    calls: list[int] = []

    def work(x: int) -> None:
        calls.append(x)
        time.sleep(0.002)

    result = measure_fps(work, [1, 2, 3], warmup=2, repeats=4)
    assert len(calls) == 3 * (2 + 4)
    assert len(result.times) == 4 and all(t >= 0.006 for t in result.times)
    assert result.n_inputs == 3
    ordered = sorted(result.times)
    assert result.fps_median == pytest.approx(3 / ((ordered[1] + ordered[2]) / 2))  # median of 4 repeats
    assert 0 < result.fps_median <= 3 / 0.006
    assert result.device_name


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one input"):
        measure_fps(lambda x: x, [])
    with pytest.raises(ValueError, match="repeats"):
        measure_fps(lambda x: x, [1], repeats=0)
