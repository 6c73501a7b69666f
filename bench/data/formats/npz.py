"""Reading ``.npz`` files from users without ever running code from them.

``np.load(allow_pickle=True)`` unpickles object arrays, and a pickle can call any function: a crafted
prediction file would run a shell command inside ``bench eval``. Everything here opens archives with
``allow_pickle=False``. The one object array a real file legitimately holds is TAPVid-3D's
``images_jpeg_bytes`` (one ``bytes`` per frame); :func:`read_bytes_array` reads it with an unpickler
that can build exactly a numpy object array of ``bytes`` and nothing else.
"""

from __future__ import annotations

import pickle
import tokenize
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format

from bench.data.sequence import DataError

# What numpy's own pickle of an object array names: the array constructor, the array type and its dtype
# (numpy 2 writes ``numpy._core``, files from numpy 1 say ``numpy.core``). Nothing else may be imported.
_ALLOWED_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.empty(0))[0],
    ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.empty(0))[0],
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _BytesArrayUnpickler(pickle.Unpickler):
    """Admits only the globals numpy needs to rebuild an object array; bytes need no global at all."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused {module}.{name}: only an array of bytes is allowed") from None


def open_npz(path: Path | str, what: str = "npz file") -> Any:
    """``np.load`` with pickles refused; a missing, unreadable or non-npz file is a one-line DataError."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a {what}")
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} is missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a readable {what} ({_short(err)})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array under an .npz name
        raise DataError(f"{path}: not an npz archive (a single array); expected a {what}")
    return data


def read_array(data: Any, key: str, path: Path | str) -> np.ndarray:
    """One numeric array of an open archive; an object array (a pickle) is refused, not loaded."""
    try:
        return np.asarray(data[key])
    except ValueError as err:
        raise DataError(f"{path}: array {key!r} holds Python objects (pickled); refused: {_short(err)}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"{path}: array {key!r} is unreadable ({_short(err)})") from None


def read_bytes_array(path: Path | str, key: str) -> list[bytes]:
    """The object array ``key`` of an npz archive, admitted only if it is a 1-D array of ``bytes``."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as member:
            return _bytes_from_npy(member, path, key)
    # numpy parses some damaged .npy headers with tokenize, whose TokenError is no ValueError.
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError, pickle.UnpicklingError,
            tokenize.TokenError) as err:
        raise DataError(f"{path}: array {key!r} is not a list of bytes ({_short(err)})") from None


def _bytes_from_npy(member: IO[bytes], path: Path, key: str) -> list[bytes]:
    version = npy_format.read_magic(member)
    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    shape, _, dtype = read_header(member)
    if not dtype.hasobject:  # plain bytes stored as a fixed-width array (|S...): no pickle involved
        count = int(np.prod(shape))
        array = np.frombuffer(member.read(count * dtype.itemsize), dtype=dtype, count=count).reshape(shape)
    else:
        array = _BytesArrayUnpickler(member).load()
    if not isinstance(array, np.ndarray) or array.ndim != 1 or not all(isinstance(b, bytes | np.bytes_) for b in array):
        raise DataError(f"{path}: array {key!r} must be a 1-D array of bytes (one encoded image per frame)")
    return [bytes(b) for b in array]


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
