"""Reusing a labeler's pseudolabels from a finished run that made them the same way.

Table 1 trains two base trackers (CenterTrack, DEFT) on the pseudolabels of the same labelers. The pseudolabels
do not depend on the base, yet each cell would train its labeler again: for a 2D tracker + lifter that is two
thirds of the cell's CPU. Before a labeler runs, the pseudolabels stage looks for a finished sibling run (same
dataset, labeler, budget and seed; any base or none) with the same *identity* and copies its pseudolabels instead
of running the labeler.

The identity is everything that decides the pseudolabels: the resolved config without the base and the scoring
sections, the labeler's code version, the data and label-manifest hashes, budget, seed, device, the CPU, Python
and the package versions (a trained network is bit-identical on one CPU only: ``cpu_info``). For the donor it is
read from its ``run.json``, which every finished or failed run writes, so runs made before this module existed
are donors too. The copy is therefore what running the labeler here would have produced, and base trackers seed
themselves in ``fit``, so the base trains the same either way (tests/harness/test_reuse.py checks the predictions
bit for bit). The run's manifest names the donor (``pseudolabels_from``); its timings then hold the base's CPU
only. A run only ever reads another run's folder and writes its own.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from bench.runner.keys import code_version, key_config, safe_name
from bench.runner.manifest import cpu_info, package_versions
from bench.runner.stages import MARKER, StageDir, atomic_write

NOT_PSEUDOLABEL_INPUTS = ("base", "eval")  # config sections a labeler never reads


def _identity(parts: dict[str, Any]) -> str:
    parts = {**parts, "config": {k: v for k, v in key_config(parts["config"]).items()
                                 if k not in NOT_PSEUDOLABEL_INPUTS}}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def pseudolabel_identity(planned: Any, device: str) -> str:
    """sha256 of what decides a planned job's pseudolabels on this machine (see the module doc)."""
    job = planned.job
    return _identity({"config": planned.config, "method": job.method, "method_code": code_version(planned.method_cls),
                      "dataset": job.dataset, "data_hash": planned.data_hash, "labels": planned.manifest_hash,
                      "budget": job.budget, "seed": job.seed, "device": device, "cpu": cpu_info(),
                      "python": sys.version.split()[0], "packages": package_versions()})


def recorded_identity(record: dict[str, Any]) -> str | None:
    """The same sha256 for a run from its ``run.json`` (None when the record lacks a part)."""
    manifest = record.get("manifest") or {}
    try:
        return _identity({"config": record["config"], "method": record["method"],
                          "method_code": manifest["method_code"], "dataset": record["dataset"],
                          "data_hash": manifest["data_hash"], "labels": manifest["labels_manifest"],
                          "budget": record["budget"], "seed": record["seed"], "device": record["device"],
                          "cpu": manifest["cpu"], "python": manifest["python"], "packages": manifest["packages"]})
    except (KeyError, TypeError):
        return None


def find_donor(planned: Any, runs_root: Path, identity: str) -> tuple[Path, dict[str, Any]] | None:
    """Another run's folder whose pseudolabels stage is done with this identity, and the labeler notes it recorded."""
    job = planned.job
    method = safe_name(job.method)
    budget = f"b{'all' if job.budget is None else int(job.budget)}"
    dataset_dir = Path(runs_root) / safe_name(job.dataset)
    if not dataset_dir.is_dir():
        return None
    own = Path(planned.run_dir).resolve()
    for label_dir in sorted(dataset_dir.iterdir()):
        if label_dir.name != method and not label_dir.name.startswith(f"{method}+"):
            continue
        seed_dir = label_dir / budget / f"s{int(job.seed)}"
        for run_dir in sorted(seed_dir.iterdir()) if seed_dir.is_dir() else []:
            if run_dir.resolve() == own or not StageDir(run_dir, "pseudolabels").is_done():
                continue
            try:
                record = json.loads((run_dir / "run.json").read_text())
            except (OSError, ValueError):
                continue
            same = isinstance(record, dict) and record.get("method") == job.method
            if same and recorded_identity(record) == identity:
                return run_dir, dict((record.get("manifest") or {}).get("method_notes") or {})
    return None


def copy_stage(donor: StageDir, stage: StageDir) -> list[str]:
    """Copy a done stage's listed files into ``stage`` (started: empty); returns their names, to mark it done."""
    files = list(json.loads(donor.file(MARKER).read_text())["files"])
    for name in files:
        source = donor.file(name)
        atomic_write(stage.file(name), lambda target: shutil.copyfile(source, target))  # noqa: B023 (called here)
    return files
