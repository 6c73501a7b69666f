"""Stage artifacts: atomic writes and completion markers.

Each stage of a run (labels, pseudolabels, training, prediction, metrics) writes its artifacts
into ``<run_dir>/<stage>/``: every file goes to a temporary name in the same folder and is
renamed into place (``os.replace`` is atomic), and only then is ``.done`` written, listing the
files and their sizes. A stage counts as done only if the marker exists and every listed file is
there with its recorded size, so a run killed halfway is redone from its first unfinished stage
and nothing half-written is ever read as a result.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

STAGES: tuple[str, ...] = ("labels", "pseudolabels", "training", "prediction", "metrics")
MARKER = ".done"


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        # No fsync: os.replace is atomic against a killed process, which is what a sweep must survive;
        # after a power loss a file may come back short, and the marker's recorded sizes catch that.
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda p: frame.to_parquet(p, index=False))


def read_parquet(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    for column in frame.columns:
        if frame[column].dtype != object and str(frame[column].dtype) in ("str", "string"):
            frame[column] = frame[column].astype(object)
    return frame


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    import torch

    atomic_write(path, lambda p: torch.save(state, p))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Weights only: a checkpoint can never run code when loaded."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


class StageDir:
    """The folder of one stage of one run."""

    def __init__(self, run_dir: Path, stage: str) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {STAGES}")
        self.stage = stage
        self.path = Path(run_dir) / stage

    def file(self, name: str) -> Path:
        return self.path / name

    def is_done(self) -> bool:
        marker = self.path / MARKER
        try:
            info = json.loads(marker.read_text())
            return all((self.path / name).stat().st_size == size for name, size in info["files"].items())
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def mark_done(self, files: list[str]) -> None:
        sizes = {name: (self.path / name).stat().st_size for name in files}
        write_text(self.path / MARKER, json.dumps({"files": sizes, "finished_at": time.time()}))

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def start(self) -> None:
        """Begin producing this stage: leftovers of an interrupted attempt (temp files, partial
        artifacts without a marker) are removed first."""
        self.clear()
        self.path.mkdir(parents=True, exist_ok=True)
