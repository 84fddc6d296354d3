"""Exact AUROC of chosen units against binary features, from float16 sort-key histograms.

Search screens binary features by |r| and asks for the exact AUROC of each feature's top
candidates only (see `probe.search`). For one unit and one feature, AUROC is the
Mann-Whitney U over (positive, negative) pairs: P(x_pos > x_neg) + P(x_pos = x_neg) / 2.
Every float16 value maps to a 16-bit key that sorts like it, so one 65,536-bin histogram
of a unit's values over all characters orders them exactly and counts ties exactly
(saturated units tie a lot): no sort and no rounding. It gives each key its midrank A(v) =
#(values below v) + #(values equal to v) / 2, and with P positives U = sum over the
positives of A(v) - P^2 / 2 (each pair of positives adds 1/2 to that sum, whatever their
values): one lookup per positive, no histogram of them. The candidates' columns are gathered
in one read of each array that holds any; each then costs one bincount.
"""

from __future__ import annotations

import numpy as np
import torch

from probe import kernels
from probe.recording import Recording
from probe.scan import over_blocks, parallel
from probe.units import Unit

KEYS = 1 << 16  # float16 bit patterns
NEGATIVE_ZERO, POSITIVE_ZERO = 0x7FFF, 0x8000  # their sort keys: equal values, adjacent keys
GATHER_ROWS = 1 << 12  # rows per take when gathering candidate columns (tiles stay in cache)
GATHER_BYTES = 1 << 28  # candidate keys gathered per batch (256 MB)


def sort_keys(block: torch.Tensor) -> torch.Tensor:
    """int16 bit patterns of float16 values -> keys that order like the values once read as
    uint16 (all bits of negatives flipped, the sign bit of the rest). States are never NaN."""
    return ((block >> 15) | -32768).bitwise_xor_(block)


def _column_keys(array: np.ndarray, columns: list[int], out: np.ndarray) -> np.ndarray:
    """out = (len(columns), chars) uint16 sort keys of some columns of a (chars, units)
    float16 array: one read of the array in row blocks on every core (the compiled kernel, or
    numpy's take, which picks columns 2.5x faster than torch's index_select, then keys made
    and transposed by torch)."""
    picked = np.asarray(columns, dtype=np.intp)
    source, keys = array.view(np.int16), torch.from_numpy(out.view(np.int16))

    def gather(block):
        start, stop = block
        if kernels.library is not None:
            return kernels.column_keys(array, block, picked, out)
        rows = np.empty((min(GATHER_ROWS, stop - start), len(columns)), np.int16)
        for begin in range(start, stop, GATHER_ROWS):
            part = rows[: min(GATHER_ROWS, stop - begin)]
            np.take(source[begin : begin + len(part)], picked, axis=1, out=part)
            keys[:, begin : begin + len(part)] = sort_keys(torch.from_numpy(part)).t()

    for _ in over_blocks(gather, array):
        pass
    return out


def _histogram(keys: np.ndarray) -> np.ndarray:
    """Counts per uint16 key, -0.0 counted with +0.0 (equal values)."""
    values = torch.from_numpy(keys.view(np.int16))
    # int16 -> int32 is a fresh tensor, so masking it in place leaves `keys` alone and saves
    # a pass (1M keys, one thread: 3.5-4.1 ms -> 1.9-2.5 ms)
    counts = torch.bincount(values.int().bitwise_and_(0xFFFF), minlength=KEYS).numpy()
    counts[POSITIVE_ZERO] += counts[NEGATIVE_ZERO]
    counts[NEGATIVE_ZERO] = 0
    return counts


def midranks(everything: np.ndarray) -> np.ndarray:
    """Per key, #(values with a smaller key) + #(values with this key) / 2, from per-key
    counts of every value; -0.0's key gets +0.0's (they are equal, counted together)."""
    counts = everything.astype(np.float64)
    midrank = np.cumsum(counts) - counts / 2
    midrank[NEGATIVE_ZERO] = midrank[POSITIVE_ZERO]
    return midrank


def auroc_from_midranks(midrank: np.ndarray, positive_keys: np.ndarray, chars: int) -> float:
    """P(x_pos > x_neg) + P(x_pos = x_neg) / 2, given the positives' keys among `chars`
    values whose `midranks` these are (NaN without both classes)."""
    positives = len(positive_keys)
    pairs = float(positives) * float(chars - positives)
    if pairs == 0:
        return float("nan")
    return float((midrank[positive_keys].sum() - positives * positives / 2) / pairs)


def candidate_auroc(
    recording: Recording,
    units: list[Unit],
    chosen: np.ndarray,
    positive_rows: list[np.ndarray],
    bar=None,
) -> np.ndarray:
    """(units, features) exact AUROC where chosen[unit, feature], NaN elsewhere.

    positive_rows: per feature, the chars where it is 1 (in any order). Each layer/kind array
    holding chosen units is read once per batch of its chosen columns; a chosen unit costs one
    histogram of its column and a lookup per positive row of each of its features (units
    side by side on every core).
    """
    chars = recording.chars
    positive_rows = [np.asarray(rows, np.int64) for rows in positive_rows]
    auroc = np.full(chosen.shape, np.nan)
    groups: dict[tuple[int, str], list[int]] = {}
    for row in np.flatnonzero(chosen.any(1)):
        groups.setdefault((units[row].layer, units[row].kind), []).append(int(row))
    batch = max(1, GATHER_BYTES // (2 * chars))
    # One buffer for every array's keys: a fresh one each time page-faulted its way in, the
    # OS zeroing every page (3x512, 1M chars: 6 x 136 MB, ~12% of the search's time).
    widest = min(batch, max((len(rows) for rows in groups.values()), default=0))
    buffer = np.empty((widest, chars), np.uint16)

    def unit_auroc(task) -> list[float]:
        row, unit_keys = task
        features = np.flatnonzero(chosen[row])
        if kernels.library is not None:
            return list(kernels.auroc(unit_keys, [positive_rows[j] for j in features]))
        midrank = midranks(_histogram(unit_keys))
        return [auroc_from_midranks(midrank, unit_keys[positive_rows[j]], chars) for j in features]

    for (layer, kind), rows in groups.items():
        array = recording.array(layer, kind)
        for begin in range(0, len(rows), batch):
            part = rows[begin : begin + batch]
            keys = _column_keys(array, [units[row].index for row in part], buffer[: len(part)])
            for row, values in zip(part, parallel(unit_auroc, zip(part, keys)), strict=True):
                auroc[row, chosen[row]] = values
                if bar is not None:
                    bar.update(1)
    return auroc
