"""Numbers recorded before issue 14's refactor, and the code that measures them again.

The refactor (one registry, parameters declared once, metrics in one shape, a typed plan) must change
no number. ``python tests/harness/reference_numbers.py`` ran on the code before it and wrote
``tests/fixtures/reference_numbers.json``; ``test_reference_numbers.py`` measures the same things on
today's code and requires every value to be bit-identical (floats compared by their JSON text).

What is measured: every metric row (summary and per sequence) of the smoke runs of every registered
labeler, with its default base tracker and with ``--base none``, and the metric functions' outputs on
the committed golden fixtures (nuScenes, Waymo LET, TAPVid-3D).

The smoke runs train networks, and torch picks its CPU kernels by instruction set (AVX2 or AVX512): the same seed
gives the same bits on one machine, not across the two (sparse3dtrack's smoke pseudolabel HOTA 0.44451 on an
AVX512 EPYC, 0.44508 on an AVX2 one). So the smoke numbers are kept per instruction set (``smoke`` ->
``{"AVX2": {...}, "AVX512": {...}}``); ``python tests/harness/reference_numbers.py --smoke-only`` records the
current machine's set, after an intended change of numbers, and leaves the other set alone (delete its changed
cases: they are skipped there until someone records them on such a machine).

Recorded: AVX512 on 2026-12-07 (an AMD EPYC with AVX-512, after the matcher's shape head moved to the peak cell);
AVX2 on 2026-12-07 before that change, its five matcher-using sparse3dtrack cases re-recorded on an AVX2 EPYC the
same day (the other 17 AVX2 cases re-measured unchanged).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "reference_numbers.json"
METRIC_FIXTURES = ROOT / "tests" / "fixtures" / "metrics"

LABELERS = ("sparse", "oracle", "interpolate", "sparse3dtrack", "sparse3dtrack-lift")
# The smoke profile's 6 CenterTrack steps predict nothing on val; these overrides make the base tracker
# predict boxes, so the val metrics (CLEAR, HOTA, AMOTA) are exercised with non-zero numbers too.
TRAINED = ("base.steps=150", "base.lr=0.01")
# (dataset, method, base, overrides): base "centertrack" (sparse3dtrack's default) or "none" (no base tracker).
Case = tuple[str, str, str, tuple[str, ...]]
SMOKE_CASES: list[Case] = [
    *((d, m, b, ()) for d in ("synth-kitti", "synth-nuscenes") for m in LABELERS for b in ("centertrack", "none")),
    ("synth-kitti", "sparse3dtrack", "centertrack", TRAINED),
    ("synth-nuscenes", "oracle", "centertrack", TRAINED),
]


def case_id(dataset: str, method: str, base: str, overrides: tuple[str, ...] = ()) -> str:
    return f"{dataset}/{method}+{base}" + "".join(f" {o}" for o in overrides)


def _number(value: float) -> float | str:
    # JSON has no NaN; repr keeps every bit of a finite float through a JSON round trip.
    return "nan" if math.isnan(value) else float(value)


def smoke_metrics(dataset: str, method: str, base: str, extra: tuple[str, ...], work: Path) -> dict[str, float | str]:
    """Every metric row of one smoke run at budget 4, seed 0, one thread: {"split/protocol/seq/metric": value}."""
    from rich.console import Console

    from bench.runner import Job, SweepOptions, run_sweep
    from bench.store import Store

    overrides = ("method.threads=1",) if method.startswith("sparse3dtrack") else ()
    if base != "none":
        overrides += ("base.threads=1",)
    overrides += extra
    job = Job(method=method, dataset=dataset, budget=4, seed=0, profile="smoke", base=base, overrides=overrides)
    options = SweepOptions(runs_root=work / "runs", store_path=work / "store.db", device="cpu")
    result = run_sweep([job], options, Console(stderr=True, quiet=True))
    assert result.exit_code == 0, f"{case_id(dataset, method, base, extra)}: exit {result.exit_code}"
    frame = Store(work / "store.db", readonly=True).metrics_frame()
    assert frame["run_key"].nunique() == 1, f"{case_id(dataset, method, base, extra)}: expected one run in the store"
    return {f"{r.split}/{r.protocol}/{r.seq}/{r.metric}": _number(r.value) for r in frame.itertuples(index=False)}


def fixture_metrics() -> dict[str, Any]:
    """The metric functions' outputs on the committed golden fixtures, unrounded."""
    import numpy as np
    import pandas as pd

    from bench.metrics.let_ap import LET_CONFIG, PLAIN_3D_CONFIG, DetectionConfig, WaymoObjects, detection_metrics
    from bench.metrics.nuscenes_tracking import NuscBoxes, evaluate_boxes
    from bench.metrics.tapvid3d import video_metrics

    out: dict[str, Any] = {}
    for path in sorted((METRIC_FIXTURES / "nuscenes").glob("*.json")):
        inputs = json.loads(path.read_text())["inputs"]
        samples = pd.DataFrame(inputs["samples"])
        result = evaluate_boxes(NuscBoxes.from_columns(inputs["gt"], samples=samples),
                                NuscBoxes.from_columns(inputs["pred"], samples=samples))
        out[f"nuscenes/{path.stem}"] = {
            "summary": {k: _number(v) for k, v in sorted(result.summary.items())},
            "per_class": {c: {k: _number(v) for k, v in sorted(m.items())}
                          for c, m in sorted(result.extras["per_class"].items())}}
    for path in sorted((METRIC_FIXTURES / "waymo").glob("*.json")):
        case = json.loads(path.read_text())
        gt, pred = case["gt"], case["pred"]
        g = WaymoObjects(gt["boxes"], gt["types"], gt["frames"], difficulty=gt["difficulty"])
        p = WaymoObjects(pred["boxes"], pred["types"], pred["frames"], scores=pred["scores"], overlap_nlz=pred["nlz"])
        for label, base_config in (("let", LET_CONFIG), ("3d", PLAIN_3D_CONFIG)):
            config = DetectionConfig(breakdowns=("OBJECT_TYPE", "RANGE"), difficulty_levels=(1, 2), let=base_config.let)
            ours = detection_metrics(p, g, config)
            out[f"waymo/{path.stem}/{label}"] = {
                name: {"ap": _number(m.ap), "aph": _number(m.aph), "apl": _number(m.apl)}
                for name, m in sorted(ours.items())}
    for path in sorted((METRIC_FIXTURES / "tapvid3d").glob("*.json")):
        case = json.loads(path.read_text())
        for scaling in sorted(case["expected"]):
            got = video_metrics(np.asarray(case["gt_xyz"]), np.asarray(case["gt_vis"]), np.asarray(case["pred_xyz"]),
                                np.asarray(case["pred_vis"]), np.asarray(case["fx_fy_cx_cy"]), scaling=scaling,
                                query_frames=np.asarray(case["queries_t"]))
            out[f"tapvid3d/{path.stem}/{scaling}"] = {k: _number(float(v)) for k, v in sorted(got.items())}
    return out


def resolved_parameters() -> dict[str, Any]:
    """What each method's code ends up using per built-in profile (the refactor moved where these live).

    Recorded before the refactor from the profile tables in baselines/centertrack/train.py and
    methods/sparse3dtrack/config.py; measured now from the profile YAMLs and the constructors."""
    from baselines.centertrack.learner import CenterTrackLearner
    from bench.config import method_params
    from methods.sparse3dtrack.config import resolve_params

    out: dict[str, Any] = {}
    for profile in ("smoke", "quick", "paper"):
        ct = CenterTrackLearner(**method_params(profile, "centertrack")).config()
        out[f"centertrack/{profile}"] = json.loads(json.dumps(ct, sort_keys=True))
        s3 = resolve_params(method_params(profile, "sparse3dtrack"))
        out[f"sparse3dtrack/{profile}"] = json.loads(json.dumps(s3, sort_keys=True))
    return out


def cpu_isa() -> str:
    """The instruction set torch's CPU kernels use here ("AVX2", "AVX512", ...): smoke numbers depend on it."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def record_smoke(work: Path) -> dict[str, Any]:
    smoke = {}
    for i, (dataset, method, base, extra) in enumerate(SMOKE_CASES):
        smoke[case_id(dataset, method, base, extra)] = smoke_metrics(dataset, method, base, extra, work / str(i))
    return smoke


if __name__ == "__main__":
    import tempfile

    numbers = json.loads(FIXTURE.read_text()) if FIXTURE.exists() else {"smoke": {}}
    with tempfile.TemporaryDirectory() as tmp:
        numbers["smoke"][cpu_isa()] = record_smoke(Path(tmp))
    if "--smoke-only" not in sys.argv:
        numbers.update(fixtures=fixture_metrics(), resolved=resolved_parameters())
    FIXTURE.write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE} ({len(numbers['smoke'][cpu_isa()])} smoke runs on {cpu_isa()}, "
          f"{len(numbers['fixtures'])} fixture cases)", file=sys.stderr)
