"""The label firewall: a method sees the training videos and the budget's labels, nothing more.

What it does:

1. **Views, not splits.** :func:`train_view` / :func:`split_view` build *new* ``Sequence``
   objects (copied calibration, poses and timestamps; images materialised into read-only
   arrays, so no path into the dataset folder is handed out; ``meta`` dropped, since loaders
   may keep ground-truth handles there). The hidden ground truth of a split (``tracks``,
   ``points``, ``layers``) is never referenced from a view, and labels are a private copy of
   the budget's rows with only the track-table columns. A method declaring ``sees_identities = False``
   (nkf-em: the regime "detections without identities") gets them with every track id -1 and rows
   ordered by box (:func:`without_identities`). A method declaring ``sees_2d_ground_truth`` (``gt2d``: the regime
   "2D boxes on every frame") also gets ``tracks_2d``, every training box with its 3D columns blanked
   (:func:`boxes_2d_only`); no other method's view holds it. Public detections (MOT17's ``det.txt``) are an input:
   they travel in the views' ``detections``, ids -1 whatever the file said.
2. **No paths.** The :class:`~bench.interface.RunContext` carries no dataset root, store or
   runs folder: only the method's own work folder.
3. **Guarded filesystem.** While method code runs (:func:`guard`), a Python audit hook refuses
   to open or list anything under the dataset folder (it holds GT files) or under the runs
   folder outside the method's own work folder (other runs hold larger budgets' labels). The
   rule is process-wide, so threads the method starts and processes it forks are covered.

Residual risk, stated plainly: a method runs in the same Python process as the runner, so code
that deliberately walks interpreter internals (``gc.get_objects()``, caller frames via
``sys._getframe``) or opens files from C code that bypasses Python's audit events (e.g. some
native readers) is not stopped. The runner lowers this further by dropping its own reference to
the loaded dataset before a method runs (see ``bench.runner.pipeline``), but the firewall is a
guard against accidental and casual leaks, reviewed in code, not a sandbox. Subprocesses a method
*execs* (a fresh interpreter or a shell) are not guarded either. Run untrusted methods in a
container that mounts only the run folder.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.data.masks import MaskKey, RowMask
from bench.data.sequence import PointTracks, Sequence, Split
from bench.data.tracks import TRACK_COLUMNS
from bench.interface import SplitView, TrainView
from bench.labels.manifest import blank_3d


class FirewallError(PermissionError):
    """A method reached for data it must not see."""


def _copy_sequence(seq: Sequence) -> Sequence:
    images = seq.load_images() if not isinstance(seq.images, np.ndarray) else seq.images
    view = images.view()
    view.flags.writeable = False  # methods share the pixels but cannot alter another run's input
    return Sequence(
        name=str(seq.name),
        images=view,
        intrinsics=seq.intrinsics.copy(),
        cam_to_world=seq.cam_to_world.copy(),
        timestamps=seq.timestamps.copy(),
        image_size=(int(seq.image_size[0]), int(seq.image_size[1])),
        frame_ids=seq.frame_ids.copy(),
        meta={},
    )


# The one ``attrs`` entry a label table may carry to a method: FNComp negative-loss weight maps
# {(seq, frame id): 2D float array in [0, 1]} that a labeler made for its base tracker.
PASSED_ATTRS = ("neg_weight_maps",)


def copy_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """A deep copy of label rows restricted to the track-table columns (no extra GT columns).

    ``attrs`` are dropped (a loader could keep anything there), except the weight maps in
    :data:`PASSED_ATTRS`, which are copied deliberately (fresh arrays)."""
    out = labels.loc[:, list(TRACK_COLUMNS)].copy(deep=True).reset_index(drop=True)
    out.attrs = {}
    for name in PASSED_ATTRS:
        maps = labels.attrs.get(name)
        if maps is not None:
            # Writable private copies: torch.from_numpy warns on read-only arrays, and no other run shares them.
            out.attrs[name] = {key: np.array(value, dtype=np.float32, copy=True) for key, value in maps.items()}
    return out


def without_identities(labels: pd.DataFrame) -> pd.DataFrame:
    """``labels`` with no identity left: every ``track_id`` -1 and the rows of a frame ordered by their box.

    The track table's canonical order sorts a frame's rows by track id, so keeping the order would leak
    which box is which track across frames; the box coordinates carry no identity."""
    out = copy_labels(labels)
    out["track_id"] = -1
    out = out.sort_values(["seq", "frame", "x1", "y1", "x2", "y2"], kind="stable").reset_index(drop=True)
    out.attrs = {}
    return out


def copy_detections(detections: pd.DataFrame | None) -> pd.DataFrame:
    """A private copy of public detections (track-table columns only, ``track_id`` -1 whatever the file said)."""
    if detections is None or not len(detections):
        return pd.DataFrame(columns=list(TRACK_COLUMNS)) if detections is None else copy_labels(detections)
    return copy_labels(detections).assign(track_id=-1)


def _read_only(array: np.ndarray) -> np.ndarray:
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view


def split_view(split: Split, frame_rate: float) -> SplitView:
    """The videos of ``split`` without any of its labels (point-track query points, public detections and the
    given video depth are inputs, so they go)."""
    queries = {name: np.array(points.queries, copy=True) for name, points in split.points.items()}
    return SplitView(name=str(split.name), sequences={k: _copy_sequence(s) for k, s in split.sequences.items()},
                     frame_rate=float(frame_rate), queries=queries, detections=copy_detections(split.detections),
                     depth={k: _read_only(d) for k, d in split.depth.items()})


def boxes_2d_only(tracks: pd.DataFrame) -> pd.DataFrame:
    """A private copy of every real box with its 2D columns and identity only: 3D columns NaN, conf 1, no
    occlusion/truncation/visibility (the regime "2D boxes on every frame" hands out 2D annotation only)."""
    from bench.data.tracks import BOX3D_COLUMNS, COLUMN_DEFAULTS, DONTCARE

    out = copy_labels(tracks[(tracks["cls"] != DONTCARE).to_numpy()])
    out.loc[:, list(BOX3D_COLUMNS)] = np.nan
    for column in ("occlusion", "truncation", "visibility", "score"):
        out[column] = COLUMN_DEFAULTS.get(column, 0)
    out["conf"] = 1.0
    out.attrs = {}
    return out


def train_view(split: Split, labels: pd.DataFrame, frame_rate: float, budget: int | None,
               identities: bool = True, boxes_2d: bool = False, points: bool = False,
               seqs_3d: tuple[str, ...] | None = None, masks: Mapping[MaskKey, RowMask] | None = None,
               mask_source: str = "") -> TrainView:
    """The training videos, their public detections and given depth and a private copy of ``labels`` (the
    budget's rows only); with ``identities=False`` (a method declaring ``sees_identities = False``) the labels
    carry no track id; with ``boxes_2d`` (a method declaring ``sees_2d_ground_truth``) also every training box in
    2D only; with ``points=True`` (only for a method declaring ``sees_ground_truth``) private copies of the
    split's point tracks.

    ``seqs_3d`` (the regime "2d-all", a method declaring ``label_regime = "2d-all"``): only these sequences keep
    their 3D boxes; every other row's 3D columns are blanked here, whatever the label table held (the manifest
    already blanked them: this is the second lock).

    ``masks`` (the dataset's instance masks, :func:`bench.data.masks.label_masks`): only those of rows of the
    handed-out labels pass, as fresh read-only copies; none for a method without identities."""
    tracks = {name: PointTracks(np.array(p.xyz, copy=True), np.array(p.visible, copy=True),
                                np.array(p.queries, copy=True)) for name, p in split.points.items()} if points else {}
    copied = copy_labels(labels) if identities else without_identities(labels)
    if seqs_3d is not None:
        copied = blank_3d(copied, seqs_3d)
        seqs_3d = tuple(sorted(str(s) for s in seqs_3d))
    kept = _label_masks(copied, masks) if identities and masks else {}
    return TrainView(masks=kept, mask_source=mask_source if kept else "",
                     tracks_2d=boxes_2d_only(split.tracks) if boxes_2d else pd.DataFrame(columns=list(TRACK_COLUMNS)),
                     name=str(split.name), sequences={k: _copy_sequence(s) for k, s in split.sequences.items()},
                     frame_rate=float(frame_rate), labels=copied, budget=budget,
                     detections=copy_detections(split.detections),
                     depth={k: _read_only(d) for k, d in split.depth.items()}, points=tracks, seqs_3d=seqs_3d)


def _label_masks(labels: pd.DataFrame, masks: Mapping[MaskKey, RowMask]) -> dict[MaskKey, RowMask]:
    """Private copies of the masks of exactly these label rows: a mask of any other frame or track stays behind."""
    out: dict[MaskKey, RowMask] = {}
    for key in zip(labels["seq"].astype(str), labels["frame"].astype(int), labels["track_id"].astype(int), strict=True):
        found = masks.get(key)
        if found is not None:
            out[key] = RowMask(int(found.x0), int(found.y0), _read_only(np.array(found.mask, dtype=bool, copy=True)))
    return out


# ---- filesystem guard -------------------------------------------------------------------------
# The rules are process-wide, so threads a method starts are guarded too (and forked data-loader
# workers inherit them); only the re-entrancy flag is per thread.
_rules: tuple[list[str], list[str]] | None = None
_state = threading.local()
_FS_EVENTS = {"open", "os.listdir", "os.scandir", "os.chdir", "shutil.copyfile", "shutil.copytree",
              "os.rename", "os.remove", "os.symlink", "os.link"}
_hook_installed = False


def _resolve(path: Any) -> str | None:
    if isinstance(path, int):
        return None  # an already-open descriptor: its open was checked
    try:
        return os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in _FS_EVENTS:
        return
    rules = _rules
    if not rules or getattr(_state, "checking", False):
        return
    _state.checking = True  # realpath itself may raise audit events
    try:
        forbidden, allowed = rules
        for arg in args[:2]:
            path = _resolve(arg) if isinstance(arg, (str, bytes, os.PathLike)) else None
            if path is None or any(_inside(path, a) for a in allowed):
                continue
            for root in forbidden:
                if _inside(path, root):
                    raise FirewallError(f"label firewall: a method may not access {path} (under {root}); "
                                        "use the TrainView/SplitView it was given")
    finally:
        _state.checking = False


@contextmanager
def guard(forbidden: Iterable[Path | str], allowed: Iterable[Path | str] = ()) -> Iterator[None]:
    """While active (in this process), file access under ``forbidden`` (but not ``allowed``) raises."""
    global _hook_installed, _rules
    if not _hook_installed:
        sys.addaudithook(_audit)  # audit hooks cannot be removed; it is a no-op outside guard()
        _hook_installed = True
    previous = _rules
    _rules = ([os.path.realpath(p) for p in forbidden if p], [os.path.realpath(p) for p in allowed if p])
    try:
        yield
    finally:
        _rules = previous
