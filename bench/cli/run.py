"""``bench run``, ``bench sweep``, ``bench rescore`` and ``bench ls``: thin layers over bench.runner."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from bench import registry
from bench.config import DEFAULT_PROFILE, ConfigError, profile_names
from bench.data.sequence import DataError
from bench.registry import RegistryError
from bench.runner import EXIT_FAILED, EXIT_NOTHING, EXIT_OK, Job, SweepOptions, expand_grid, load_sweep, run_sweep
from bench.store import Store, default_store_path, runs_dir

RUNS_HELP = "runs folder (default: $BENCH_RUNS_DIR or ./runs)"
STORE_HELP = "results database (default: <runs folder>/bench.sqlite)"


def _csv(kind: type, text: str | None) -> list:
    if not text:
        return []
    items = [t.strip() for t in text.split(",") if t.strip()]
    if kind is int:
        return [None if t in ("all", "none", "full") else int(t) for t in items]
    return items


def _options(runs_dir_opt: Path | None, store_opt: Path | None, **kw) -> SweepOptions:
    root = runs_dir(runs_dir_opt)
    return SweepOptions(runs_root=root, store_path=store_opt or default_store_path(root), **kw)


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_NOTHING)


def _metric_table(store: Store, key: str) -> Table:
    frame = store.metrics_frame()
    frame = frame[(frame["run_key"] == key) & (frame["seq"] == "")]
    table = Table(title="metrics (overall)")
    for column in ("split", "protocol", "metric", "value"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for row in frame.to_dict("records"):
        table.add_row(str(row["split"]), str(row["protocol"]), str(row["metric"]), f"{row['value']:.4g}")
    return table


common_run_options = [
    click.option("--profile", default=DEFAULT_PROFILE, show_default=True,
                 help=f"config profile: {', '.join(profile_names())} (or a YAML path)"),
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                 help="override a resolved config value, e.g. --set method.conf_halflife=3 (repeatable)"),
    click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N]"),
    click.option("--force", is_flag=True, help="redo every stage even if finished"),
    click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help=RUNS_HELP),
    click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help=STORE_HELP),
]


def with_options(options):
    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


@click.command("run")
@click.option("--method", required=True, help="registered method name (bench ls methods)")
@click.option("--base", default=None, help="base tracker trained on a labeler's pseudolabels (default: the "
              "labeler's default base, if it has one; 'none': no base tracker)")
@click.option("--dataset", default="synth-kitti", show_default=True)
@click.option("--budget", default="4", show_default=True, help="labels per track (or 'all')")
@click.option("--seed", type=int, default=0, show_default=True)
@with_options(common_run_options)
def run(method: str, base: str | None, dataset: str, budget: str, seed: int, profile: str, overrides: tuple[str, ...],
        device: str, force: bool, runs_dir: Path | None, store_path: Path | None) -> None:
    """Run one method at one label budget; print its metrics and where its files are."""
    console = Console()
    job = Job(method=method, base=base, dataset=dataset, budget=_csv(int, budget)[0], seed=seed, profile=profile,
              overrides=tuple(overrides))
    options = _options(runs_dir, store_path, device=device, force=force, progress=False)
    try:
        result = run_sweep([job], options, Console(stderr=True))
    except (RegistryError, ConfigError, DataError) as err:
        _fail(str(err))
    planned = result.planned[0]
    store = Store(options.store())
    record = store.run(planned.key)
    if record is None:
        _fail(f"run {planned.key[:12]} left no record in {options.store()}")
    if record.status != "ok":
        console.print(f"[red]run failed[/red]:\n{record.error}")
    else:
        console.print(_metric_table(store, planned.key))
        wall = f"{record.wall_s:.1f} s" if record.wall_s is not None else "-"
        console.print(f"status {record.status} ({'cached' if planned.action == 'skip' else 'ran'}), wall {wall}, "
                      f"peak memory {record.peak_mem_mb or 0:.0f} MB, device {record.device}")
    console.print(f"run folder: {planned.run_dir}")
    console.print(f"results: {options.store()}; HTML report: `bench report --store {options.store()}` "
                  "-> reports/index.html")
    sys.exit(EXIT_OK if record.status == "ok" else EXIT_FAILED)


@click.command("sweep")
@click.argument("preset", required=False)
@click.option("--methods", default=None, help="comma-separated method names")
@click.option("--base", default=None, help="base tracker for every labeler in the sweep (default: the preset's "
              "base, else each labeler's default base; 'none': no base tracker)")
@click.option("--variants", "variant_names", default=None,
              help="comma-separated variant names: only these of the preset's variants")
@click.option("--budgets", default=None, help="comma-separated label budgets, e.g. 1,2,4")
@click.option("--datasets", default=None, help="comma-separated datasets")
@click.option("--seeds", default=None, help="comma-separated seeds")
@click.option("--jobs", type=int, default=0, show_default=True,
              help="parallel workers; 0: one per GPU when there are GPUs, else one in-process run at a time")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (default: a local Ray instance)")
@click.option("--dry-run", is_flag=True, help="print the grid and what would be skipped; run nothing")
@click.option("--rerun-failed", is_flag=True, help="also retry cells that failed before")
@with_options(common_run_options)
def sweep(preset: str | None, methods: str | None, base: str | None, variant_names: str | None,
          budgets: str | None, datasets: str | None, seeds: str | None, jobs: int, executor: str,
          address: str | None, dry_run: bool, rerun_failed: bool,
          profile: str, overrides: tuple[str, ...], device: str, force: bool, runs_dir: Path | None,
          store_path: Path | None) -> None:
    """Run methods x budgets x datasets x seeds, skipping finished cells (a PRESET from bench/sweeps/ or flags).

    Exit code 0: everything ran or was already finished; 2: some run failed; 3: nothing to run.
    """
    grid: dict = {}
    try:
        if preset:
            grid = load_sweep(preset)
    except ConfigError as err:
        _fail(str(err))
    method_list = _csv(str, methods) or grid.get("methods", [])
    if not method_list:
        _fail("nothing to sweep: give a PRESET or --methods")
    profile = grid.get("profile", profile) if profile == DEFAULT_PROFILE else profile
    variants = grid.get("variants")
    if variant_names:
        wanted = _csv(str, variant_names)
        unknown = [v for v in wanted if v not in (variants or {})]
        if unknown:
            _fail(f"unknown variant(s) {', '.join(unknown)}; the preset has: {', '.join(variants or {}) or 'none'}")
        variants = {name: (variants or {})[name] for name in wanted}
    job_list = expand_grid(
        methods=method_list,
        budgets=_csv(int, budgets) or grid.get("budgets", [4]),
        datasets=_csv(str, datasets) or grid.get("datasets", ["synth-kitti"]),
        seeds=_csv(int, seeds) or grid.get("seeds", [0]),
        profile=profile, base=base or grid.get("base"), overrides=tuple(grid.get("overrides", [])) + overrides,
        variants=variants,
    )
    options = _options(runs_dir, store_path, jobs=jobs, executor=executor, address=address, device=device,
                       force=force, rerun_failed=rerun_failed, dry_run=dry_run)
    console = Console(stderr=True)
    try:
        result = run_sweep(job_list, options, console)
    except (RegistryError, ConfigError, DataError) as err:
        _fail(str(err))
    ran = len(result.planned) - len(result.skipped)
    console.print(f"{len(result.planned)} cells: {ran} {'to run' if dry_run else 'ran'}, {len(result.skipped)} skipped"
                  + ("" if dry_run else f", {sum(r.status != 'ok' for r in result.records)} failed"))
    sys.exit(result.exit_code)


@click.command("rescore")
@click.option("--method", default=None, help="only runs of this method")
@click.option("--dataset", default=None, help="only runs on this dataset")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help=RUNS_HELP)
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=STORE_HELP)
def rescore(method: str | None, dataset: str | None, runs_dir: Path | None, store_path: Path | None) -> None:
    """Recompute metrics from stored pseudolabels/predictions (after a metric fix); no method code runs."""
    from bench.runner.execute import rescore as rescore_run
    from bench.runner.jobs import NO_BASE, plan_job

    options = _options(runs_dir, store_path)
    store = Store(options.store())
    runs = store.runs_frame()
    if method:
        runs = runs[runs["method"] == method]
    if dataset:
        runs = runs[runs["dataset"] == dataset]
    done = 0
    for row in runs.to_dict("records"):
        budget = None if pd.isna(row["budget"]) else int(row["budget"])
        record = store.run(str(row["key"]))
        overrides = _config_overrides(record.config) if record else ()
        # A run stored without a base had none: say so, or a labeler's default base would be planned instead.
        job = Job(method=str(row["method"]), base=NO_BASE if row["base"] is None else str(row["base"]),
                  dataset=str(row["dataset"]), budget=budget, seed=int(row["seed"]), profile=str(row["profile"]),
                  overrides=overrides, variant=str(row.get("variant") or ""))
        try:
            planned = plan_job(job, options.runs_root)
        except (RegistryError, ConfigError, DataError) as err:
            click.echo(f"skip {str(row['key'])[:12]}: {err}", err=True)
            continue
        planned.key, planned.run_dir = str(row["key"]), Path(str(row["run_dir"]))  # score exactly the stored artifacts
        if rescore_run(planned, options.store()) is not None:
            done += 1
    click.echo(f"rescored {done} of {len(runs)} runs")
    sys.exit(EXIT_OK if done else EXIT_NOTHING)


def _config_overrides(config: dict) -> tuple[str, ...]:
    """The stored config as overrides, so a rescore uses the run's own eval settings."""
    import json

    return tuple(f"{section}={json.dumps(config[section])}" for section in ("data", "eval", "method", "base")
                 if section in config and config[section] is not None)


@click.command("ls")
@click.argument("what", type=click.Choice(["methods", "datasets", "protocols", "runs", "profiles", "sweeps"]))
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help=RUNS_HELP)
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=STORE_HELP)
def ls(what: str, runs_dir: Path | None, store_path: Path | None) -> None:
    """List registered methods, datasets, protocols, profiles, sweep presets, or stored runs."""
    console = Console()
    if what == "methods":
        table = Table("method", "kind", "outputs", "class")
        from bench.interface import kind_of

        for name in registry.method_names():
            target = registry.method_target(name)
            try:
                cls = registry.get_method(name)
                table.add_row(name, kind_of(cls), str(getattr(cls, "outputs", "")), target)
            except RegistryError as err:
                table.add_row(name, "[red]broken[/red]", "", str(err))
        console.print(table)
    elif what == "datasets":
        for name in registry.dataset_names():
            console.print(name)
    elif what == "protocols":
        for name in registry.protocol_names():
            console.print(name)
    elif what == "profiles":
        for name in profile_names():
            console.print(name)
    elif what == "sweeps":
        from bench.runner.jobs import SWEEPS_DIR

        for path in sorted(SWEEPS_DIR.glob("*.yaml")):
            console.print(path.stem)
    else:
        path = store_path or default_store_path(runs_dir)
        frame = Store(path).runs_frame()
        table = Table("key", "dataset", "method", "variant", "budget", "seed", "profile", "status", "wall s",
                      title=str(path))
        for r in frame.to_dict("records"):
            name = r["method"] if r["base"] is None else f"{r['method']}+{r['base']}"
            wall = "" if pd.isna(r["wall_s"]) else f"{r['wall_s']:.1f}"
            table.add_row(str(r["key"])[:12], str(r["dataset"]), str(name), str(r["variant"] or ""), str(r["budget"]),
                          str(r["seed"]), str(r["profile"]), str(r["status"]), wall)
        console.print(table)
