"""Which folders bench may write into, replace or delete: only those it created and marked as its own.

A user points bench at paths (``--out``, ``--root``, ``--set data.root``, ``--runs-dir``, ``report -o``).
Once, an export replaced any folder that lacked its completion marker, so ``--set data.root=/etc`` run as
root removed /etc. The rule now, in one place:

* a folder that does not exist, or is empty, is created and marked (``.bench-owned``) before anything is
  written into it;
* a folder with bench's marker may be written into, replaced and cleaned;
* any other folder is refused with one line that names it and says what to do; nothing in it changes.

Replacing or deleting goes through :func:`remove_owned`, which checks the marker itself, so no caller can
delete an unmarked folder by mistake. Temporary folders bench makes (``mkdtemp`` with its own prefix) are
bench's by construction and are cleaned by whoever made them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.data.sequence import DataError

MARKER = ".bench-owned"

# Outputs of bench versions from before the marker: recognised so an existing cache keeps working.
LegacyCheck = Callable[[Path], bool]


class OwnershipError(DataError):
    """bench was asked to write into, replace or delete a folder that is not its own (exit code 2)."""


def is_owned(folder: Path | str, legacy: LegacyCheck | None = None) -> bool:
    """True when ``folder`` is a real folder (not a symlink) holding bench's marker file."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    marker = folder / MARKER
    if marker.is_file() and not marker.is_symlink():
        return True
    return bool(legacy and legacy(folder))


def mark(folder: Path | str, kind: str) -> None:
    """Write bench's marker into a folder bench has just created (or found empty)."""
    (Path(folder) / MARKER).write_text(json.dumps({"created_by": "bench", "kind": kind}) + "\n")


def claim_dir(folder: Path | str, kind: str, hint: str, legacy: LegacyCheck | None = None) -> Path:
    """Make ``folder`` a folder bench owns, or refuse. ``hint`` names the option to change, e.g. ``--out``.

    New or empty: created and marked. Already bench's: returned as it is. Anything else (a file, a symlink,
    a non-empty folder without the marker): :class:`OwnershipError`, and nothing is touched.
    """
    folder = Path(folder)
    if folder.is_symlink():
        raise OwnershipError(f"{folder}: is a symbolic link; bench writes only into real folders it created. "
                             f"Pass {hint} a new or empty folder")
    if folder.exists() and not folder.is_dir():
        raise OwnershipError(f"{folder}: is a file, not a folder. Pass {hint} a new or empty folder")
    if folder.is_dir():
        if is_owned(folder, legacy):
            if not (folder / MARKER).exists():
                mark(folder, kind)  # adopt an output of an older bench
            return folder
        if any(folder.iterdir()):
            raise OwnershipError(f"{folder}: folder is not empty and was not created by bench (no {MARKER} "
                                 f"file), so bench will not write into it. Pass {hint} an empty or new folder")
    folder.mkdir(parents=True, exist_ok=True)
    mark(folder, kind)
    return folder


def remove_owned(folder: Path | str, legacy: LegacyCheck | None = None) -> None:
    """Delete ``folder`` recursively, but only if it is bench's own; otherwise :class:`OwnershipError`."""
    folder = Path(folder)
    if not is_owned(folder, legacy):
        raise OwnershipError(f"{folder}: not created by bench (no {MARKER} file); refusing to delete it")
    # Move it aside first so a crash mid-delete leaves a bench temp name, never a half-deleted folder
    # under the name a reader trusts.
    aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    os.replace(folder, aside / folder.name)
    shutil.rmtree(aside)


def make_tmp_dir(final: Path | str, kind: str) -> Path:
    """A fresh, marked temporary folder beside ``final`` (bench's own prefix); publish with
    :func:`publish_dir`. Readable as the user's umask allows, not mkdtemp's 0700."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    mark(tmp, kind)
    return tmp


def publish_dir(tmp: Path, final: Path, legacy: LegacyCheck | None = None) -> None:
    """Move the finished temporary folder ``tmp`` to ``final`` in one rename.

    ``final`` may be missing, an empty folder, or a folder bench owns (an outdated export, replaced);
    anything else is refused and ``tmp`` is removed. Readers never see half a folder.
    """
    tmp, final = Path(tmp), Path(final)
    try:
        if final.is_dir() and not final.is_symlink() and not any(final.iterdir()):
            final.rmdir()
        elif final.exists() or final.is_symlink():
            remove_owned(final, legacy)  # raises for anything bench did not make
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
