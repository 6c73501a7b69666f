"""The label manifest: which (seq, frame, track_id) boxes a budget hands to a method, with a hash.

The hash enters run keys, so it depends only on the label rows themselves (sorted), not on how
the manifest was written; YAML and JSON files of one manifest give one hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from bench.data.sequence import DataError
from bench.data.tracks import DONTCARE
from bench.labels.budget import sample_budget

KEY = ["seq", "frame", "track_id"]


def _canonical(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows[KEY].copy()
    rows["seq"] = rows["seq"].astype(str)
    rows["frame"] = rows["frame"].astype(np.int64)
    rows["track_id"] = rows["track_id"].astype(np.int64)
    return rows.sort_values(KEY, kind="stable").reset_index(drop=True)


@dataclass
class LabelManifest:
    """Budget ``k`` labels drawn with ``seed``: one row per labelled box (DontCare never listed)."""

    k: int
    seed: int
    rows: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rows = _canonical(self.rows)

    @property
    def sha256(self) -> str:
        text = "\n".join(f"{s},{f},{t}" for s, f, t in self.rows.itertuples(index=False))
        return hashlib.sha256(text.encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.rows)

    def labels(self, gt: pd.DataFrame) -> pd.DataFrame:
        """The labelled boxes of ``gt`` plus its DontCare regions; an unknown row is an error."""
        real = gt[gt["cls"] != DONTCARE]
        picked = real.merge(self.rows, on=KEY, how="inner")
        if len(picked) != len(self.rows):
            missing = self.rows.merge(real[KEY], on=KEY, how="left", indicator=True)
            first = missing[missing["_merge"] == "left_only"].iloc[0]
            raise DataError(f"label manifest (k={self.k}, seed={self.seed}): row (seq={first['seq']}, "
                            f"frame={first['frame']}, track_id={first['track_id']}) is not in the ground truth")
        return pd.concat([picked, gt[gt["cls"] == DONTCARE]], ignore_index=True)[list(gt.columns)]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "seed": self.seed, "sha256": self.sha256, "meta": self.meta,
                "rows": [[s, int(f), int(t)] for s, f, t in self.rows.itertuples(index=False)]}

    def write(self, path: Path | str) -> Path:
        """Write as YAML (``.yaml``/``.yml``) or JSON (anything else), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        if path.suffix in (".yaml", ".yml"):
            text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
        else:
            text = json.dumps(data)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: Path | str) -> LabelManifest:
        """Read a manifest and check its stored hash against its rows."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise DataError(f"{path}: label manifest is missing") from None
        try:
            data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        except (yaml.YAMLError, json.JSONDecodeError) as err:
            raise DataError(f"{path}: not a valid manifest file ({err})") from None
        if not isinstance(data, dict) or not {"k", "seed", "rows"} <= set(data):
            raise DataError(f"{path}: expected a mapping with keys k, seed, rows (and sha256)")
        for i, row in enumerate(data["rows"]):
            if not (isinstance(row, list) and len(row) == 3):
                raise DataError(f"{path}: rows[{i}] is {row!r}, expected [seq, frame, track_id]")
        rows = pd.DataFrame(data["rows"], columns=KEY) if data["rows"] else pd.DataFrame(
            {"seq": pd.Series(dtype=object), "frame": pd.Series(dtype=np.int64), "track_id": pd.Series(dtype=np.int64)})
        manifest = cls(k=int(data["k"]), seed=int(data["seed"]), rows=rows, meta=data.get("meta") or {})
        if "sha256" in data and data["sha256"] != manifest.sha256:
            raise DataError(f"{path}: sha256 {data['sha256']} does not match its rows ({manifest.sha256}); "
                            "the file was edited or damaged")
        return manifest


def make_manifest(tracks: pd.DataFrame, k: int, seed: int = 0,
                  visible: Callable[[pd.DataFrame], np.ndarray] | None = None,
                  meta: dict[str, Any] | None = None) -> LabelManifest:
    """Sample budget ``k`` from ground truth ``tracks`` and record it as a manifest."""
    labels = sample_budget(tracks, k, seed, visible)
    return LabelManifest(k=k, seed=seed, rows=labels[labels["cls"] != DONTCARE], meta=dict(meta or {}))
