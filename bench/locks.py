"""One lock per run: a second process on the same cell waits for the first, and a dead run is seen as dead.

The lock is ``fcntl.flock`` on ``<run folder>/run.lock``. The kernel releases a flock when its
process ends, however it ends (SIGKILL, OOM, a power cut ends every process), so "is some process
running this cell?" has an exact answer without clocks: try to take the lock. A heartbeat file
would need a timeout that is either too short for a slow stage or too long for a user's patience.

flock is per host on network filesystems; Ray workers on several nodes sharing one runs folder are
serialised by the Ray driver instead (it plans each cell once).
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "run.lock"


@contextmanager
def run_lock(run_dir: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the run's lock for the block; if another process holds it, call ``on_wait`` once and wait."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())  # for a human looking at the folder; the flock is what counts
        yield
    finally:
        os.close(fd)  # releases the flock


def is_running(run_dir: Path) -> bool:
    """Whether a live process holds the run's lock. Read-only: opens the file for reading, creates nothing."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False  # no lock file: the run never started here (or its folder is gone)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        return err.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
