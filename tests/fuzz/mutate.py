"""Mutations of valid input files for the fuzz suite: every kind of damage a user's file can carry.

Each mutation takes the bytes of one valid file and returns damaged bytes. Text formats get byte-level
damage (truncation, bit flips, random bytes, an empty file) and token-level damage (huge numbers, NaN/inf,
text in a number's place, a column dropped or added, lines removed or repeated). JSON gets structural
damage too (a value replaced by null, a list, an object, a string, NaN; a key removed). Parquet and npz
files are damaged as tables and arrays (a cell NaN/inf/huge, a column dropped or retyped, an array
reshaped, an object array) as well as byte by byte.

The strategies are plain hypothesis strategies, so failures shrink to a small damaged file.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
# What a number may become: huge, non-finite, negative, fractional, or no number at all.
BAD_NUMBERS = (b"1e308", b"-1e308", b"1e400", b"99999999999999999999999999", b"1" * 400, b"nan", b"NaN", b"inf",
               b"-inf", b"Infinity", b"-1", b"-5", b"0", b"0.3", b"2.5", b"5", b"255", b"abc", b"0x10", b"1,5",
               b"--1", b"", b"\xff\xfe", b"1e-400", b"-0")
BAD_VALUES: tuple[Any, ...] = (None, [], {}, "x", "", 0, -1, 1, 2.5, 1e308, -1e308, float("nan"), float("inf"),
                               [1, 2], [[1]], True, {"a": 1}, "\x00", [None], 10**30)
BAD_CELLS: tuple[Any, ...] = (np.nan, np.inf, -np.inf, 1e308, -1e308, -1, 0, 5, 255, 1000, 2**62, -(2**62), 0.5)

KINDS_BYTES = ("truncate", "bitflip", "random_bytes", "insert_bytes", "empty")
KINDS_TEXT = (*KINDS_BYTES, "number", "number", "drop_field", "add_field", "drop_line", "repeat_line",
              "swap_lines", "nul_line")


@st.composite
def mutate_bytes(draw: st.DrawFn, data: bytes, kind: str) -> bytes:
    n = len(data)
    if kind == "empty" or n == 0:
        return b""
    if kind == "truncate":
        return data[: draw(st.integers(0, n - 1))]
    if kind == "bitflip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, n - 1))
            out[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)
    if kind == "random_bytes":
        start = draw(st.integers(0, n - 1))
        junk = draw(st.binary(min_size=1, max_size=64))
        return data[:start] + junk + data[start + len(junk):]
    if kind == "insert_bytes":
        start = draw(st.integers(0, n))
        return data[:start] + draw(st.binary(min_size=1, max_size=64)) + data[start:]
    raise ValueError(kind)


@st.composite
def mutate_text(draw: st.DrawFn, data: bytes) -> bytes:
    """Damage a text file (KITTI, MOTChallenge, ini, calib, OXTS)."""
    kind = draw(st.sampled_from(KINDS_TEXT))
    if kind in KINDS_BYTES:
        return draw(mutate_bytes(data, kind))
    lines = data.split(b"\n")
    if kind == "number":
        spans = [m.span() for m in NUMBER.finditer(data)]
        if not spans:
            return data + draw(st.sampled_from(BAD_NUMBERS))
        start, end = draw(st.sampled_from(spans))
        return data[:start] + draw(st.sampled_from(BAD_NUMBERS)) + data[end:]
    i = draw(st.integers(0, max(0, len(lines) - 1)))
    sep = b"," if b"," in lines[i] else b" "
    fields = lines[i].split(sep)
    if kind == "drop_field":
        if fields:
            del fields[draw(st.integers(0, len(fields) - 1))]
        lines[i] = sep.join(fields)
    elif kind == "add_field":
        fields.insert(draw(st.integers(0, len(fields))), draw(st.sampled_from(BAD_NUMBERS)))
        lines[i] = sep.join(fields)
    elif kind == "drop_line":
        del lines[i]
    elif kind == "repeat_line":
        lines.insert(i, lines[i])
    elif kind == "swap_lines":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "nul_line":
        lines[i] = b"\x00" * draw(st.integers(1, 8))
    return b"\n".join(lines)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place inside a JSON value (a path of keys / indices), the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in list(value.items())[:20]:
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:5]):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutate_json(draw: st.DrawFn, data: bytes) -> bytes:
    """Damage a JSON file: as text, or by replacing / removing one value somewhere inside it."""
    if draw(st.booleans()):
        return draw(mutate_text(data))
    doc = json.loads(data)
    path = draw(st.sampled_from(_paths(doc)))
    if not path:
        return json.dumps(draw(st.sampled_from(BAD_VALUES))).encode()
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.integers(0, 4)) == 0:
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(st.sampled_from(BAD_VALUES))
    return json.dumps(doc).encode()


@st.composite
def mutate_parquet(draw: st.DrawFn, data: bytes) -> bytes:
    """Damage a parquet file: a cell, a column or the rows of its table, or its bytes."""
    import pandas as pd

    kind = draw(st.sampled_from(("bytes", "cell", "cell", "drop_column", "retype_column", "rows", "empty")))
    if kind == "bytes":
        return draw(mutate_bytes(data, draw(st.sampled_from(KINDS_BYTES))))
    df = pd.read_parquet(io.BytesIO(data))
    if kind == "empty" or df.empty:
        df = df.iloc[:0]
    else:
        column = draw(st.sampled_from(list(df.columns)))
        if kind == "cell":
            row = draw(st.integers(0, len(df) - 1))
            value = draw(st.sampled_from(BAD_CELLS))
            series = df[column].astype(object)
            series.iloc[row] = value if series.iloc[row] is None or np.isscalar(series.iloc[row]) else [value]
            try:
                df[column] = series.infer_objects()
            except (TypeError, ValueError):
                df[column] = series.astype(str)
        elif kind == "drop_column":
            df = df.drop(columns=[column])
        elif kind == "retype_column":
            df[column] = df[column].map(str)
        elif kind == "rows":
            df = pd.concat([df, df.iloc[:1]], ignore_index=True) if draw(st.booleans()) else df.iloc[1:]
    buffer = io.BytesIO()
    try:
        df.to_parquet(buffer, index=False)
    except Exception:  # a column pyarrow cannot type (text mixed with a number): store it all as text
        df = df.assign(**{c: df[c].map(str) for c in df.columns if df[c].dtype == object})
        buffer = io.BytesIO()
        df.to_parquet(buffer, index=False)
    return buffer.getvalue()


@st.composite
def mutate_npz(draw: st.DrawFn, data: bytes) -> bytes:
    """Damage an npz archive: an array's values, shape or dtype, a key removed, an object array, or its bytes."""
    kind = draw(st.sampled_from(("bytes", "values", "values", "shape", "dtype", "drop_key", "object", "scalar")))
    if kind == "bytes":
        return draw(mutate_bytes(data, draw(st.sampled_from(KINDS_BYTES))))
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        # Object arrays (TAPVid-3D's JPEG bytes) are kept as raw members: re-saving them would unpickle.
        arrays = {k: z[k] for k in z.files if not _is_object_member(data, k)}
    if not arrays:
        return draw(mutate_bytes(data, "truncate"))
    key = draw(st.sampled_from(sorted(arrays)))
    array = arrays[key]
    if kind == "values" and array.size:
        flat = array.astype(np.float64).ravel().copy()
        flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from(BAD_CELLS))
        arrays[key] = flat.reshape(array.shape)
    elif kind == "shape":
        arrays[key] = array.ravel()[: draw(st.integers(0, max(0, array.size - 1)))]
    elif kind == "dtype":
        arrays[key] = array.astype(str)
    elif kind == "drop_key":
        del arrays[key]
    elif kind == "object":
        obj = np.empty(1, dtype=object)
        obj[0] = {"not": "bytes"}
        arrays[key] = obj
    elif kind == "scalar":
        arrays[key] = np.float64(draw(st.sampled_from(BAD_CELLS)))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return _keep_object_members(data, buffer.getvalue(), set(arrays) | {key})


def _is_object_member(data: bytes, key: str) -> bool:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return reader(member)[2].hasobject


def _keep_object_members(original: bytes, new: bytes, written: set[str]) -> bytes:
    """Copy the original's object-array members (not rewritten above) into the new archive."""
    import zipfile

    out = io.BytesIO(new)
    with zipfile.ZipFile(io.BytesIO(original)) as src, zipfile.ZipFile(out, "a") as dst:
        for name in src.namelist():
            if name.removesuffix(".npy") not in written and name not in dst.namelist():
                dst.writestr(name, src.read(name))
    return out.getvalue()


def mutation_for(path: Path) -> Any:
    """The strategy that damages a file of this kind."""
    suffix = path.suffix
    if suffix == ".json":
        return mutate_json
    if suffix == ".parquet":
        return mutate_parquet
    if suffix == ".npz":
        return mutate_npz
    return mutate_text


@st.composite
def damaged_file(draw: st.DrawFn, files: list[Path]) -> tuple[Path, bytes]:
    """One of ``files`` and damaged bytes for it."""
    path = draw(st.sampled_from(files))
    return path, draw(mutation_for(path)(path.read_bytes()))
