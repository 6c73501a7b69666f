"""`bench data`: make, inspect and look at datasets.

    bench data make synth-kitti --scale quick --seed 0 [--out DIR]
    bench data info synth-kitti --scale quick
    bench data show synth-kitti --seq 0000 --frame 10 -o frame.png
    bench data clip synth-kitti --seq 0000 -o clip.gif

Bad input (unknown dataset, sequence or frame, malformed files) prints the reason and exits with 2.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bench.data.sequence import DataError

SCALES = ("smoke", "quick", "full")


def _bad_input(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn data errors into one line on stderr and exit code 2 (no traceback for a user's mistake)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (DataError, ValueError) as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)

    return wrapper


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--root", type=click.Path(path_type=Path), default=None,
                        help="Real dataset root, or where a synthetic export lives.")(func)
    func = click.option("--seed", type=int, default=0, show_default=True, help="Synthetic world seed.")(func)
    func = click.option("--scale", type=click.Choice(SCALES), default="quick", show_default=True,
                        help="Synthetic dataset size.")(func)
    return click.argument("name")(func)


@click.group()
def data() -> None:
    """Make, inspect and look at datasets (synthetic presets and real KITTI/nuScenes/MOT17/TAPVid-3D/Waymo)."""


@data.command()
@click.argument("name")
@click.option("--scale", type=click.Choice(SCALES), default="quick", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Export folder (default: data/<name>-<scale>-s<seed>, or under $BENCH_DATA_DIR).")
@_bad_input
def make(name: str, scale: str, seed: int, out: Path | None) -> None:
    """Generate a synthetic dataset and export it in its native format."""
    from bench.data.datasets import cache_path, export_hash, make_synthetic
    from bench.data.synth import data_hash

    folder = out or cache_path(name, scale, seed)
    if export_hash(folder) == data_hash(name, scale, seed):
        click.echo(f"{name} ({scale}, seed {seed}) is already at {folder}")
        return
    start = time.perf_counter()
    folder = make_synthetic(name, scale, seed, out=out, progress=True)
    click.echo(f"wrote {name} ({scale}, seed {seed}) to {folder} in {time.perf_counter() - start:.1f} s")


def _load(name: str, scale: str, seed: int, root: Path | None) -> Any:
    from bench.data.datasets import load_dataset

    return load_dataset(name, scale=scale, seed=seed, root=root, progress=True)


@data.command()
@_common
@_bad_input
def info(name: str, scale: str, seed: int, root: Path | None) -> None:
    """Counts, boxes per frame, track lengths, occlusion and look-alikes, beside the real dataset's figures."""
    from rich.console import Console
    from rich.table import Table

    from bench.data.synth import stats

    ds = _load(name, scale, seed, root)
    figures = stats(ds)
    reference = figures.get("reference") or {}
    table = Table(title=f"{ds.name} ({scale}, seed {seed}) - {ds.root}")
    table.add_column("statistic")
    table.add_column("train", justify="right")
    table.add_column("val", justify="right")
    table.add_column(f"{reference.get('name', 'real dataset')} (published)", justify="right")
    ref_of = {"sequences": reference.get("train_sequences"), "frames": reference.get("train_frames")}
    for key, value in figures["train"].items():
        other = figures["val"].get(key, "")
        table.add_row(key, _fmt(value), _fmt(other), _fmt(ref_of.get(key, "")))
    table.add_row("frame_rate (Hz)", _fmt(ds.frame_rate), "", _fmt(reference.get("frame_rate", "")))
    table.add_row("image_size", _fmt(figures.get("image_size")), "", _fmt(reference.get("image_size", "")))
    size = figures.get("image_size")
    if reference.get("image_rows") and isinstance(size, list | tuple) and len(size) == 2:
        # Objects are as tall, relative to the image, as in the real data: in pixels they scale with the rows.
        rows = int(size[1])
        table.add_row("object pixels vs the real images", _fmt(round(rows / float(reference["image_rows"]), 3)),
                      "", "1")
        if reference.get("centertrack_input_rows"):
            table.add_row("... vs CenterTrack's input there",
                          _fmt(round(rows / float(reference["centertrack_input_rows"]), 3)), "",
                          f"1 ({reference['centertrack_input_rows']} rows)")
    if "pixel_depth_p50_p95" in figures:
        table.add_row("pixel depth p50/p95 (m)", _fmt(figures["pixel_depth_p50_p95"]), "", "")
    Console(width=160).print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}:{_fmt(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        return "x".join(_fmt(v) for v in value) if all(isinstance(v, int) for v in value) else \
            "/".join(_fmt(v) for v in value)
    return "" if value is None else str(value)


def _find(ds: Any, seq: str, split: str | None) -> tuple[Any, Any]:
    for part in (ds.train, ds.val):
        if (split is None or part.name == split) and seq in part.sequences:
            return part.sequences[seq], part.tracks_of(seq)
    names = sorted(set(ds.train.sequences) | set(ds.val.sequences))
    raise DataError(f"dataset {ds.name}: no sequence {seq!r}; sequences are {', '.join(names[:20])}"
                    + (" ..." if len(names) > 20 else ""))


@data.command()
@_common
@click.option("--seq", "seq_name", required=True, help="Sequence name (see `bench data info`).")
@click.option("--frame", type=int, required=True, help="Frame id.")
@click.option("--split", type=click.Choice(["train", "val"]), default=None)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="PNG to write.")
@click.option("--zoom", type=int, default=2, show_default=True, help="Enlarge small frames so boxes stay legible.")
@_bad_input
def show(name: str, scale: str, seed: int, root: Path | None, seq_name: str, frame: int, split: str | None,
         output: Path, zoom: int) -> None:
    """Draw one frame with its projected 3D boxes, 2D boxes and track ids."""
    from bench.data.viz import draw_frame, save_png

    ds = _load(name, scale, seed, root)
    seq, tracks = _find(ds, seq_name, split)
    index = seq.index_of(frame)
    save_png(draw_frame(seq, tracks, index, scale=zoom), output)
    click.echo(f"wrote {output}")


@data.command()
@_common
@click.option("--seq", "seq_name", required=True)
@click.option("--split", type=click.Choice(["train", "val"]), default=None)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="GIF (or MP4) to write.")
@click.option("--fps", type=float, default=None, help="Frames per second (default: the dataset's rate).")
@_bad_input
def clip(name: str, scale: str, seed: int, root: Path | None, seq_name: str, split: str | None, output: Path,
         fps: float | None) -> None:
    """Write a sequence with its boxes as an animated GIF (MP4 if the name ends in .mp4)."""
    from bench.data.viz import save_clip

    ds = _load(name, scale, seed, root)
    seq, tracks = _find(ds, seq_name, split)
    save_clip(seq, tracks, output, fps=fps or ds.frame_rate)
    click.echo(f"wrote {output}")
