"""A gate with measured power: the nightly expectations pass the unchanged code and fail a planted regression.

The nightly path of CI (``tox -e nightly``: ``bench sweep nightly`` at the smoke profile, then
``bench check`` against ``leaderboards/expected/nightly.yaml``) runs in full here (6 interpolate
cells, a few seconds): once unchanged (exit 0) and once with ``--set method.drop_pseudolabels=0.3``
(30 % of the pseudolabel boxes dropped, seeded: exit 1). Their tolerances make the smallest caught
drop of the seed-mean MOTA 1.51 points at budget 4 (4.21 at budget 2); measured: dropping 3 % of the
boxes (-1.75 points at budget 4) is caught, 2 % (-1.31) is not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.tracks import DONTCARE
from bench.labels.degrade import check_share, drop_pseudolabels

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = ROOT / "leaderboards" / "expected" / "nightly.yaml"


def _nightly(runs: Path, *overrides: str) -> int:
    runner = CliRunner()
    sets = [arg for value in overrides for arg in ("--set", value)]
    swept = runner.invoke(main, ["sweep", "nightly", "--runs-dir", str(runs), *sets])
    assert swept.exit_code == 0, swept.output
    checked = runner.invoke(main, ["check", "--expected", str(EXPECTED), "--store", str(runs / "bench.sqlite")])
    return checked.exit_code


def test_nightly_gate_passes_unchanged_code_and_catches_a_planted_regression(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _nightly(tmp_path / "unchanged") == 0
    assert _nightly(tmp_path / "planted", "method.drop_pseudolabels=0.3") == 1


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame({"seq": "s", "frame": np.arange(n) // 4, "track_id": np.arange(n) % 4,
                         "cls": np.where(np.arange(n) % 10 == 0, DONTCARE, "Car"), "x1": rng.random(n)})


def test_drop_is_seeded_keeps_dontcare_and_zero_changes_nothing():
    table = _table()
    table.attrs["neg_weight_maps"] = {"k": 1}
    assert drop_pseudolabels(table, 0.0, seed=0) is table
    out = drop_pseudolabels(table, 0.3, seed=1)
    objects = int((table["cls"] != DONTCARE).sum())
    assert (out["cls"] == DONTCARE).sum() == (table["cls"] == DONTCARE).sum()
    assert (out["cls"] != DONTCARE).sum() == objects - round(0.3 * objects)
    assert out.attrs["neg_weight_maps"] == {"k": 1}
    pd.testing.assert_frame_equal(out, drop_pseudolabels(table, 0.3, seed=1))
    assert not out.equals(drop_pseudolabels(table, 0.3, seed=2))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2, "x", None])
def test_a_share_outside_0_1_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="drop_pseudolabels"):
        check_share(bad)


def test_labelers_declare_the_switch():
    from baselines.interpolate import Interpolate
    from methods.sparse3dtrack.config import resolve_params

    assert Interpolate().drop_pseudolabels == 0.0
    with pytest.raises(ValueError, match="drop_pseudolabels"):
        Interpolate(drop_pseudolabels=1.5)
    assert resolve_params({})["switches"]["drop_pseudolabels"] == 0.0
    assert resolve_params({"drop_pseudolabels": 0.3})["switches"]["drop_pseudolabels"] == 0.3
    with pytest.raises(ValueError, match="drop_pseudolabels"):
        resolve_params({"drop_pseudolabels": -1})
