"""Compiled kernels for search's passes (probe/_kernels.c) and the recorder's hot loops
(probe/_recorder_kernels.c: the LSTM layer, the GRU and LSTM step math, float16 copies),
or None where they cannot run.

`pip install` compiles them when a C compiler is at hand (the extension is optional,
so an install without one still works). The kernels run on x86-64 CPUs with AVX2 and FMA;
anywhere else `library` is None and probe.scan, probe.auroc and the recorder use torch,
which gives the same results (tests run both), slower (search 2-2.5x, recording an LSTM
or GRU 2x256 1.15-1.5x). PROBE_KERNELS=0 turns them off.

Arrays go in by pointer (ctypes releases the GIL for the call, so one call per core runs
side by side); the wrappers check dtypes, layouts and shapes first, as C cannot.
"""

from __future__ import annotations

import ctypes
import os
import warnings

import numpy as np
import torch

VERSION = 5  # of the functions' arguments: probe_version() in _kernels.c


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
        library.probe_moments.argtypes += [pointer, size] + [pointer] * 6
        library.probe_column_keys.argtypes = [pointer, size, size, size, pointer, size]
        library.probe_column_keys.argtypes += [pointer, size]
        library.probe_lstm_cells.argtypes = [pointer] + [size] * 5 + [pointer, pointer]
        library.probe_to_half.argtypes = [pointer] + [size] * 5 + [pointer, size]
        library.probe_gru_step.argtypes = [pointer] * 4 + [size] * 2
        library.probe_lstm_step.argtypes = [pointer] * 5 + [size] * 2
        library.probe_lstm_layer.argtypes = [pointer] * 7 + [size] * 4
        library.probe_gru_layer.argtypes = [pointer] * 7 + [size] * 4
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


def _on_cpu(tensor: torch.Tensor, dtype, shape: tuple) -> bool:
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
) -> None:
    """Over rows [start, stop) of a float16 (chars, units) array, with x = array - shift:
    cross[f] += dense[f] @ x for each float32 feature (chars,), then cross[len(dense) + s] +=
    the sum of x over the rows positives[s] (sorted int64: a binary feature's 1s), sums +=
    sum(x), squares += sum(x^2) per unit, low / high = running min / max of x (skipped
    without them). Sums float64."""
    chars, units = array.shape
    dense = [_address(row, np.float32, (chars,)) for row in dense]
    positives = [np.ascontiguousarray(rows, dtype=np.int64) for rows in positives]
    counts = np.array([len(rows) for rows in positives], np.int64)
    _check(
        library.probe_moments(
            _address(array, np.float16),
            units,
            *_rows(rows, chars),
            _pointers(dense),
            len(dense),
            _pointers([rows.ctypes.data for rows in positives]),
            counts.ctypes.data,
            len(positives),
            _address(shift, np.float32, (units,)),
            _address(cross, np.float64, (len(dense) + len(positives), units)),
            _address(sums, np.float64, (units,)),
            _address(squares, np.float64, (units,)),
            _address(low, np.float32, (units,)),
            _address(high, np.float32, (units,)),
        )
    )


def _pointers(addresses: list[int]) -> ctypes.Array:
    return (ctypes.c_void_p * max(1, len(addresses)))(*addresses)


def lstm_cells(gates: torch.Tensor, c: torch.Tensor, cell: torch.Tensor) -> None:
    """cell[t] = c = f_t * c + i_t * g_t for every step t of gates (steps, streams, >= 3 H:
    i, f, g first, any strides with unit-stride rows, float32), from c (streams, H) on; c
    ends as the last state. cell: float32 (steps, streams, H), contiguous."""
    steps, streams, _ = gates.shape
    hidden = c.shape[1]
    if gates.device.type != "cpu" or gates.dtype != torch.float32 or gates.stride(2) != 1:
        raise TypeError("kernel wants float32 gates on the CPU, rows unit-stride")
    if gates.shape[2] < 3 * hidden:
        raise TypeError("kernel wants gates (steps, streams, >= 3 hidden)")
    for tensor, shape in ((c, (streams, hidden)), (cell, (steps, streams, hidden))):
        if not _on_cpu(tensor, torch.float32, shape):
            raise TypeError(f"kernel wants a contiguous float32 CPU tensor of shape {shape}")
    library.probe_lstm_cells(
        gates.data_ptr(), gates.stride(0), gates.stride(1), steps, streams, hidden,
        c.data_ptr(), cell.data_ptr(),
    )  # fmt: skip


def to_half(values: torch.Tensor, out: torch.Tensor) -> None:
    """out[s, t] = values[t, s] as float16: values float32 (steps, streams, width), any step
    and stream strides, unit-stride rows; out float16 (streams, >= steps, width), contiguous."""
    steps, streams, width = values.shape
    if values.device.type != "cpu" or values.dtype != torch.float32 or values.stride(2) != 1:
        raise TypeError("kernel wants float32 values on the CPU with unit-stride rows")
    if not _on_cpu(out, torch.float16, out.shape):
        raise TypeError("kernel wants a contiguous float16 (streams, steps, width) CPU output")
    if out.shape[0] != streams or out.shape[1] < steps or out.shape[2] != width:
        raise TypeError(f"kernel wants an output of ({streams}, >= {steps}, {width})")
    library.probe_to_half(
        values.data_ptr(), values.stride(0), values.stride(1), steps, streams, width,
        out.data_ptr(), out.shape[1],
    )  # fmt: skip


def _steps(hidden: int, streams: int, tensors: list[tuple[torch.Tensor, int]]) -> bool:
    """Whether a step kernel takes these (tensor, width) pairs: contiguous float32 CPU
    tensors of shape (streams, width), and hidden % 8 == 0 (the kernels' lanes)."""
    return hidden % 8 == 0 and all(
        _on_cpu(tensor, torch.float32, (streams, width)) for tensor, width in tensors
    )


def gru_step(
    row: torch.Tensor, recurrent: torch.Tensor, h: torch.Tensor, h_next: torch.Tensor
) -> bool:
    """One GRU step's gate math (see probe_gru_step): row (streams, 3H) = x W_ih^T + b_ih,
    overwritten with r, z, n; recurrent (streams, 3H) = h W_hh^T + b_hh; h_next written.
    False (nothing done) where the kernel does not take these tensors: the caller uses torch."""
    streams, hidden = h.shape
    tensors = [(row, 3 * hidden), (recurrent, 3 * hidden), (h, hidden), (h_next, hidden)]
    if not _steps(hidden, streams, tensors):
        return False
    library.probe_gru_step(
        row.data_ptr(), recurrent.data_ptr(), h.data_ptr(), h_next.data_ptr(), streams, hidden
    )
    return True


def lstm_step(
    row: torch.Tensor,
    recurrent: torch.Tensor | None,
    c: torch.Tensor,
    c_next: torch.Tensor,
    h_next: torch.Tensor,
) -> bool:
    """One LSTM step's gate math (see probe_lstm_step): row (streams, 4H) = x W_ih^T + b in
    gate order i, f, o, g, plus recurrent (streams, 4H) = h W_hh^T (None: already in row), is
    overwritten with the activated gates; c_next and h_next are written from c. False
    (nothing done) where the kernel does not take these tensors: the caller uses torch."""
    streams, hidden = c.shape
    tensors = [(row, 4 * hidden), (c, hidden), (c_next, hidden), (h_next, hidden)]
    if not _steps(hidden, streams, tensors + [(recurrent, 4 * hidden)] * (recurrent is not None)):
        return False
    library.probe_lstm_step(
        row.data_ptr(), None if recurrent is None else recurrent.data_ptr(),
        c.data_ptr(), c_next.data_ptr(), h_next.data_ptr(), streams, hidden,
    )  # fmt: skip
    return True


def lstm_pack(w_hh: torch.Tensor) -> torch.Tensor:
    """W_hh (4H, H), gate blocks i, f, o, g, laid out for `lstm_layer`: for each block of 8
    units, two panels (gates i, f; then o, g), each a row of 2 x 8 weights per k:
    (H/8, 2, H, 2, 8)."""
    hidden = w_hh.shape[1]
    return w_hh.reshape(2, 2, hidden // 8, 8, hidden).permute(2, 0, 4, 1, 3).contiguous()


def _halves(halves: list[torch.Tensor | None] | None, kinds: int, shape: tuple[int, int, int]):
    """(pointer array or None, steps_out) for a layer kernel's float16 copies, or None where
    the kernel cannot take them: `kinds` entries, each None or a contiguous float16 CPU
    tensor (streams, steps_out, hidden), one steps_out >= steps for all. shape: (steps,
    streams, hidden)."""
    if halves is None or not any(half is not None for half in halves):
        return None, 0
    steps, streams, hidden = shape
    steps_out = next(half for half in halves if half is not None).shape[1]
    taken = len(halves) == kinds and steps_out >= steps
    if not taken or not all(
        _on_cpu(half, torch.float16, (streams, steps_out, hidden))
        for half in halves
        if half is not None
    ):
        return None
    return _pointers([None if half is None else half.data_ptr() for half in halves]), steps_out


def lstm_layer(
    packed: torch.Tensor,
    gates: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    hidden_out: torch.Tensor,
    cell_out: torch.Tensor,
    halves: list[torch.Tensor | None] | None = None,
) -> bool:
    """An LSTM layer over a chunk (see probe_lstm_layer): gates (steps, streams, 4H) = x
    W_ih^T + b in gate order i, f, o, g, overwritten with the activated gates; hidden_out and
    cell_out (steps, streams, H) written, from state h, c (streams, H); packed from
    `lstm_pack`. `halves`: for i, f, o, g, c, h, None or a float16 (streams, >= steps, H)
    tensor that gets a copy (stream-major, as `to_half` writes). False (nothing done) where
    the kernel does not take these tensors."""
    steps, streams, width = gates.shape
    hidden = width // 4
    shapes = [
        (packed, (hidden // 8, 2, hidden, 2, 8)),
        (gates, (steps, streams, 4 * hidden)),
        (h, (streams, hidden)),
        (c, (streams, hidden)),
        (hidden_out, (steps, streams, hidden)),
        (cell_out, (steps, streams, hidden)),
    ]
    copies = _halves(halves, 6, (steps, streams, hidden))
    if hidden % 8 or copies is None:
        return False
    if any(not _on_cpu(tensor, torch.float32, shape) for tensor, shape in shapes):
        return False
    library.probe_lstm_layer(
        *(tensor.data_ptr() for tensor, _ in shapes), *copies, steps, streams, hidden
    )
    return True


def gru_pack(w_hh: torch.Tensor) -> torch.Tensor:
    """W_hh (3H, H), gate blocks r, z, n, laid out for `gru_layer`: for each block of 16
    units, three panels of a row of 16 weights per k (r, z of units 0-7; r, z of units 8-15;
    n of all 16): (H/16, 3, H, 2, 8)."""
    hidden = w_hh.shape[1]
    blocks = w_hh.reshape(3, hidden // 16, 2, 8, hidden)  # gate, block, half, unit, k
    reset_update = blocks[:2].permute(1, 2, 4, 0, 3)  # block, half, k, gate, unit
    candidate = blocks[2].permute(0, 3, 1, 2)[:, None]  # block, 1, k, half, unit
    return torch.cat([reset_update, candidate], dim=1).contiguous()


def gru_layer(
    packed: torch.Tensor,
    b_hh: torch.Tensor,
    gates: torch.Tensor,
    h: torch.Tensor,
    hidden_out: torch.Tensor,
    halves: list[torch.Tensor | None] | None = None,
) -> bool:
    """A GRU layer over a chunk (see probe_gru_layer): gates (steps, streams, 3H) = x W_ih^T
    + b_ih, overwritten with r, z, n; hidden_out (steps, streams, H) written from state h
    (streams, H); packed from `gru_pack`, b_hh (3H); `halves` for r, z, n, h as in
    `lstm_layer`. False (nothing done) where the kernel does not take these tensors."""
    steps, streams, width = gates.shape
    hidden = width // 3
    scratch = torch.empty(streams, 16)
    shapes = [
        (packed, (hidden // 16, 3, hidden, 2, 8)),
        (b_hh, (3 * hidden,)),
        (gates, (steps, streams, 3 * hidden)),
        (h, (streams, hidden)),
        (hidden_out, (steps, streams, hidden)),
        (scratch, (streams, 16)),
    ]
    copies = _halves(halves, 4, (steps, streams, hidden))
    if hidden % 16 or copies is None:
        return False
    if any(not _on_cpu(tensor, torch.float32, shape) for tensor, shape in shapes):
        return False
    library.probe_gru_layer(
        *(tensor.data_ptr() for tensor, _ in shapes), *copies, steps, streams, hidden
    )
    return True


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
    pointers = _pointers([rows.ctypes.data for rows in positives])
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
