"""``bench run``, ``bench sweep``, ``bench rescore`` and ``bench ls``: thin layers over bench.runner."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench import registry
from bench.config import DEFAULT_PROFILE, ConfigError, profile_names
from bench.data.sequence import DataError
from bench.ownership import OwnershipError
from bench.registry import RegistryError
from bench.runner import EXIT_FAILED, EXIT_NOTHING, EXIT_OK, Job, SweepOptions, expand_grid, load_sweep, run_sweep
from bench.store import Store, StoreError, default_store_path, runs_dir

EXIT_BAD_INPUT = 2  # bad input exits 2 like failed runs; 3 is only "nothing to do" (bench --help lists them)
# Everything a user can get wrong before a run starts: one line and exit 2, never a traceback.
BAD_INPUT = (RegistryError, ConfigError, DataError, StoreError, OwnershipError)

RUNS_HELP = "runs folder (default: $BENCH_RUNS_DIR or ./runs)"
STORE_HELP = "results database (default: <runs folder>/bench.sqlite)"


def _csv(kind: type, text: str | None) -> list:
    if not text:
        return []
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_budget(text: str, option: str = "--budget") -> int | None:
    """A label budget: an integer >= 1, or all/none/full (every label: the oracle's) in any case; or a share
    ``P%`` (0..100) of sequences with 3D boxes, for methods in the label regime 2d-all (ba2det)."""
    word = str(text).strip()
    if word.lower() in ("all", "none", "full"):
        return None
    if word.endswith("%"):
        try:
            share = int(word[:-1])
        except ValueError:
            raise ConfigError(f"{option} {text!r}: expected a whole percentage, e.g. 0% or 10%") from None
        if not 0 <= share <= 100:
            raise ConfigError(f"{option} {text!r}: a share of sequences with 3D boxes is 0% .. 100%")
        return share
    try:
        value = int(word)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a whole number of labels per track (>= 1) or 'all'") from None
    if value < 1:
        raise ConfigError(f"{option} {text!r}: a label budget is at least 1 label per track (or 'all')")
    return value


def parse_seed(text: str, option: str = "--seed") -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a whole number >= 0") from None
    if value < 0:
        raise ConfigError(f"{option} {text!r}: seeds are whole numbers >= 0")
    return value


def _options(runs_dir_opt: Path | None, store_opt: Path | None, **kw) -> SweepOptions:
    root = runs_dir(runs_dir_opt)
    return SweepOptions(runs_root=root, store_path=store_opt or default_store_path(root), **kw)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


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
@click.option("--budget", default="4", show_default=True,
              help="labels per track (or 'all'); for the 2d-all regime (ba2det) the share of sequences with 3D "
              "boxes, e.g. 0% or 10%")
@click.option("--seed", default="0", show_default=True, help="training seed (a whole number >= 0)")
@click.option("--verbose", is_flag=True, help="print every metric, not the summary beside sparse and oracle")
@with_options(common_run_options)
def run(method: str, base: str | None, dataset: str, budget: str, seed: str, profile: str, overrides: tuple[str, ...],
        device: str, force: bool, runs_dir: Path | None, store_path: Path | None, verbose: bool = False) -> None:
    """Run one method at one label budget; print its metrics and where its files are."""
    from bench.cli.summary import summary_table

    console = Console()
    # Progress bars (stage, bar, ETA) on a terminal only: logs and pipes get the summary alone.
    options = _options(runs_dir, store_path, device=device, force=force, progress=sys.stdout.isatty())
    try:
        job = Job(method=method, base=base, dataset=dataset, budget=parse_budget(budget), seed=parse_seed(seed),
                  profile=profile, overrides=tuple(overrides))
        result = run_sweep([job], options, Console(stderr=True))
    except BAD_INPUT as err:
        _fail(str(err))
    planned = result.planned[0]
    store = Store(options.store(), readonly=True)
    record = store.run(planned.key)
    if record is None:
        _fail(f"run {planned.key[:12]} left no record in {options.store()}")
    if record.status != "ok":
        console.print(f"[red]run failed[/red]:\n{escape(record.error or '')}")
    else:
        console.print(summary_table(store, planned.key, verbose=verbose))
        wall = f"{record.wall_s:.1f} s" if record.wall_s is not None else "-"
        console.print(f"status {record.status} ({'cached' if planned.action == 'skip' else 'ran'}), wall {wall}, "
                      f"peak memory {record.peak_mem_mb or 0:.0f} MB, device {record.device}")
    console.print(f"run folder: {escape(str(planned.run_dir))}")
    console.print(escape(f"results: {options.store()}; HTML report: `bench report --store {options.store()}` "
                         "-> reports/index.html"))
    sys.exit(EXIT_OK if record.status == "ok" else EXIT_FAILED)


@click.command("sweep")
@click.argument("preset", required=False)
@click.option("--methods", default=None, help="comma-separated method names")
@click.option("--base", default=None, help="base tracker for every labeler in the sweep (default: the preset's "
              "base or bases, else each labeler's default base; 'none': no base tracker)")
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

    Exit code 0: everything ran or was already finished; 2: bad input or some run failed; 3: nothing to run.
    """
    try:
        _sweep(preset, methods, base, variant_names, budgets, datasets, seeds, jobs, executor, address, dry_run,
               rerun_failed, profile, overrides, device, force, runs_dir, store_path)
    except BAD_INPUT as err:
        _fail(str(err))


def _sweep(preset: str | None, methods: str | None, base: str | None, variant_names: str | None,
           budgets: str | None, datasets: str | None, seeds: str | None, jobs: int, executor: str,
           address: str | None, dry_run: bool, rerun_failed: bool,
           profile: str, overrides: tuple[str, ...], device: str, force: bool, runs_dir: Path | None,
           store_path: Path | None) -> NoReturn:
    grid: dict = load_sweep(preset) if preset else {}
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
    budget_list = [parse_budget(b, "--budgets") for b in _csv(str, budgets) or grid.get("budgets", [4])]
    seed_list = [parse_seed(s, "--seeds") for s in _csv(str, seeds) or grid.get("seeds", [0])]
    if jobs < 0:
        raise ConfigError(f"--jobs {jobs}: expected 0 (automatic) or a number of workers")
    base_list: list[str | None] = [base] if base else [str(b) for b in grid["bases"]] if grid.get("bases") \
        else [grid.get("base")]
    job_list = [job for one_base in base_list for job in expand_grid(
        methods=method_list,
        budgets=budget_list,
        datasets=_csv(str, datasets) or grid.get("datasets", ["synth-kitti"]),
        seeds=seed_list,
        profile=profile, base=one_base, overrides=tuple(grid.get("overrides", [])) + overrides,
        variants=variants,
    )]
    options = _options(runs_dir, store_path, jobs=jobs, executor=executor, address=address, device=device,
                       force=force, rerun_failed=rerun_failed, dry_run=dry_run)
    console = Console(stderr=True)
    result = run_sweep(job_list, options, console)
    ran = len(result.planned) - len(result.skipped)
    console.print(f"{len(result.planned)} cells: {ran} {'to run' if dry_run else 'ran'}, {len(result.skipped)} skipped"
                  + ("" if dry_run else f", {sum(r.status != 'ok' for r in result.records)} failed"))
    if grid.get("tables") == "ablations":
        _print_ablation_tables(options.store(), [Path(p) for p in grid.get("include", [])], profile, console)
    sys.exit(result.exit_code)


def _print_ablation_tables(store_path: Path, includes: list[Path], profile: str, console: Console) -> None:
    """A preset with ``tables: ablations`` ends with the papers' ablation tables (paper beside ours, claim by
    claim) from this sweep's store and the preset's committed results files (``include``), as Markdown: runs
    of the sweep's profile only (a smoke run never stands beside quick ones)."""
    from bench.cli.report import NothingToDo, _ablation_tables, _open_frames
    from bench.report.schema import LEADERBOARDS_DIR
    from bench.results_file import frames_with_included

    # Committed files are named relative to the repository (where leaderboards/ lives), wherever bench runs from.
    committed = [p if p.is_absolute() or p.exists() else LEADERBOARDS_DIR.parent / p for p in includes]
    runs, metrics = pd.DataFrame(), pd.DataFrame()
    try:
        if store_path.exists():
            runs, metrics, _ = _open_frames(store_path)
        metrics = frames_with_included(runs, metrics, committed)[1]
        click.echo(_ablation_tables(metrics[metrics["profile"] == profile] if len(metrics) else metrics), nl=False)
    except NothingToDo as err:
        console.print(f"no ablation tables yet: {err.message}")


@click.command("rescore")
@click.option("--method", default=None, help="only runs of this method")
@click.option("--dataset", default=None, help="only runs on this dataset")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help=RUNS_HELP)
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=STORE_HELP)
def rescore(method: str | None, dataset: str | None, runs_dir: Path | None, store_path: Path | None) -> None:
    """Recompute metrics from stored pseudolabels/predictions (after a metric fix); no method code runs."""
    from bench.runner.jobs import NO_BASE, plan_job
    from bench.runner.pipeline import rescore as rescore_run

    options = _options(runs_dir, store_path)
    if not options.store().exists():
        _fail(f"no results store at {options.store()}: nothing to rescore", EXIT_NOTHING)
    try:
        store = Store(options.store())
    except StoreError as err:
        _fail(str(err))
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
        # pandas reads a missing base as None or NaN (NaN when other runs of the store have one).
        no_base = row["base"] is None or pd.isna(row["base"])
        job = Job(method=str(row["method"]), base=NO_BASE if no_base else str(row["base"]),
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


def _outputs(name: str) -> str:
    try:
        return str(getattr(registry.get_method(name), "outputs", ""))
    except RegistryError:
        return ""


@click.command("ls")
@click.argument("what", type=click.Choice(["methods", "datasets", "protocols", "runs", "profiles", "sweeps"]))
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help=RUNS_HELP)
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=STORE_HELP)
def ls(what: str, runs_dir: Path | None, store_path: Path | None) -> None:
    """List registered methods, datasets, protocols, profiles, sweep presets, or stored runs."""
    from bench.report.tables import budget_label  # the oracle's budget reads "all", never "None"

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
        # Composed methods (bench.lift): any 2d-tracks method as A, any lifter as B.
        sources = [n for n in registry.method_names() if _outputs(n) == "2d-tracks"]
        lifters = Table("lifter", "class", title="lifters (the B of a composed method A+B)")
        for name in registry.lifters.names():
            lifters.add_row(name, registry.lifters.target(name))
        console.print(lifters)
        console.print(f"compose as A+B (2D tracker A lifted to 3D by lifter B; a labeler, default base centertrack): "
                      f"A in {', '.join(sources) or '(none)'}; B in {', '.join(registry.lifters.names()) or '(none)'};"
                      " e.g. gt2d+centernet")
    elif what == "datasets":
        for name in registry.dataset_names():
            console.print(name)
    elif what == "protocols":
        from bench.metrics.protocols import PROTOCOLS

        for name in PROTOCOLS.names():
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
        if not Path(path).exists():
            _fail(f"no results store at {path}: no runs yet (bench run or bench sweep make some)", EXIT_NOTHING)
        try:
            frame = Store(path, readonly=True).runs_frame()  # a read: never creates, migrates or locks anything
        except StoreError as err:
            _fail(str(err))
        table = Table("key", "dataset", "method", "variant", "budget", "seed", "profile", "status", "wall s",
                      title=str(path))
        for r in frame.to_dict("records"):
            name = r["method"] if r["base"] is None else f"{r['method']}+{r['base']}"
            wall = "" if pd.isna(r["wall_s"]) else f"{r['wall_s']:.1f}"
            table.add_row(str(r["key"])[:12], str(r["dataset"]), str(name), str(r["variant"] or ""),
                          budget_label(r["budget"]), str(r["seed"]), escape(str(r["profile"])), str(r["status"]), wall)
        console.print(table)
