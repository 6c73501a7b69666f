"""The label manifest: which (seq, frame, track_id) boxes a budget hands to a method, with a hash.

The hash enters run keys, so it depends only on the label rows themselves (sorted), not on how
the manifest was written; YAML and JSON files of one manifest give one hash.

Two label regimes share it (``regime``):

- ``"3d-budget"`` (the default): ``k`` labels per track, 2D and 3D box together (SPOT's budget);
- ``"2d-all"`` (BA²-Det): a 2D box with its 2D track id on every frame, the 3D box only on the sequences
  listed in ``seqs_3d`` (``k`` is then the percentage of training sequences that carry 3D boxes, 0..100).
  :meth:`LabelManifest.labels` blanks the 3D columns of every other sequence, and the hash covers the
  regime and ``seqs_3d`` too, so a manifest edited to add a 3D sequence no longer matches its hash.
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
from bench.data.tracks import BOX3D_COLUMNS, DONTCARE
from bench.labels.budget import sample_budget

KEY = ["seq", "frame", "track_id"]
REGIMES: tuple[str, ...] = ("3d-budget", "2d-all")


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
    regime: str = "3d-budget"
    seqs_3d: tuple[str, ...] = ()  # regime "2d-all": the sequences whose 3D boxes are handed out

    def __post_init__(self) -> None:
        self.rows = _canonical(self.rows)
        if self.regime not in REGIMES:
            raise DataError(f"label manifest: unknown regime {self.regime!r} (choose from {', '.join(REGIMES)})")
        self.seqs_3d = tuple(sorted(str(s) for s in self.seqs_3d))

    @property
    def sha256(self) -> str:
        text = "\n".join(f"{s},{f},{t}" for s, f, t in self.rows.itertuples(index=False))
        if self.regime != "3d-budget":  # the default regime's hashes stay what they were before regimes existed
            text += f"\nregime={self.regime};3d=" + ",".join(self.seqs_3d)
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
        out = pd.concat([picked, gt[gt["cls"] == DONTCARE]], ignore_index=True)[list(gt.columns)]
        if self.regime == "2d-all":
            out = blank_3d(out, self.seqs_3d)
        return out

    def to_dict(self) -> dict[str, Any]:
        regime = {} if self.regime == "3d-budget" else {"regime": self.regime, "seqs_3d": list(self.seqs_3d)}
        return {"k": self.k, "seed": self.seed, "sha256": self.sha256, "meta": self.meta, **regime,
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
        manifest = cls(k=int(data["k"]), seed=int(data["seed"]), rows=rows, meta=data.get("meta") or {},
                       regime=str(data.get("regime", "3d-budget")), seqs_3d=tuple(data.get("seqs_3d") or ()))
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


def blank_3d(labels: pd.DataFrame, seqs_3d: tuple[str, ...] | list[str] | set[str]) -> pd.DataFrame:
    """``labels`` with the seven 3D columns NaN on every sequence outside ``seqs_3d`` (a copy)."""
    out = labels.copy()
    outside = ~out["seq"].astype(str).isin(set(map(str, seqs_3d))).to_numpy()
    out.loc[outside, list(BOX3D_COLUMNS)] = np.nan
    return out


def sequences_with_3d(tracks: pd.DataFrame, percent: int, seed: int) -> tuple[str, ...]:
    """The training sequences whose 3D boxes a ``percent`` % 3D budget hands out: ceil(percent/100 * n) of them
    (0 % none; any share above 0 at least one), the first of a seeded permutation, so the shares are nested
    (the 10 % set is inside the 20 % set) and do not depend on which other shares were asked for."""
    if not 0 <= percent <= 100:
        raise ValueError(f"3D label share must be 0..100 %, got {percent}")
    names = sorted({str(s) for s in tracks["seq"]})
    count = int(np.ceil(percent / 100 * len(names) - 1e-9))
    order = np.random.default_rng([int(seed), 2_000_003]).permutation(len(names))
    return tuple(sorted(names[i] for i in order[:count]))


def make_2d_manifest(tracks: pd.DataFrame, percent: int, seed: int = 0,
                     meta: dict[str, Any] | None = None) -> LabelManifest:
    """Regime "2d-all": every real box of ``tracks`` as a 2D label (with its track id), 3D on ``percent`` % of the
    sequences (see :func:`sequences_with_3d`)."""
    real = tracks[tracks["cls"] != DONTCARE]
    return LabelManifest(k=int(percent), seed=seed, rows=real, meta=dict(meta or {}), regime="2d-all",
                         seqs_3d=sequences_with_3d(tracks, percent, seed))


def label_cost(labels: pd.DataFrame, tracks_2d: pd.DataFrame | None = None) -> dict[str, int]:
    """Annotation cost of a label table as a method receives it: 2D boxes (every real row) and 3D boxes (rows
    whose seven 3D columns are all known) apart, and the sequences that carry 3D boxes. DontCare not counted.
    ``tracks_2d`` (the 2D boxes a ``sees_2d_ground_truth`` method gets besides its labels): when it holds more
    2D boxes than the labels, those are the 2D cost."""
    real = labels[labels["cls"] != DONTCARE]
    has3d = np.isfinite(real[list(BOX3D_COLUMNS)].to_numpy(np.float64)).all(axis=1)
    extra = 0 if tracks_2d is None or not len(tracks_2d) else int((tracks_2d["cls"] != DONTCARE).sum())
    return {"boxes_2d": max(len(real), extra), "boxes_3d": int(has3d.sum()),
            "sequences": int(real["seq"].nunique()), "sequences_3d": int(real["seq"][has3d].nunique())}
