"""The README's "How to add a method" example runs as written, end to end through the runner."""

from __future__ import annotations

import re
from pathlib import Path

from bench import registry
from bench.runner import Job, SweepOptions, run_sweep
from bench.store import Store

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_registers_and_runs(tmp_path, tiny_registered):
    text = README.read_text()
    section = text[text.index("## How to add a method"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    try:
        result = run_sweep([Job("hold", dataset=tiny_registered, budget=2, profile="smoke",
                                overrides=("eval.pseudolabel=[3d-iou]",))],
                           SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu"))
        record = Store(tmp_path / "runs" / "bench.sqlite").run(result.planned[0].key)
        assert record.status == "ok", record.error
        metrics = Store(tmp_path / "runs" / "bench.sqlite").metrics_frame()
        tp = metrics[(metrics["seq"] == "") & (metrics["metric"] == "TP")]["value"].iloc[0]
        assert tp > 6 * 2  # more boxes matched than the 2 labels per track it was given
    finally:
        registry.unregister("hold")
