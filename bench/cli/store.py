"""`bench store`: move finished results between a local store and a committed results file.

    bench store export -o leaderboards/results/bounds.json [--method sparse --method oracle] [--dataset D]
    bench store import leaderboards/results/bounds.json [--replace]

Exports hold metrics, manifests and configs, never predictions (see bench/results_file.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bench.data.sequence import DataError

STORE_HELP = "results database (default: $BENCH_RUNS_DIR/bench.sqlite, else runs/bench.sqlite)"


@click.group("store")
def store() -> None:
    """Export finished runs to a small results file, or import one into the local store."""


@store.command("export")
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="results file to write (JSON)")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=STORE_HELP)
@click.option("--method", "methods", multiple=True, help="only these methods (repeatable)")
@click.option("--dataset", "datasets", multiple=True, help="only these datasets (repeatable)")
@click.option("--profile", "profiles", multiple=True, help="only these profiles (repeatable)")
@click.option("--per-sequence", is_flag=True, help="also every per-sequence metric (larger file)")
def export_command(out: Path, store_path: Path | None, methods: tuple[str, ...], datasets: tuple[str, ...],
                   profiles: tuple[str, ...], per_sequence: bool) -> None:
    """Write the store's finished runs (metrics, manifests, configs; no predictions) to OUT."""
    from bench.results_file import export_results
    from bench.store import Store, default_store_path

    path = store_path or default_store_path()
    if not path.is_file():
        click.echo(f"error: no results store at {path} (run something first, or pass --store)", err=True)
        sys.exit(2)
    count = export_results(Store(path, readonly=True), out, methods=methods, datasets=datasets, profiles=profiles,
                           per_sequence=per_sequence)
    if count == 0:
        click.echo(f"nothing to export: no finished run in {path} matches", err=True)
        sys.exit(3)
    click.echo(f"wrote {count} runs to {out}")


@store.command("import")
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=STORE_HELP)
@click.option("--replace", is_flag=True, help="replace local runs that have the same key")
def import_command(results: Path, store_path: Path | None, replace: bool) -> None:
    """Add the runs of a results file to the local store (local runs with the same key are kept)."""
    from bench.results_file import import_results
    from bench.store import Store, default_store_path

    try:
        from bench.results_file import read_results

        read_results(results)  # validate before the store is created or touched
        imported, kept = import_results(results, Store(store_path or default_store_path()), replace=replace)
    except DataError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    click.echo(f"imported {imported} runs from {results}" + (f"; kept {kept} local runs with the same key" if kept
                                                             else ""))
