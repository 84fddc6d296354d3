"""Out-of-core passes over a recording's float16 (chars, units) arrays, on every core.

A pass cuts each array into row blocks and runs them on a pool of torch.get_num_threads()
threads, each running torch single-threaded over cache-sized chunks of its block. Measured
on 2 cores: 2.4x faster than one loop over 8 MB chunks on torch's own two threads, whose
OpenMP barrier after every small op stalls whenever a thread loses its time slice. torch's
kernels, numpy's ufuncs and numpy's take release the GIL, so the workers run side by side.
Block results are sums, counts or extremes: the caller folds them in any order. Where the
compiled kernels are built (`probe.kernels`), a block of the r pass is one kernel call.

Nothing of size (chars x units) is ever held in float32: each chunk is cast by torch, which
vectorises the float16 cast (a mixed float16 - float32 op is 4x slower than cast, then shift).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from probe import kernels

BLOCK_ELEMENTS = 1 << 25  # values per task (64 MB of float16): many tasks balance the cores
CHUNK_ELEMENTS = 1 << 20  # values per chunk of a task (4 MB as float32: stays in cache)


def chunk_rows(array: np.ndarray) -> int:
    """Rows per chunk: about CHUNK_ELEMENTS values (smaller chunks pay per-op overheads)."""
    return min(array.shape[0], max(256, CHUNK_ELEMENTS // max(1, array.shape[1])))


def row_blocks(array: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) row ranges of about BLOCK_ELEMENTS values, whole chunks each."""
    chunk = chunk_rows(array)
    rows = max(1, BLOCK_ELEMENTS // max(1, array.shape[1]) // chunk) * chunk
    return [(start, min(start + rows, array.shape[0])) for start in range(0, array.shape[0], rows)]


def chunks(array: np.ndarray, block: tuple[int, int]) -> Iterator[tuple[int, int]]:
    """(start, stop) chunks of chunk_rows rows within a block."""
    rows = chunk_rows(array)
    for start in range(block[0], block[1], rows):
        yield start, min(start + rows, block[1])


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """A torch view of a (read-only) memmap; torch only reads it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """One pool per thread count, kept for the process: a search makes dozens of passes, and
    starting their threads anew for each cost ~5% of a search (300k chars, 3,072 units). Keyed
    by process too: a forked child has none of its parent's threads."""
    key = (threads, os.getpid())
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix="probe-scan")
    return _pools[key]


def parallel(task: Callable, items: Iterable) -> Iterator:
    """task(item) for every item on a pool of torch.get_num_threads() threads, results in order.

    Each worker runs torch on one thread: OpenMP's and MKL's thread counts are per thread,
    so the caller's own count is untouched; the process-wide default that threads started
    meanwhile would inherit is put back afterwards.
    """
    items = list(items)
    threads = torch.get_num_threads()
    if threads == 1 or len(items) <= 1:
        yield from map(task, items)
        return

    def single_threaded(item):
        torch.set_num_threads(1)
        return task(item)

    try:
        yield from _pool(threads).map(single_threaded, items)
    finally:
        torch.set_num_threads(threads)


def over_blocks(task: Callable, array: np.ndarray, bar=None) -> Iterator:
    """task(block) for every row block of the array on every core, yielded in order as they
    finish (so a caller that sums them holds few at once); the bar (if any) counts values."""
    blocks = row_blocks(array)
    for (start, stop), result in zip(blocks, parallel(task, blocks), strict=True):
        if bar is not None:
            bar.update((stop - start) * array.shape[1])
        yield result


def moments(
    array: np.ndarray, columns: torch.Tensor, need_range: bool, bar, positives=None, steps=None
):
    """Per unit: covariance with every feature, variance, and min/max (for the AUROC bins).

    `columns` (features + 1, chars) are the centered features plus a row of ones, so one GEMM
    per chunk gives both N * cov and sum(x). Units are shifted by an early mean against float32
    cancellation; chunk sums are float32, their running totals float64.

    The compiled kernel (probe.kernels) makes the same sums in one fused sweep per block, and
    takes binary features as the sorted rows of their 1s (positives: {column: rows}): for a
    centered binary column y - p, sum (y - p) x = (sum of x over the 1s) - p * sum(x); and
    features that change by a fixed step but at few chars as their steps ({column: Steps}).
    """
    chars, units = array.shape
    shift = torch.from_numpy(np.asarray(array[: min(chars, 4096)], dtype=np.float32).mean(0))
    source = as_tensor(array)
    positives, steps = positives or {}, steps or {}
    positives = {j: rows for j, rows in positives.items() if j not in steps}
    dense = [j for j in range(columns.shape[0] - 1) if j not in positives and j not in steps]

    def block_kernel(block):
        cross = np.zeros((columns.shape[0], units))
        sums, squares = np.zeros((2, units))
        low, high = np.full(units, np.inf, np.float32), np.full(units, -np.inf, np.float32)
        out = np.zeros((len(dense) + len(positives) + len(steps), units))
        weights = [columns.numpy()[j] for j in dense]
        ranges = (low, high) if need_range else ()
        kernels.moments(array, block, weights, list(positives.values()), shift.numpy(), out,
                        sums, squares, *ranges, steps=list(steps.values()))  # fmt: skip
        cross[dense] = out[: len(dense)]
        for k, (j, rows) in enumerate(positives.items()):
            cross[j] = out[len(dense) + k] - len(rows) / chars * sums
        cross[list(steps)] = out[len(dense) + len(positives) :]
        cross[-1] = sums
        return tuple(map(torch.from_numpy, (cross, squares, low, high)))

    def block_moments(block):
        cross = torch.zeros(columns.shape[0], units, dtype=torch.float64)
        sum_xx = torch.zeros(units, dtype=torch.float64)
        low = torch.full((units,), np.inf)
        high = torch.full((units,), -np.inf)
        buffer = torch.empty(chunk_rows(array), units)
        for start, stop in chunks(array, block):
            x = buffer[: stop - start].copy_(source[start:stop]).sub_(shift)
            cross += columns[:, start:stop] @ x
            if need_range:
                torch.minimum(low, x.amin(0), out=low)
                torch.maximum(high, x.amax(0), out=high)
            sum_xx += x.square_().sum(0)
        return cross, sum_xx, low, high

    task = block_kernel if kernels.library is not None else block_moments
    parts = list(over_blocks(task, array, bar))
    cross = sum(part[0] for part in parts).numpy()
    sum_xx = sum(part[1] for part in parts).numpy()
    low = torch.stack([part[2] for part in parts]).amin(0).numpy() + shift.numpy()
    high = torch.stack([part[3] for part in parts]).amax(0).numpy() + shift.numpy()
    mean_x = cross[-1] / chars
    var_x = np.maximum(sum_xx / chars - mean_x**2, 0.0)
    return cross[:-1].T / chars, var_x, low, high


# ----------------------------------------------------------------------------- binned ranks


def _binning(low: np.ndarray, high: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(scale, bias) so that int(x * scale + bias) = unit * bins + bin, in two fused ufuncs.

    Bins span [low, high] in bins - 0.5 bin widths starting a quarter bin in, so float32
    rounding can never push a value into a neighbouring unit's bins.
    """
    span = (high - low).astype(np.float64)
    scale = np.where(span > 0, (bins - 0.5) / np.where(span > 0, span, 1), 0)
    offsets = np.arange(len(low)) * bins + 0.25
    return scale.astype(np.float32), (offsets - low * scale).astype(np.float32)


def _binned_chunks(array, scale, bias, block) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, flat unit * bins + bin index of every value) for each chunk of a block."""
    source = as_tensor(array)
    buffer = torch.empty(chunk_rows(array), array.shape[1])
    indices = np.empty(tuple(buffer.shape), np.int32)
    for start, stop in chunks(array, block):
        x = buffer[: stop - start].copy_(source[start:stop]).numpy()
        x *= scale
        x += bias
        np.copyto(indices[: stop - start], x, casting="unsafe")  # truncation = floor: all >= 0
        yield start, stop, indices[: stop - start]


def rank_sums(array, low, high, columns: torch.Tensor, bins: int, bar) -> np.ndarray:
    """sum_t c[t, unit] * column[t] for centered midranks c: (units, columns).

    Two passes: a per-unit histogram of all chars gives each bin's centered midrank
    (rank - (N+1)/2) / N; then each value is replaced by its bin's midrank and multiplied
    into the columns by one GEMM per chunk.
    """
    chars, units = array.shape
    scale, bias = _binning(low, high, bins)

    def block_counts(block):
        counts = np.zeros(units * bins, np.int64)
        for _, _, flat in _binned_chunks(array, scale, bias, block):
            counts += np.bincount(flat.ravel(), minlength=units * bins)
        return counts

    counts = sum(over_blocks(block_counts, array, bar))
    below = np.cumsum(counts) - counts  # bins of earlier units included: subtract them below
    below -= np.repeat(below[::bins], bins)
    table = ((below + (counts + 1) / 2 - (chars + 1) / 2) / chars).astype(np.float32)

    def block_sums(block):
        sums = torch.zeros((units, columns.shape[1]), dtype=torch.float64)
        ranks = np.empty((chunk_rows(array), units), np.float32)
        for start, stop, flat in _binned_chunks(array, scale, bias, block):
            np.take(table, flat, out=ranks[: stop - start])
            sums += torch.from_numpy(ranks[: stop - start]).T @ columns[start:stop]
        return sums

    return sum(over_blocks(block_sums, array, bar)).numpy()
