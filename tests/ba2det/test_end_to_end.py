"""`bench run --method ba2det` on synth-waymo at the smoke profile, end to end, through the runner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.runner import Job, SweepOptions, run_sweep
from bench.store import Store

pytest.importorskip("pycolmap", reason="pip install 'bench[ba2det]' to run ba2det")


def test_ba2det_runs_at_0_percent_3d_and_is_scored_with_let_ap(tmp_path):
    options = SweepOptions(runs_root=tmp_path / "runs", progress=False, device="cpu")
    result = run_sweep([Job("ba2det", dataset="synth-waymo", budget=0, profile="smoke")], options)
    store = Store(tmp_path / "runs" / "bench.sqlite")
    planned = result.planned[0]
    record = store.run(planned.key)
    assert result.exit_code == 0, record.error
    assert record.manifest["label_cost"]["boxes_3d"] == 0 and record.manifest["label_cost"]["boxes_2d"] > 0
    names = set(pd.read_parquet(planned.run_dir / "metrics" / "metrics.parquet")["metric"])
    assert {"LET-3D-AP", "LET-3D-APL", "3D-AP"} <= names, names
    # The initial pseudo-labels came from the reconstruction: some training boxes got a 3D box, none from labels.
    pseudo = pd.read_parquet(planned.run_dir / "work" / "pseudolabels.parquet")
    assert np.isfinite(pseudo["z"]).any()
