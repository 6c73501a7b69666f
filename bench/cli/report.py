"""``bench report``, ``bench table`` and ``bench check``: everything that reads the results store only."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import pandas as pd

    from bench.check import Outcome

STORE_HELP = "results database (default: $BENCH_RUNS_DIR/bench.sqlite, else runs/bench.sqlite)"


class NothingToDo(click.ClickException):
    """Exit 3: there is nothing to read (no store, no finished run that matches)."""

    exit_code = 3


class BadInput(click.ClickException):
    exit_code = 2


def _open_frames(store_path: Path | None) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """(runs, metrics) frames of an existing store, read-only: these commands never create, migrate or
    write a store (it may sit in a read-only folder)."""
    from bench.store import Store, StoreError, default_store_path

    path = Path(store_path) if store_path is not None else default_store_path()
    if not path.exists():
        raise NothingToDo(f"no results store at {path}; run `bench run` first or pass --store")
    try:
        store = Store(path, readonly=True)
        return store.runs_frame(), store.metrics_frame(), path
    except (StoreError, OSError) as error:
        raise BadInput(str(error)) from None
    except sqlite3.DatabaseError as error:  # not a database, or corrupt
        raise BadInput(f"{path}: not a readable results store ({error})") from None


def _default_store_exists() -> bool:
    from bench.store import default_store_path

    return default_store_path().exists()


def pd_empty_frames() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame()


@click.command("report")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
              show_default=True, help="folder for the HTML site")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=STORE_HELP)
@click.option("--schema", "schema_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="metric schema (default: leaderboards/metrics.yaml)")
@click.option("--published", "published_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="folder of published-number files (default: leaderboards/published)")
@click.option("--include", "includes", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="a results file (bench store export) to show beside the local runs; repeatable")
def report(out_dir: Path, store_path: Path | None, schema_path: Path | None, published_dir: Path | None,
           includes: tuple[Path, ...]) -> None:
    """Write the HTML leaderboards (offline, self-contained) from the results store."""
    from bench.data.sequence import DataError
    from bench.ownership import OwnershipError
    from bench.report.html import render_report
    from bench.report.published import load_published
    from bench.report.schema import MetricSchema
    from bench.results_file import frames_with_included

    if includes and store_path is None and not _default_store_exists():
        runs, metrics, path = pd_empty_frames(), pd_empty_frames(), Path(", ".join(map(str, includes)))
    else:
        runs, metrics, path = _open_frames(store_path)
    try:
        runs, metrics = frames_with_included(runs, metrics, includes)
    except DataError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    try:
        schema = MetricSchema.load(schema_path)
        published = load_published(published_dir)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    try:
        result = render_report(runs, metrics, out_dir, schema=schema, published=published, source=str(path))
    except OwnershipError as error:  # -o names a folder bench did not make: refused, nothing written
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    click.echo(f"wrote {result.pages} pages for {len(runs)} runs in {result.seconds:.1f} s: {result.index}")


@click.command("table")
@click.option("--format", "fmt", type=click.Choice(["csv", "md", "latex"]), default="md", show_default=True)
@click.option("--dataset", default=None, help="only this dataset")
@click.option("--protocol", default=None, help="only this protocol")
@click.option("--metric", default=None, help="only this metric")
@click.option("--split", default=None, help="only this split")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write to a file instead of stdout")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=STORE_HELP)
@click.option("--spec", default=None,
              help="instead: a paper-style table from leaderboards/tables (name or YAML path), as Markdown")
@click.option("--compare", nargs=2, default=None, metavar="A B",
              help="instead: the paired difference A - B over shared seeds with a 95 % interval (headline metrics)")
@click.option("--ablations", is_flag=True,
              help="instead: the papers' ablation tables (Sparse3DTrack Tables 3-5), paper beside ours, claim by claim")
@click.option("--include", "includes", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="a results file (bench store export) to tabulate beside the local runs; repeatable")
def table(fmt: str, dataset: str | None, protocol: str | None, metric: str | None, split: str | None,
          output: Path | None, store_path: Path | None, spec: str | None,
          compare: tuple[str, str] | None = None, ablations: bool = False, includes: tuple[Path, ...] = ()) -> None:
    """Export the leaderboard tables as CSV, Markdown or LaTeX (booktabs)."""
    from bench.report.schema import MetricSchema
    from bench.report.tables import FORMATS, build_leaderboards, summarize

    metrics = _frames_with_includes(store_path, includes)
    if ablations:
        _emit(_ablation_tables(metrics), output)
        return
    if compare is not None:
        from bench.report.compare import CompareError, compare_methods
        try:
            text = compare_methods(summarize(metrics), *compare, dataset=dataset, protocol=protocol, metric=metric,
                                   split=split)
        except CompareError as error:  # no runs, or no shared seeds: bad input, one line, exit 2
            click.echo(f"error: {error}", err=True)
            sys.exit(2)
        click.echo(text, nl=False)
        return
    if spec is not None:
        text = _spec_table(spec, summarize(metrics))
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_text(text)
        return
    boards = build_leaderboards(summarize(metrics), MetricSchema.load(), dataset=dataset, protocol=protocol,
                                metric=metric, split=split)
    if not boards:
        raise NothingToDo("no finished runs match; nothing to tabulate")
    text = FORMATS[fmt](boards)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {len(boards)} table(s) to {output}", err=True)


def _frames_with_includes(store_path: Path | None, includes: tuple[Path, ...]) -> pd.DataFrame:
    """The metrics of the store and of any included results files (no store needed when files are given)."""
    from bench.data.sequence import DataError
    from bench.results_file import frames_with_included

    if includes and store_path is None and not _default_store_exists():
        runs, metrics = pd_empty_frames(), pd_empty_frames()
    else:
        runs, metrics, _ = _open_frames(store_path)
    try:
        return frames_with_included(runs, metrics, includes)[1]
    except DataError as error:
        raise BadInput(str(error)) from None


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)


def _ablation_tables(metrics: pd.DataFrame) -> str:
    from bench.report.ablations import ablations_markdown
    from bench.report.html import ablation_view
    from bench.report.published import load_published, paper_comparison
    from bench.report.schema import MetricSchema
    from bench.report.tables import summarize

    schema = MetricSchema.load()
    groups = ablation_view(paper_comparison(load_published(), summarize(metrics), schema), schema)
    if not any(r["seeds"] for g in groups for t in g["tables"] for r in t["rows"]):
        raise NothingToDo("no stored run of an ablation variant (bench sweep sparse3dtrack_ablations makes them)")
    return ablations_markdown(groups)


def _spec_table(spec: str, summary: Any) -> str:
    from bench.report.specs import TABLES_DIR, fill_table, load_table_spec, spec_markdown

    path = Path(spec) if spec.endswith((".yaml", ".yml")) else TABLES_DIR / f"{spec}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in TABLES_DIR.glob("*.yaml"))
        raise click.ClickException(f"no table spec {spec!r} (known: {', '.join(known) or 'none'})")
    try:
        return spec_markdown(fill_table(load_table_spec(path), summary))
    except ValueError as error:
        raise click.ClickException(str(error)) from None


@click.command("check")
@click.option("--expected", "expected_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="expected values with tolerances (leaderboards/expected/<name>.yaml)")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=STORE_HELP)
@click.option("--write-expected", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="instead of checking, write an expected file from the store (value = seed mean)")
@click.option("--k", "k_std", type=float, default=3.0, show_default=True,
              help="with --write-expected: tolerance = k x seed std ...")
@click.option("--min-tolerance", type=float, default=0.01, show_default=True,
              help="... but at least this (store units)")
@click.option("--dataset", default=None, help="only this dataset's cells (checking or writing)")
@click.option("--protocol", default=None, help="with --write-expected: only this protocol")
@click.option("--metric", "metric_names", multiple=True, help="with --write-expected: only these metrics")
@click.option("--method", "method_names", multiple=True, help="only these methods' cells (checking or writing)")
@click.option("--split", default=None, help="with --write-expected: only this split (e.g. val)")
def check_command(expected_path: Path | None, store_path: Path | None, write_expected: Path | None, k_std: float,
                  min_tolerance: float, dataset: str | None, protocol: str | None,
                  metric_names: tuple[str, ...], method_names: tuple[str, ...], split: str | None) -> None:
    """Regression gate: exit 0 ok, 1 regression, 2 failed runs, 3 nothing ran."""
    import yaml

    from bench.check import EXIT_NOTHING_RAN, check, expected_from_store, load_expected

    if write_expected is not None:
        runs, metrics, _ = _open_frames(store_path)
        doc = expected_from_store(runs, metrics, k=k_std, min_tolerance=min_tolerance, dataset=dataset,
                                  protocol=protocol, metrics_only=list(metric_names) or None,
                                  methods=list(method_names) or None, split=split)
        write_expected.parent.mkdir(parents=True, exist_ok=True)
        header = (f"# Written by `bench check --write-expected` from {store_path or 'the default store'}:\n"
                  f"# value = seed mean, tolerance = max({k_std:g} x seed std, {min_tolerance:g}) (store units).\n"
                  "# Format and semantics: leaderboards/README.md. Re-generate after an intended change in results.\n")
        doc["name"] = write_expected.stem
        write_expected.write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        click.echo(f"wrote {len(doc['expected'])} expected values to {write_expected}")
        return
    if expected_path is None:
        raise click.UsageError("pass --expected FILE (or --write-expected FILE to create one)")
    try:
        expectations = load_expected(expected_path)
    except ValueError as error:
        # Bad input exits 2 (DESIGN.md), never 1: a broken expected file must not read as a regression.
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    # A part of an expected file: e.g. the synth-kitti cells of a preset whose synth-nuscenes cells were not run.
    expectations = [e for e in expectations if (dataset is None or e.dataset == dataset)
                    and (not method_names or e.method in method_names)]
    if not expectations:
        click.echo(f"Error: no expected cell of {expected_path} is for dataset {dataset} / methods "
                   f"{', '.join(method_names) or 'any'}", err=True)
        sys.exit(2)
    try:
        runs, metrics, _ = _open_frames(store_path)
    except NothingToDo as error:
        click.echo(f"nothing ran: {error.message}", err=True)
        sys.exit(EXIT_NOTHING_RAN)
    outcomes, code = check(expectations, runs, metrics)
    _print_outcomes(outcomes, code, expected_path)
    sys.exit(code)


_STYLE = {"ok": "green", "improved": "cyan", "regression": "bold red", "failed": "bold red", "missing": "yellow",
          "ambiguous": "yellow"}
_VERDICT = {0: "ok", 1: "REGRESSION", 2: "FAILED RUNS", 3: "NOTHING RAN"}


def _print_outcomes(outcomes: list[Outcome], code: int, path: Path) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from bench.report.schema import MetricSchema, signed

    schema = MetricSchema.load()
    grid = Table(title=f"bench check: {escape(str(path))}")
    for name in ("cell", "protocol / split", "metric", "expected", "ours (n seeds)", "Δ", "status"):
        grid.add_column(name, justify="right" if name in ("expected", "ours (n seeds)", "Δ") else "left")
    for o in outcomes:
        e = o.expectation
        info = schema.info(e.metric, o.protocol or e.protocol)
        ours = "" if o.n_ok == 0 else f"{info.format(o.mean, o.std)} ({o.n_ok})"
        delta = "" if o.n_ok == 0 else signed(info.shown(o.mean - e.value), info.decimals)
        status = o.status + (f", {o.n_failed} failed" if o.n_failed and o.status != "failed" else "")
        status += f" ({o.n_failed} failed)" if o.status == "failed" else ""
        where = f"{o.protocol or e.protocol or '*'} / {o.split or e.split or '*'}"
        grid.add_row(escape(e.label()), escape(where), escape(info.header),
                     f"{info.format(e.value)} ± {info.shown(e.tolerance):.{info.decimals}f}", ours, delta,
                     f"[{_STYLE[o.status]}]{escape(status)}[/]")
    console = Console()
    if not console.is_terminal:  # CI logs and pipes: do not wrap the table at rich's default 80 columns
        console = Console(width=200)
    console.print(grid)
    for o in outcomes:
        if o.status == "ambiguous":
            console.print(f"[yellow]{escape(o.detail)}[/]")
    console.print(f"[{'green' if code == 0 else 'bold red'}]{_VERDICT[code]}[/] (exit {code})")
