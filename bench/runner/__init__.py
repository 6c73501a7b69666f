"""The runner: jobs -> planned cells (keys, folders) -> stages -> store, on a chosen executor.

``run_sweep(jobs, SweepOptions(...))`` is the one entry point; ``bench run`` and ``bench sweep``
are thin layers over it.
"""

from bench.runner.executors import EXIT_FAILED, EXIT_NOTHING, EXIT_OK, SweepOptions, SweepResult, plan, run_sweep
from bench.runner.jobs import Job, PlannedJob, expand_grid, load_sweep

__all__ = ["EXIT_FAILED", "EXIT_NOTHING", "EXIT_OK", "Job", "PlannedJob", "SweepOptions", "SweepResult",
           "expand_grid", "load_sweep", "plan", "run_sweep"]
