"""Planted regressions: a seeded way to make a labeler worse on purpose, so the gate's power can be measured.

A regression gate that never fails proves nothing. ``drop_pseudolabels`` (a constructor parameter of
the labelers that support it, e.g. ``--set method.drop_pseudolabels=0.3``) removes that share of
the labeler's output boxes before anything downstream sees them: pseudolabel quality and the base
tracker both get less. ``bench check`` must exit 1 on such a run and 0 on the unchanged code
(tests/harness/test_planted_regression.py). The default 0 returns the table unchanged (same object),
so runs without it compute exactly what they did before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.data.tracks import DONTCARE

# A stream of its own (seed, this tag): dropping boxes must not shift any other random draw of the run.
_STREAM = 0x64726F70  # "drop"


def check_share(share: float, name: str = "drop_pseudolabels") -> float:
    """``share`` as a float in [0, 1); ValueError naming ``name`` otherwise (1 would leave no labels at all)."""
    try:
        value = float(share)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1), got {share!r}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {share!r}")
    return value


def drop_pseudolabels(table: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """Drop ``round(share * n)`` of the ``n`` object rows (DontCare ignore regions stay), seeded by ``seed``.

    Rows are chosen uniformly over all object boxes (labelled frames included): the regression is
    "the labeler found fewer boxes". ``table.attrs`` travel with the result.
    """
    share = check_share(share)
    if share == 0.0 or table.empty:
        return table
    objects = np.flatnonzero(table["cls"].to_numpy() != DONTCARE)
    n_drop = int(round(share * len(objects)))
    if n_drop == 0:
        return table
    rng = np.random.default_rng([int(seed), _STREAM])
    keep = np.ones(len(table), dtype=bool)
    keep[rng.choice(objects, size=n_drop, replace=False)] = False
    out = table[keep].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out
