"""Exact AUROC of chosen units against binary features, from float16 sort-key histograms.

Search screens binary features by |r| and asks for the exact AUROC of each feature's top
candidates only (see `probe.search`). For one unit and one feature, AUROC is the
Mann-Whitney U over (positive, negative) pairs: P(x_pos > x_neg) + P(x_pos = x_neg) / 2.
Every float16 value maps to a 16-bit key that sorts like it, so two 65,536-bin histograms
(all characters, positives) order every value exactly and count ties exactly (saturated
units tie a lot): no sort and no rounding of the values. The candidates' columns are
gathered in one read of each array that holds any; each then costs two bincounts.
"""

from __future__ import annotations

import numpy as np
import torch

from probe.recording import Recording
from probe.units import Unit

KEYS = 1 << 16  # float16 bit patterns
NEGATIVE_ZERO, POSITIVE_ZERO = 0x7FFF, 0x8000  # their sort keys: equal values, adjacent keys
GATHER_ROWS = 1 << 15  # rows per read of a float16 array when gathering candidate columns
GATHER_BYTES = 1 << 28  # candidate keys gathered per batch (256 MB)


def sort_keys(block: torch.Tensor) -> torch.Tensor:
    """int16 bit patterns of float16 values -> keys that order like the values once read as
    uint16 (all bits of negatives flipped, the sign bit of the rest). States are never NaN."""
    return ((block >> 15) | -32768).bitwise_xor_(block)


def _column_keys(array: np.ndarray, columns: list[int]) -> np.ndarray:
    """(len(columns), chars) uint16 sort keys of some columns of a (chars, units) float16
    array: one read of the array in row chunks (numpy's take with out= picks columns 2.5x
    faster than torch's index_select), keys made and transposed by torch."""
    chars = array.shape[0]
    source = array.view(np.int16)
    picked = np.asarray(columns, dtype=np.intp)
    block = np.empty((min(chars, GATHER_ROWS), len(columns)), np.int16)
    out = torch.empty((len(columns), chars), dtype=torch.int16)
    for start in range(0, chars, GATHER_ROWS):
        rows = block[: min(GATHER_ROWS, chars - start)]
        np.take(source[start : start + len(rows)], picked, axis=1, out=rows)
        out[:, start : start + len(rows)] = sort_keys(torch.from_numpy(rows)).t()
    return out.numpy().view(np.uint16)


def _histogram(keys: np.ndarray) -> np.ndarray:
    """Counts per key, -0.0 counted with +0.0 (equal values)."""
    counts = np.bincount(keys, minlength=KEYS)
    counts[POSITIVE_ZERO] += counts[NEGATIVE_ZERO]
    counts[NEGATIVE_ZERO] = 0
    return counts


def auroc_from_histograms(positive: np.ndarray, everything: np.ndarray) -> float:
    """P(x_pos > x_neg) + P(x_pos = x_neg) / 2 from per-key counts (NaN without both classes)."""
    negative = everything - positive
    pairs = float(positive.sum()) * float(negative.sum())
    if pairs == 0:
        return float("nan")
    below = np.cumsum(negative) - negative  # negatives with a smaller key
    return float(positive @ (below + negative / 2) / pairs)


def candidate_auroc(
    recording: Recording, units: list[Unit], chosen: np.ndarray, positive: np.ndarray, bar=None
) -> np.ndarray:
    """(units, features) exact AUROC where chosen[unit, feature], NaN elsewhere.

    positive: (chars, features) 0/1 values. Each layer/kind array holding chosen units is read
    once per batch of its chosen columns; a chosen unit costs one histogram of its column and
    one of its values on each of its features' positive rows.
    """
    chars = recording.chars
    positive_rows = [np.flatnonzero(positive[:, j]) for j in range(positive.shape[1])]
    auroc = np.full(chosen.shape, np.nan)
    groups: dict[tuple[int, str], list[int]] = {}
    for row in np.flatnonzero(chosen.any(1)):
        groups.setdefault((units[row].layer, units[row].kind), []).append(int(row))
    batch = max(1, GATHER_BYTES // (2 * chars))
    for (layer, kind), rows in groups.items():
        array = recording.array(layer, kind)
        for begin in range(0, len(rows), batch):
            part = rows[begin : begin + batch]
            keys = _column_keys(array, [units[row].index for row in part])
            for row, unit_keys in zip(part, keys):
                everything = _histogram(unit_keys)
                for feature in np.flatnonzero(chosen[row]):
                    on = _histogram(unit_keys[positive_rows[feature]])
                    auroc[row, feature] = auroc_from_histograms(on, everything)
                if bar is not None:
                    bar.update(1)
    return auroc
