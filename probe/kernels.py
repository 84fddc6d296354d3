"""The compiled kernels: `library`, one C library built from probe/_kernels.c and
probe/_auroc_kernels.c (search's passes, wrapped here) and probe/_recorder_kernels.c (the
recorder's layers, log-probs and float16 copies, wrapped in probe/recorder_kernels.py), or
None where they cannot run.

`pip install` compiles them when a C compiler is at hand (the extension is optional,
so an install without one still works). The kernels run on x86-64 CPUs with AVX2 and FMA;
anywhere else `library` is None and probe.scan, probe.auroc and the recorder use torch,
which gives the same results (tests run both), slower (search ~4x, recording an LSTM,
GRU or RNN 2x256 1.7-1.8x). PROBE_KERNELS=0 turns them off.

Arrays go in by pointer (ctypes releases the GIL for the call, so one call per core runs
side by side); the wrappers check dtypes, layouts and shapes first, as C cannot.
"""

from __future__ import annotations

import ctypes
import os
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

VERSION = 10  # of the functions' arguments: probe_version() in _kernels.c


def _load() -> ctypes.CDLL | None:
    if os.environ.get("PROBE_KERNELS", "1") == "0":
        return None
    try:
        from probe import _kernels
    except ImportError:  # not compiled (no C compiler at install time)
        return None
    return _bind(ctypes.CDLL(_kernels.__file__))


def _bind(library) -> ctypes.CDLL | None:
    """The library with its functions' argument types set, or None (torch's path) where this
    CPU lacks AVX2 or the library was built from another version of _kernels.c."""
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    try:
        if library.probe_version() != VERSION:
            raise AttributeError("another version")
        if not library.probe_supported():
            return None
        library.probe_moments.argtypes = [pointer, size, size, size, pointer, size, pointer]
        library.probe_moments.argtypes += [pointer, size, pointer, pointer, size] + [pointer] * 6
        library.probe_column_keys.argtypes = [pointer, size, size, size, pointer, size]
        library.probe_column_keys.argtypes += [pointer, size]
        library.probe_lstm_cells.argtypes = [pointer] + [size] * 5 + [pointer, pointer]
        library.probe_to_half.argtypes = [pointer] + [size] * 5 + [pointer, size]
        library.probe_gru_step.argtypes = [pointer] * 4 + [size] * 2
        library.probe_lstm_step.argtypes = [pointer] * 5 + [size] * 2
        library.probe_lstm_layer.argtypes = [pointer] * 7 + [size] * 4
        library.probe_gru_layer.argtypes = [pointer] * 7 + [size] * 4
        library.probe_logprob.argtypes = [pointer] * 6 + [size] * 5
        library.probe_rnn_layer.argtypes = [pointer] * 5 + [size] * 4
        library.probe_auroc.argtypes = [pointer, size, pointer, pointer, size, pointer]
    except AttributeError:  # built from another _kernels.c than this checkout's
        warnings.warn(
            "probe's compiled kernels are out of date (reinstall probe); using torch",
            stacklevel=2,
        )
        return None
    return library


library = _load()


def _address(array: np.ndarray | None, dtype, shape: tuple | None = None) -> int | None:
    """The data pointer of a C-contiguous array of this dtype (and shape), else TypeError."""
    if array is None:
        return None
    if array.dtype != dtype or not array.flags.c_contiguous:
        raise TypeError(f"kernel wants a C-contiguous {np.dtype(dtype)} array, got {array.dtype}")
    if shape is not None and array.shape != shape:
        raise TypeError(f"kernel wants shape {shape}, got {array.shape}")
    return array.ctypes.data


def on_cpu(tensor: torch.Tensor, dtype, shape: tuple) -> bool:
    """Whether a tensor is a contiguous CPU tensor of this dtype and shape (C gets pointers)."""
    return (
        tensor.device.type == "cpu"
        and tensor.dtype == dtype
        and tensor.is_contiguous()
        and tuple(tensor.shape) == tuple(shape)
    )


def _indices(values, limit: int, what: str) -> np.ndarray:
    """Indices as C reads them (int64, contiguous), each checked to be in [0, limit)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    if values.size and not (0 <= values.min() and values.max() < limit):
        raise IndexError(f"{what} out of range [0, {limit})")
    return values


def _rows(rows: tuple[int, int], chars: int) -> tuple[int, int]:
    """A (start, stop) row range, checked to lie within the array (C reads rows start..stop)."""
    start, stop = rows
    if not 0 <= start <= stop <= chars:
        raise IndexError(f"rows [{start}, {stop}) out of range for {chars} rows")
    return start, stop


def _check(status: int) -> None:
    if status != 0:
        raise MemoryError("search kernel could not allocate its buffers")


class Steps(NamedTuple):
    """A feature as `probe_moments` takes it when its values mostly change by a fixed step a
    char (positions and lengths in a line, indents, depths, runs of a binary feature):
    values[t] = values[t - 1] + slope, plus sizes[i] at each of the sorted rows[i]."""

    values: np.ndarray  # float32 (chars,): the feature itself (read at each tile's first row)
    slope: float
    rows: np.ndarray  # int64, sorted
    sizes: np.ndarray  # float32, one per row


def moments(
    array: np.ndarray,
    rows: tuple[int, int],
    dense: list[np.ndarray],
    positives: list[np.ndarray],
    shift: np.ndarray,
    cross: np.ndarray,
    sums: np.ndarray,
    squares: np.ndarray,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    steps: Sequence[Steps] = (),
) -> None:
    """Over rows [start, stop) of a float16 (chars, units) array, with x = array - shift:
    cross[f] += dense[f] @ x for each float32 feature (chars,), then cross[len(dense) + s] +=
    the sum of x over the rows positives[s] (sorted int64: a binary feature's 1s), then
    cross[len(dense) + len(positives) + k] += steps[k].values @ x, taken from its steps;
    sums += sum(x), squares += sum(x^2) per unit, low / high = running min / max of x
    (skipped without them). Sums float64."""
    chars, units = array.shape
    columns = [_address(row, np.float32, (chars,)) for row in dense]
    columns += [_address(step.values, np.float32, (chars,)) for step in steps]
    lists = [np.ascontiguousarray(rows, dtype=np.int64) for rows in positives]
    lists += [np.ascontiguousarray(step.rows, dtype=np.int64) for step in steps]
    sizes = [_address(step.sizes, np.float32, (len(step.rows),)) for step in steps]
    counts = np.array([len(rows) for rows in lists], np.int64)
    slopes = np.array([step.slope for step in steps], np.float32)
    _check(
        library.probe_moments(
            _address(array, np.float16),
            units,
            *_rows(rows, chars),
            pointer_array(columns),
            len(dense),
            pointer_array([rows.ctypes.data for rows in lists]),
            counts.ctypes.data,
            len(positives),
            pointer_array(sizes),
            slopes.ctypes.data,
            len(steps),
            _address(shift, np.float32, (units,)),
            _address(cross, np.float64, (len(dense) + len(lists), units)),
            _address(sums, np.float64, (units,)),
            _address(squares, np.float64, (units,)),
            _address(low, np.float32, (units,)),
            _address(high, np.float32, (units,)),
        )
    )


def pointer_array(addresses: list[int]) -> ctypes.Array:
    return (ctypes.c_void_p * max(1, len(addresses)))(*addresses)


def column_keys(
    array: np.ndarray, rows: tuple[int, int], picked: np.ndarray, out: np.ndarray
) -> None:
    """out[j, start:stop] = sort keys (see probe.auroc.sort_keys) of column picked[j] of a
    float16 (chars, units) array over rows [start, stop); out: uint16 (len(picked), chars)."""
    chars, units = array.shape
    picked = _indices(picked, units, "columns")
    _check(
        library.probe_column_keys(
            _address(array, np.float16),
            units,
            *_rows(rows, chars),
            _address(picked, np.int64),
            len(picked),
            _address(out, np.uint16, (len(picked), chars)),
            chars,
        )
    )


def auroc(keys: np.ndarray, positives: list[np.ndarray]) -> np.ndarray:
    """Exact AUROC of one unit (uint16 sort keys at every char) against each binary feature,
    given as the chars where it is 1 (int64, any order): see probe.auroc."""
    positives = [_indices(rows, len(keys), "rows") for rows in positives]
    pointers = pointer_array([rows.ctypes.data for rows in positives])
    counts = np.array([len(rows) for rows in positives], np.int64)
    out = np.empty(len(positives))
    _check(
        library.probe_auroc(
            _address(keys, np.uint16),
            len(keys),
            pointers,
            counts.ctypes.data,
            len(out),
            out.ctypes.data,
        )
    )
    return out
