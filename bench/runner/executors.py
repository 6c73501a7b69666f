"""Executors and the sweep driver.

- ``inline``: the job runs in this process (``--jobs 1``; what ``bench run`` uses).
- ``local``: one forked worker process per job, at most ``--jobs`` at a time; with GPUs, one
  slot per GPU and each worker sees only its GPU through ``CUDA_VISIBLE_DEVICES``. A fresh
  process per job makes ``ru_maxrss`` that job's peak memory and contains crashes.
- ``ray``: one Ray task per job requesting ``num_gpus`` (a cluster with ``--address``, else a
  local Ray instance). Ray does the scheduling; there is no home-made cluster scheduler.

Every executor calls :func:`bench.runner.pipeline.execute`, which writes its own outcome to the
store, so a worker that dies only leaves a ``running`` row that the next sweep resumes.

On a Ray cluster, tasks write artifacts into the runs folder, which every node must see (``--runs-dir``
on shared storage), but only the driver writes the SQLite store: tasks return their record and
metric rows. (SQLite's locking is only as good as the filesystem's, so the store stays on the
driver's disk.)
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bench.config import ConfigError
from bench.ownership import claim_dir
from bench.runner.environment import resolve_device
from bench.runner.jobs import Job, PlannedJob, check_job, decide, forget_planning_data, plan_job
from bench.runner.pipeline import execute, record_for
from bench.store import STORE_FILENAME, RunRecord, Store, StoreError, default_store_path, folder_is_read_only

EXIT_OK, EXIT_REGRESSION, EXIT_FAILED, EXIT_NOTHING = 0, 1, 2, 3
EXECUTORS = ("local", "ray")


@dataclass
class SweepOptions:
    runs_root: Path = Path("runs")
    store_path: Path | None = None
    jobs: int = 0  # 0: one worker per GPU, else in-process; N: at most N workers
    executor: str = "local"
    address: str | None = None
    device: str = "auto"
    force: bool = False
    rerun_failed: bool = False
    dry_run: bool = False
    progress: bool = True
    gpus_per_job: float = 1.0

    def store(self) -> Path:
        return Path(self.store_path) if self.store_path else default_store_path(self.runs_root)


@dataclass
class SweepResult:
    planned: list[PlannedJob]
    records: list[RunRecord] = field(default_factory=list)
    exit_code: int = EXIT_OK

    @property
    def skipped(self) -> list[PlannedJob]:
        return [p for p in self.planned if p.action == "skip"]


def plan(jobs: Iterable[Job], options: SweepOptions) -> list[PlannedJob]:
    """Keys, folders and run/skip decisions for every job (one store query for the whole grid).

    Every job is checked before any is run. A dry run writes nothing: the store is opened read-only
    (and need not exist), and no planning cache is written into the runs folder."""
    jobs = list(jobs)
    planned = [plan_job(job, Path(options.runs_root), write_cache=not options.dry_run) for job in jobs]
    # Budgets collapse for the oracle (see plan_job): a grid of budgets x [sparse, oracle] plans it once.
    unique: dict[str, PlannedJob] = {}
    for p in planned:
        unique.setdefault(p.key, p)
    planned = list(unique.values())
    forget_planning_data()
    statuses: dict[str, str] = {}
    folders: dict[str, str] = {}
    if not options.dry_run or options.store().exists():
        store = Store(options.store(), readonly=options.dry_run)
        statuses, folders = store.statuses(), store.run_dirs()
    for p in planned:
        # A stored run keeps its folder: runs re-keyed by a store migration live under their old key's name.
        stored = folders.get(p.key)
        if stored and Path(stored).is_dir():
            p.run_dir = Path(stored)
        decide(p, statuses, options.force, options.rerun_failed)
    return planned


def print_plan(planned: list[PlannedJob], console: Console) -> None:
    table = Table(title=f"{len(planned)} cells", show_lines=False)
    variants = any(p.job.variant for p in planned)
    for column in ("dataset", "method", *(["variant"] if variants else []), "budget", "seed", "profile", "key",
                   "action", "why"):
        table.add_column(column)
    for p in planned:
        j = p.job
        name = j.method if j.base is None else f"{j.method}+{j.base}"
        budget = "all" if j.budget is None else str(j.budget)
        cells = [j.dataset, name, *([j.variant] if variants else []), budget, str(j.seed), j.profile]
        table.add_row(*map(escape, cells), p.key[:12], p.action, escape(p.reason),
                      style="dim" if p.action == "skip" else None)
    console.print(table)


# ---- workers ----------------------------------------------------------------------------------
def _local_worker(conn: multiprocessing.connection.Connection, planned: PlannedJob, runs_root: Path,
                  store_path: Path, device: str, force: bool, slot: str | None) -> None:
    if slot is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slot
    try:
        conn.send(execute(planned, runs_root, store_path, device, force).status)
    finally:
        conn.close()


def _ray_task(planned: PlannedJob, runs_root: str, device: str, force: bool) -> tuple[RunRecord, list | None]:
    # The worker writes artifacts to the (shared) runs folder but never the store: the driver
    # stores what it returns, so SQLite is only ever written on the driver's disk.
    record = execute(planned, Path(runs_root), None, device, force)
    return record, planned.rows


def _gpu_slots(device: str) -> list[str]:
    if not device.startswith("cuda"):
        return []
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def _run_local(todo: list[PlannedJob], options: SweepOptions, device: str, on_done,
               progress: Callable[[int, int, str], None] | None = None) -> None:
    # jobs 0 = automatic: one worker per GPU, or a single in-process run on CPU.
    gpus: list[str | None] = list(_gpu_slots(device))
    if gpus:
        slots = gpus[: options.jobs] if options.jobs else gpus
    else:
        slots = [None] * max(1, options.jobs)
    store_path = options.store()
    if len(slots) == 1 and slots[0] is None:
        for p in todo:
            on_done(p, execute(p, Path(options.runs_root), store_path, device, options.force, progress).status)
        return
    ctx = mp.get_context("fork")  # inherits registrations made at run time; no re-import per job
    queue = list(todo)
    running: dict[Any, tuple[Any, PlannedJob, str | None, Any]] = {}
    while queue or running:
        while queue and slots:
            p, slot = queue.pop(0), slots.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_local_worker,
                               args=(send, p, Path(options.runs_root), store_path, device, options.force, slot))
            proc.start()
            send.close()
            running[proc.sentinel] = (proc, p, slot, recv)
        ready = multiprocessing.connection.wait(list(running))
        for sentinel in ready:
            proc, p, slot, recv = running.pop(sentinel)
            proc.join()
            status = recv.recv() if recv.poll() else None
            recv.close()
            slots.append(slot)
            if status is None:  # the worker died without reporting (killed, segfault, OOM)
                record = record_for(p, "failed", device, time.time(), finished_at=time.time(),
                                    error=f"worker process exited with code {proc.exitcode}")
                Store(store_path).upsert_run(record)
                status = "failed"
            on_done(p, status)


def _run_ray(todo: list[PlannedJob], options: SweepOptions, device: str, on_done) -> None:
    try:
        import ray
    except ImportError as err:
        raise RuntimeError("--executor ray needs ray: pip install -c constraints.txt -e '.[ray]'") from err
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                 num_cpus=None if options.address else max(1, options.jobs))
    gpus = options.gpus_per_job if device.startswith("cuda") else 0
    task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_ray_task)
    store = Store(options.store())
    refs = {}
    for p in todo:
        store.upsert_run(record_for(p, "running", device, time.time()))
        refs[task.remote(p, str(Path(options.runs_root).resolve()), device, options.force)] = p
    try:
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                p = refs.pop(ref)
                try:
                    record, rows = ray.get(ref)
                    store.upsert_run(record)
                    if rows is not None:
                        store.add_metrics(p.key, rows)
                    status = record.status
                except Exception as err:  # the task died: record it like a dead local worker
                    store.upsert_run(record_for(p, "failed", device, time.time(), finished_at=time.time(),
                                                error=repr(err)))
                    status = "failed"
                on_done(p, status)
    finally:
        if started_here:
            ray.shutdown()


def _legacy_runs_root(folder: Path) -> bool:
    """A runs folder from before the ownership marker: it holds bench's SQLite store."""
    try:
        with open(folder / STORE_FILENAME, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def run_sweep(jobs: Iterable[Job], options: SweepOptions, console: Console | None = None) -> SweepResult:
    """Plan, skip what is finished, run the rest on the chosen executor; failures never stop the sweep.

    Exit code: 0 all ran or were already finished, 2 some run failed, 3 nothing to do (empty grid,
    or only cells that failed before and were not retried).
    """
    console = console or Console(stderr=True)
    options.runs_root = Path(options.runs_root)
    jobs = list(jobs)
    for job in jobs:  # every job is checked before anything is written or computed
        check_job(job, options.runs_root)
    if options.executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {options.executor!r}; choose from {', '.join(EXECUTORS)}")
    if not options.dry_run:
        try:
            resolve_device(options.device)  # a bad --device, or cuda without a GPU: refused before anything runs
        except RuntimeError as err:
            raise ConfigError(str(err)) from None
    if not options.dry_run and folder_is_read_only(options.runs_root):
        raise StoreError(f"the runs folder {options.runs_root} is read-only; running writes there: use a writable "
                         "--runs-dir (--dry-run and the reading commands work as is)")
    if not options.dry_run:  # run folders are created (and stale stages cleaned) only inside bench's own root
        claim_dir(options.runs_root, "runs", "--runs-dir", _legacy_runs_root)
    planned = plan(jobs, options)
    result = SweepResult(planned)
    # One line per labeler whose default base tracker was picked for the user.
    for note in dict.fromkeys(p.base_note for p in planned if p.base_note):
        console.print(escape(note), highlight=False)
    if options.dry_run:
        print_plan(planned, console)
        return result
    todo = [p for p in planned if p.action == "run"]
    if not planned or (not todo and all(p.previous == "failed" for p in planned)):
        result.exit_code = EXIT_NOTHING
        return result
    if not todo:
        console.print(f"all {len(planned)} cells are finished (use --force to redo)")
        return result
    device = resolve_device(options.device)
    store = Store(options.store())
    failures: list[PlannedJob] = []
    # Stage, bar, elapsed and ETA (rich's estimate from the steps so far: display only, it never decides anything).
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, auto_refresh=False, disable=not options.progress)
    with progress:
        bar = progress.add_task("sweep", total=len(todo))
        inner = progress.add_task("method", total=None, visible=False)

        def method_progress(done: int, total: int, what: str) -> None:
            # In-process runs only: a method's own steps (training epochs, sequences) as a second bar.
            progress.update(inner, completed=done, total=total, description=f"  {what}", visible=done < total)
            progress.refresh()

        def on_done(p: PlannedJob, status: str) -> None:
            record = store.run(p.key)
            if record is not None:
                result.records.append(record)
            if status != "ok":
                failures.append(p)
            progress.update(bar, advance=1, description=f"{p.job.describe()}: {status}")
            progress.refresh()

        if options.executor == "local":
            _run_local(todo, options, device, on_done, method_progress)
        elif options.executor == "ray":
            _run_ray(todo, options, device, on_done)
        else:
            raise ValueError(f"unknown executor {options.executor!r}; choose from {EXECUTORS}")
    for p in failures:
        record = store.run(p.key)
        first = (record.error or "").strip().splitlines()[-1:] if record else []
        # Escaped: a profile path ("[/home/me/my.yaml]"), a message or a folder would otherwise read as markup.
        console.print(f"[red]failed[/red] {escape(p.job.describe())}: {escape(first[0] if first else 'unknown error')} "
                      f"(run folder {escape(str(p.run_dir))})")
    result.exit_code = EXIT_FAILED if failures else EXIT_OK
    return result
