"""``bench eval``: score anyone's prediction files against ground truth with an official protocol.

    bench eval --format kitti --gt data/kitti/training/label_02 --pred results/data
    bench eval --format mot --gt MOT17/train --pred results/ --json scores.json
    bench eval --format nuscenes --gt /data/nuscenes --pred tracking_results.json --split val

Inputs are validated before scoring; a bad file stops with a message naming the file (and line) and
exit code 2. Layouts:

- kitti: ``--gt`` a folder of ``<seq>.txt`` label files (or a folder holding ``label_02/``), ``--pred`` a
  folder of ``<seq>.txt`` results. Sequence lengths come from an ``evaluate_tracking.seqmap*`` file or
  ``image_02/<seq>/`` next to the labels when present (then frames beyond a sequence are an error).
- mot: ``--gt`` a split folder of ``<SEQ>/gt/gt.txt`` + ``seqinfo.ini``, ``--pred`` a folder of ``<SEQ>.txt``.
- nuscenes: ``--gt`` a nuScenes root (v1.0-* tables), ``--pred`` a tracking submission JSON.
- waymo: ``--gt``/``--pred`` v2 ``lidar_box`` parquet files. tapvid3d: folders of ``.npz`` files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import warnings

import click
import numpy as np
import pandas as pd

from bench.data.sequence import DataError
from bench.registry import Registry

DEFAULT_PROTOCOL = {"kitti": "kitti-2d", "mot": "mot17", "nuscenes": "nuscenes", "waymo": "waymo-let",
                    "tapvid3d": "tapvid3d"}


class EvalInputError(DataError):
    """Bad prediction or ground-truth input; the message names the file (and line)."""


# A sequence longer than this is a typo in a seqmap or seqinfo.ini, not a video (KITTI's longest has 1,176).
MAX_FRAMES = 1_000_000


# --------------------------------------------------------------------------------------------------
# Loaders: (gt path, pred path, split) -> (gt, pred, evaluate() keyword arguments)

Loaded = tuple[Any, Any, dict[str, Any]]


def _line_of(path: Path, predicate: Callable[[list[str]], bool]) -> int:
    """1-based number of the first line of ``path`` whose whitespace/comma-split fields satisfy ``predicate``."""
    from bench.data.formats.common import read_text

    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        fields = [f.strip() for f in raw.split(",")] if "," in raw else raw.split()
        if fields and predicate(fields):
            return number
    return 0


def _check_frames(pred: pd.DataFrame, lengths: dict[str, int], files: dict[str, Path], frame_offset: int = 0
                  ) -> None:
    """Predicted frames must lie inside their sequence (``lengths`` in frames)."""
    for seq, n in lengths.items():
        frames = pred.loc[pred["seq"] == seq, "frame"].to_numpy()
        bad = frames[(frames < 0) | (frames >= n)]
        if len(bad):
            frame = int(bad[0])

            def is_bad_line(fields: list[str], wanted: int = frame) -> bool:
                return fields[0].lstrip("-").isdecimal() and int(fields[0]) - frame_offset == wanted

            line = _line_of(files[seq], is_bad_line)
            raise EvalInputError(f"{files[seq]}:{line}: frame {frame + frame_offset} is outside sequence {seq} "
                                 f"({n} frames)")


def _check_files(gt_seqs: list[str], pred_dir: Path, what: str) -> dict[str, Path]:
    if not pred_dir.is_dir():
        raise EvalInputError(f"{pred_dir}: prediction folder not found")
    if not any(pred_dir.glob("*.txt")) and (pred_dir / "data").is_dir():  # TrackEval's <tracker>/data/ layout
        pred_dir = pred_dir / "data"
    found = {p.stem: p for p in sorted(pred_dir.glob("*.txt"))}
    unknown = sorted(set(found) - set(gt_seqs))
    if unknown:
        raise EvalInputError(f"{found[unknown[0]]}: unknown sequence {unknown[0]!r}; the {what} has "
                             f"{', '.join(gt_seqs[:8])}{' ...' if len(gt_seqs) > 8 else ''}")
    missing = [s for s in gt_seqs if s not in found]
    if missing:
        raise EvalInputError(f"{pred_dir}: no prediction file for sequence(s) {', '.join(missing[:8])} "
                             f"(write an empty {missing[0]}.txt for a sequence without predictions)")
    return found


def _kitti_lengths(gt_dir: Path, seqs: list[str]) -> dict[str, int]:
    from bench.data.formats.common import read_text

    for base in (gt_dir, gt_dir.parent):
        for seqmap in sorted(base.glob("evaluate_tracking.seqmap*")):
            lengths = {}
            for number, raw in enumerate(read_text(seqmap, "KITTI seqmap").splitlines(), start=1):
                fields = raw.split()
                if len(fields) >= 4 and fields[3].isdecimal():
                    if int(fields[3]) > MAX_FRAMES:
                        raise EvalInputError(f"{seqmap}:{number}: sequence length {fields[3]}, expected at most "
                                             f"{MAX_FRAMES} frames")
                    lengths[fields[0]] = int(fields[3])
            if set(seqs) <= set(lengths):
                return {s: lengths[s] for s in seqs}
        images = base / "image_02"
        if images.is_dir() and all((images / s).is_dir() for s in seqs):
            return {s: len(list((images / s).glob("*.png"))) for s in seqs}
    return {}


def load_kitti(gt: Path, pred: Path, split: str) -> Loaded:
    from types import SimpleNamespace

    from bench.data.formats.kitti import read_labels
    from bench.data.tracks import concat_tracks

    gt_dir = gt / "label_02" if (gt / "label_02").is_dir() else gt
    gt_files = sorted(gt_dir.glob("*.txt"))
    if not gt_files:
        raise EvalInputError(f"{gt_dir}: no <seq>.txt KITTI label files")
    seqs = [p.stem for p in gt_files]
    pred_files = _check_files(seqs, pred, "ground truth")
    # As the official tools: one track id may be in two classes of a frame (each class is scored alone).
    gt_table = concat_tracks(read_labels(p, p.stem, unique_ids=False) for p in gt_files)
    pred_table = concat_tracks(read_labels(pred_files[s], s, unique_ids=False) for s in seqs)
    lengths = _kitti_lengths(gt_dir, seqs)
    _check_frames(pred_table, lengths, pred_files)
    sequences = {s: SimpleNamespace(frame_ids=np.arange(n)) for s, n in lengths.items()}
    return gt_table, pred_table, {"sequences": sequences or None}


def load_mot(gt: Path, pred: Path, split: str) -> Loaded:
    from types import SimpleNamespace

    from bench.data.formats.mot import read_det, read_gt, read_seqinfo
    from bench.data.tracks import concat_tracks

    seq_dirs = sorted(p.parent.parent for p in gt.glob("*/gt/gt.txt"))
    if not seq_dirs:
        raise EvalInputError(f"{gt}: no <SEQ>/gt/gt.txt MOTChallenge ground truth")
    seqs = [d.name for d in seq_dirs]
    pred_files = _check_files(seqs, pred, "ground truth")
    lengths = {}
    for d in seq_dirs:
        info = d / "seqinfo.ini"
        if info.exists():
            lengths[d.name] = int(read_seqinfo(info)["seqlength"])  # checked: a positive integer
        if (d / "det" / "det.txt").exists():  # a broken public-detections file is refused here as by `bench run`
            read_det(d / "det" / "det.txt", d.name, num_frames=lengths.get(d.name))
    gt_table = concat_tracks(read_gt(d / "gt" / "gt.txt", d.name) for d in seq_dirs)
    pred_table = concat_tracks(read_gt(pred_files[s], s) for s in seqs)
    _check_frames(pred_table, lengths, pred_files, frame_offset=1)
    sequences = {s: SimpleNamespace(frame_ids=np.arange(n)) for s, n in lengths.items()}
    return gt_table, pred_table, {"sequences": sequences or None}


def load_nuscenes(gt: Path, pred: Path, split: str) -> Loaded:
    """GT dataroot (or GT JSON) + submission, read as the devkit does by bench.data.formats.nuscenes_eval.

    Its reader rejects unknown sample tokens, > 500 boxes per sample, non-finite numbers, wrong keys and
    samples missing from the results, naming the file and the JSON place.
    """
    from bench.data.formats.common import read_sidecar
    from bench.data.formats.nuscenes_eval import load_nuscenes_eval

    scenes = None
    if split != "all":
        sidecar = read_sidecar(gt) if gt.is_dir() else None
        if sidecar is None:
            raise EvalInputError(f"{gt / 'bench.json'}: --split {split} needs the scene lists of a bench.json "
                                 f"sidecar; use --split all to evaluate every scene")
        scenes = set(sidecar["splits"][split])
    gt_boxes, pred_boxes = load_nuscenes_eval(gt, pred, scenes=scenes)
    return gt_boxes, pred_boxes, {}


def load_waymo(gt: Path, pred: Path, split: str) -> Loaded:
    from bench.data.formats.waymo_eval import load_waymo_parquet

    gt_objects, pred_objects = load_waymo_parquet(gt, pred)
    return gt_objects, pred_objects, {}


def load_tapvid3d(gt: Path, pred: Path, split: str) -> Loaded:
    from bench.metrics.tapvid3d import load_tapvid3d as load

    if not Path(pred).is_dir():
        raise EvalInputError(f"{pred}: prediction folder not found (tapvid3d takes a folder of <video>.npz)")
    unknown = sorted({p.stem for p in Path(pred).glob("*.npz")} - {p.stem for p in Path(gt).glob("*.npz")})
    if unknown:
        raise EvalInputError(f"{Path(pred) / (unknown[0] + '.npz')}: unknown video {unknown[0]!r}")
    gt_points, pred_points, intrinsics = load(gt, pred)
    missing = sorted(set(gt_points) - set(pred_points))
    if missing:  # as kitti and mot refuse a missing sequence file, rather than score the video 0
        raise EvalInputError(f"{pred}: no prediction file for video(s) {', '.join(missing[:8])} (expected "
                             f"{missing[0]}.npz with tracks_XYZ and visibility)")
    return gt_points, pred_points, {"intrinsics": intrinsics}


# `bench eval --format NAME` -> the loader that reads and checks that format's GT and prediction files.
LOADERS: Registry[Callable[[Path, Path, str], Loaded]] = Registry("eval format", {
    "kitti": load_kitti, "mot": load_mot, "nuscenes": load_nuscenes, "waymo": load_waymo, "tapvid3d": load_tapvid3d,
})


# --------------------------------------------------------------------------------------------------


def run_eval(fmt: str, gt: Path, pred: Path, protocol: str | None = None, split: str = "all") -> Any:
    """Load and validate the files of ``fmt``, then score them; raises on bad input."""
    from bench.metrics.protocols import PROTOCOLS, evaluate

    protocol = protocol or DEFAULT_PROTOCOL[fmt]
    PROTOCOLS.get(protocol)  # an unknown name raises RegistryError (a KeyError) with a did-you-mean hint
    gt_data, pred_data, kwargs = LOADERS.get(fmt)(Path(gt), Path(pred), split)
    return evaluate(protocol, gt_data, pred_data, **kwargs)


def _fmt(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def print_result(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    per_class = result.extras.get("per_class") if isinstance(result.extras, dict) else None
    headline = result.extras.get("headline") if isinstance(result.extras, dict) else None
    table = Table(title=f"bench eval: {result.protocol}" + (f" (value: {headline})" if headline else ""))
    table.add_column("metric")
    table.add_column("value", justify="right")
    if not isinstance(per_class, dict):
        per_class = {}
    classes = list(per_class) if len(per_class) > 1 else []
    for cls in classes:
        table.add_column(str(cls), justify="right")
    for name, value in result.summary.items():
        if "/" in name:  # per-class copies of a metric, shown as columns instead
            continue
        table.add_row(name, _fmt(value), *(_fmt(per_class[c].get(name, float("nan"))) for c in classes))
    console.print(table)


@click.command("eval")
@click.option("--format", "fmt", type=click.Choice(LOADERS.names()), required=True, help="prediction file format")
@click.option("--gt", type=click.Path(exists=True, path_type=Path), required=True, help="ground truth")
@click.option("--pred", type=click.Path(exists=True, path_type=Path), required=True, help="predictions")
@click.option("--protocol", default=None, help="metric protocol (default: the format's official one)")
@click.option("--split", type=click.Choice(["all", "train", "val"]), default="all",
              help="nuscenes: which split of the dataset root is the ground truth")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="also write the MetricResult as JSON here")
def eval_command(fmt: str, gt: Path, pred: Path, protocol: str | None, split: str, json_out: Path | None) -> None:
    """Score prediction files against ground truth and print the metric table."""
    import warnings

    from bench.data.formats.common import DataWarning
    from bench.data.tracks import TrackTableError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            result = run_eval(fmt, gt, pred, protocol, split)
        except (DataError, TrackTableError, FileNotFoundError, KeyError, ValueError) as err:
            _echo_warnings(caught)
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            click.echo(f"error: {message}", err=True)
            raise SystemExit(2) from None
    _echo_warnings(caught)
    print_result(result)
    if json_out is not None:
        _write_json(json_out, result.to_dict())
        click.echo(f"wrote {json_out}")


def _echo_warnings(caught: list[warnings.WarningMessage]) -> None:
    """What the readers skipped or changed (DataWarning: ``file:line: ...``), one line each, at most 20."""
    from bench.data.formats.common import DataWarning

    lines = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    for line in lines[:20]:
        click.echo(f"warning: {line}", err=True)
    if len(lines) > 20:
        click.echo(f"warning: ... and {len(lines) - 20} more", err=True)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write the scores whole or not at all (temp file + rename); a path that cannot be written is exit 2."""
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        click.echo(f"error: {path}: cannot write the scores ({err.strerror or err})", err=True)
        raise SystemExit(2) from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(payload, indent=1))
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        click.echo(f"error: {path}: cannot write the scores ({err.strerror or err})", err=True)
        raise SystemExit(2) from None
