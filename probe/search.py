"""Search: rank every recorded unit against text features, and find what one unit responds to.

Scoring is chunked and out of core over the float16 memmaps; nothing of size (chars x units) is
ever held in float32. All features (and, for the shift null, their circular shifts) are columns
of one small matrix F, so each chunk is read and cast once per pass (by torch: numpy's float16
cast is not vectorised) and every feature is scored by one GEMM X^T F per chunk:

* Pearson r: features are centered exactly (float64) before the pass, so X^T F is N * cov;
  per-unit sum(x) and sum(x^2) give the variances. Units are shifted by their first-chunk mean
  so the float32 sums do not cancel on cells that sit far from zero.
* AUROC (binary features): Mann-Whitney on ranks. AUROC = 0.5 + N * sum_pos(c) / (n_pos n_neg)
  where c is a unit's centered rank (rank - (N+1)/2) / N, so it is the same GEMM against the rank-
  transformed chunk. Exact ranks need a sort; instead each unit's values are quantized into
  BINS equal-width bins over its min..max (from the first pass) and every value gets its bin's
  midrank. That is exactly the AUROC of the binned values with ties counted 1/2: it differs from
  the exact AUROC only through positive/negative pairs that share a bin (tests: < 0.005).

So a search costs three reads of each array (moments + range, bin histogram, ranks); without
binary features only the first.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from probe.errors import ProbeError
from probe.features import compute
from probe.fileio import sha256_text
from probe.recording import Recording
from probe.units import Unit

BINS = 4096  # per-unit AUROC bins: as fine as float16 near saturation (1024: errors to 0.01)
CHUNK_ELEMENTS = 1 << 22  # values per chunk (16 MB as float32): big GEMMs, cache-sized buffers
SHIFTS = 5  # circular shifts of each feature for the shift null
SHIFT_SEED = 0
FEATURE_CACHE_SIZE = 32
TABLE_CACHE_SIZE = 32  # midrank tables (units * BINS float32 each, 4 MB for 256 units)
SIGNS = ("positive", "negative", "absolute")

_feature_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_table_cache: OrderedDict[tuple, tuple] = OrderedDict()


def feature_values(recording: Recording, name: str) -> np.ndarray:
    """A feature of the recording's text (float32, read-only), cached by text hash and name."""
    sha = recording.manifest.get("text_sha256") or sha256_text(recording.text)
    key = (sha, name)
    if key in _feature_cache:
        _feature_cache.move_to_end(key)
        return _feature_cache[key]
    values = compute(name, recording.text)
    values.setflags(write=False)
    _feature_cache[key] = values
    while len(_feature_cache) > FEATURE_CACHE_SIZE:
        _feature_cache.popitem(last=False)
    return values


def is_binary(values: np.ndarray) -> bool:
    """0/1-valued features are judged by AUROC, anything else by Pearson r."""
    return bool(np.isin(values, (0.0, 1.0)).all())


def shift_offsets(chars: int, count: int = SHIFTS, seed: int = SHIFT_SEED) -> np.ndarray:
    """Seeded circular-shift offsets in [10%, 90%] of the text: far enough to break alignment."""
    rng = np.random.default_rng(seed)
    return rng.integers(max(1, chars // 10), max(2, chars * 9 // 10), size=count)


# ----------------------------------------------------------------------------- the scan


def _selected(recording: Recording, kinds: list[str] | None) -> list[tuple[int, str]]:
    if kinds is None:
        return recording.layer_kinds
    have = sorted({k for _, k in recording.layer_kinds})
    unknown = [k for k in kinds if k not in have]
    if unknown:
        raise ProbeError(f"recording has no kind {unknown[0]!r} (has {', '.join(have)})")
    return [(layer, kind) for layer, kind in recording.layer_kinds if kind in kinds]


def _chunk_rows(array: np.ndarray) -> int:
    """Rows per chunk: about CHUNK_ELEMENTS values (measured: smaller chunks are much slower,
    since the per-chunk bincount output and call overheads stop amortizing)."""
    return min(array.shape[0], max(256, CHUNK_ELEMENTS // max(1, array.shape[1])))


def _chunks(array: np.ndarray, bar: tqdm):
    """(start, stop, float16 rows) blocks of _chunk_rows rows."""
    rows = _chunk_rows(array)
    for start in range(0, array.shape[0], rows):
        block = array[start : start + rows]
        yield start, start + len(block), block
        bar.update(block.size)


def _to_float32(block: np.ndarray, out: np.ndarray) -> np.ndarray:
    """float16 -> float32 into `out`: torch's cast is vectorised (F16C), numpy's is ~5x slower."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # read-only memmap: torch only reads it
        torch.from_numpy(out).copy_(torch.from_numpy(np.ascontiguousarray(block)))
    return out


def _buffer(array: np.ndarray) -> np.ndarray:
    """A reusable float32 chunk buffer, so no chunk allocates."""
    return np.empty((_chunk_rows(array), array.shape[1]), np.float32)


def _moments(array, columns, need_range: bool, bar):
    """Per unit: covariance with every column, variance, and min/max (for the AUROC bins).

    `columns` are centered features plus a last column of ones, so one GEMM gives both
    N * cov and sum(x). Units are shifted by an early mean against float32 cancellation.
    """
    chars, units = array.shape
    shift = np.asarray(array[: min(chars, 4096)], dtype=np.float32).mean(0)
    cross = np.zeros((units, columns.shape[1]))
    sum_xx = np.zeros(units)
    low = np.full(units, np.inf, np.float32)
    high = np.full(units, -np.inf, np.float32)
    buffer = _buffer(array)
    for start, stop, block in _chunks(array, bar):
        x = _to_float32(block, buffer[: stop - start])
        x -= shift
        cross += x.T @ columns[start:stop]
        sum_xx += np.einsum("ij,ij->j", x, x)
        if need_range:
            np.minimum(low, x.min(0), out=low)
            np.maximum(high, x.max(0), out=high)
    mean_x = cross[:, -1] / chars
    var_x = np.maximum(sum_xx / chars - mean_x**2, 0.0)
    return cross[:, :-1] / chars, var_x, low + shift, high + shift


def _binning(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale, bias) so that int(x * scale + bias) = unit * BINS + bin, in two fused ufuncs.

    Bins span [low, high] in BINS - 0.5 bin widths starting a quarter bin in, so float32
    rounding can never push a value into a neighbouring unit's bins.
    """
    span = (high - low).astype(np.float64)
    scale = np.where(span > 0, (BINS - 0.5) / np.where(span > 0, span, 1), 0)
    offsets = np.arange(len(low)) * BINS + 0.25
    return scale.astype(np.float32), (offsets - low * scale).astype(np.float32)


def _bin_indices(block, scale, bias, buffer, indices) -> np.ndarray:
    """Flat (unit * BINS + bin) index of every value of a float16 block, into `indices`."""
    x = _to_float32(block, buffer[: len(block)])
    x *= scale
    x += bias
    np.copyto(indices[: len(block)], x, casting="unsafe")  # truncation = floor: all >= 0
    return indices[: len(block)]


def _midrank_table(array, low, high, bar):
    """(scale, bias, table): each bin's centered midrank (rank - (N+1)/2) / N, per unit.

    One pass: a per-unit histogram of all chars. It does not depend on the features, so it is
    cached per array file (keyed by path and modification time) and a repeated search skips it.
    """
    file = getattr(array, "filename", None)
    key = None
    if file:
        stat = os.stat(file)
        key = (file, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key in _table_cache:
        _table_cache.move_to_end(key)
        bar.update(array.size)
        return _table_cache[key]
    chars, units = array.shape
    scale, bias = _binning(low, high)
    buffer = _buffer(array)
    indices = np.empty(buffer.shape, np.int32)
    counts = np.zeros(units * BINS, np.int64)
    for _, _, block in _chunks(array, bar):
        flat = _bin_indices(block, scale, bias, buffer, indices)
        counts += np.bincount(flat.ravel(), minlength=units * BINS)
    below = np.cumsum(counts) - counts  # bins of earlier units included: subtract them below
    below -= np.repeat(below[::BINS], BINS)
    table = ((below + (counts + 1) / 2 - (chars + 1) / 2) / chars).astype(np.float32)
    if key is not None:
        _table_cache[key] = (scale, bias, table)
        while len(_table_cache) > TABLE_CACHE_SIZE:
            _table_cache.popitem(last=False)
    return scale, bias, table


def _rank_sums(array, low, high, columns, bar) -> np.ndarray:
    """sum_t c[t, unit] * column[t] for centered midranks c: (units, binary columns).

    Each value is replaced by its bin's midrank and multiplied into the columns by one GEMM.
    """
    scale, bias, table = _midrank_table(array, low, high, bar)
    buffer = _buffer(array)
    indices = np.empty(buffer.shape, np.int32)
    sums = np.zeros((array.shape[1], columns.shape[1]))
    ranks = np.empty_like(buffer)
    for start, stop, block in _chunks(array, bar):
        flat = _bin_indices(block, scale, bias, buffer, indices)
        np.take(table, flat, out=ranks[: stop - start])
        sums += ranks[: stop - start].T @ columns[start:stop]
    return sums


def _scan(recording, values: np.ndarray, kinds, progress: bool):
    """(units, r, auroc) of every selected unit against every column of values (chars, cols)."""
    chars = recording.chars
    if values.shape[0] != chars:
        raise ProbeError(f"feature has {values.shape[0]} values, recording has {chars} chars")
    binary = np.array([is_binary(values[:, j]) for j in range(values.shape[1])], bool)
    mean = values.mean(0, dtype=np.float64)
    var_f = values.var(0, dtype=np.float64)
    columns = np.empty((chars, values.shape[1] + 1), np.float32)  # centered features, ones
    np.subtract(values, mean.astype(np.float32), out=columns[:, :-1])
    columns[:, -1] = 1
    binary_columns = np.ascontiguousarray(columns[:, :-1][:, binary])
    positives = mean[binary] * chars
    pairs = positives * (chars - positives)

    selected = _selected(recording, kinds)
    passes = 3 if binary.any() else 1
    total = passes * sum(recording.array(l, k).size for l, k in selected)
    units, r_parts, auroc_parts = [], [], []
    with tqdm(total=total, unit="val", unit_scale=True, disable=not progress, desc="search") as bar:
        for layer, kind in selected:
            array = recording.array(layer, kind)
            units += [Unit(layer, kind, i) for i in range(array.shape[1])]
            cov, var_x, low, high = _moments(array, columns, binary.any(), bar)
            with np.errstate(divide="ignore", invalid="ignore"):
                r_parts.append(cov / np.sqrt(var_x[:, None] * var_f[None, :]))
            auroc = np.full((array.shape[1], values.shape[1]), np.nan)
            if binary.any():
                sums = _rank_sums(array, low, high, binary_columns, bar)
                with np.errstate(divide="ignore", invalid="ignore"):
                    auroc[:, binary] = 0.5 + chars * sums / pairs
            auroc_parts.append(auroc)
    r = np.concatenate(r_parts)
    r[~np.isfinite(r)] = np.nan
    auroc = np.clip(np.concatenate(auroc_parts), 0, 1)
    auroc[:, np.flatnonzero(binary)[pairs == 0]] = np.nan
    return units, r, auroc, binary


def _feature_matrix(recording, features) -> tuple[list[str], np.ndarray]:
    names = list(dict.fromkeys(features))  # each feature once, in the order asked
    if isinstance(features, dict):
        arrays = [np.asarray(features[name], dtype=np.float32) for name in names]
    else:
        arrays = [feature_values(recording, name) for name in names]
    if not names:
        raise ProbeError("no features to search for")
    for name, array in zip(names, arrays, strict=True):
        if array.shape != (recording.chars,):
            raise ProbeError(
                f"feature {name} has shape {array.shape}, recording has {recording.chars} chars"
            )
    return names, np.stack(arrays, axis=1)


def _scores(r: np.ndarray, auroc: np.ndarray, binary: np.ndarray) -> np.ndarray:
    """max(auroc, 1 - auroc) for binary columns, |r| for continuous ones."""
    return np.where(binary[None, :], np.maximum(auroc, 1 - auroc), np.abs(r))


def unit_scores(
    recording: Recording, features, kinds: list[str] | None = None, progress: bool = False
) -> pd.DataFrame:
    """Every selected unit against every feature (names or {name: values}), one row each."""
    names, values = _feature_matrix(recording, features)
    units, r, auroc, binary = _scan(recording, values, kinds, progress)
    return _table(names, units, r, auroc, _scores(r, auroc, binary))


def _table(names, units, r, auroc, score) -> pd.DataFrame:
    count = len(units)
    return pd.DataFrame(
        {
            "feature": np.repeat(names, count),
            "unit": [str(u) for u in units] * len(names),
            "layer": [u.layer for u in units] * len(names),
            "kind": [u.kind for u in units] * len(names),
            "index": [u.index for u in units] * len(names),
            "r": r.T.ravel(),
            "auroc": auroc.T.ravel(),
            "score": score.T.ravel(),
        }
    )


def search(
    recording: Recording,
    features,
    kinds: list[str] | None = None,
    top: int = 10,
    nulls: bool = True,
    progress: bool = False,
) -> pd.DataFrame:
    """The `top` best units per feature, with two nulls to judge whether a score means anything.

    null_init: the best score over all units of the random-init twin (same shape, on its text;
    NaN without a twin or for features given as arrays). null_shift: the best score over all
    units against the feature circularly shifted, max over SHIFTS seeded offsets: what a feature
    with the same statistics but no alignment reaches. Both are computed in the same passes.
    """
    if top < 1:
        raise ProbeError("top must be >= 1")
    names, values = _feature_matrix(recording, features)
    count = len(names)
    if nulls:
        shifted = [np.roll(values, offset, axis=0) for offset in shift_offsets(recording.chars)]
        values = np.concatenate([values, *shifted], axis=1)
    units, r, auroc, binary = _scan(recording, values, kinds, progress)
    score = _scores(r, auroc, binary)
    null_shift = np.full(count, np.nan)
    null_init = np.full(count, np.nan)
    if nulls:
        best_shifted = _nanmax(score[:, count:], axis=0).reshape(SHIFTS, count)
        null_shift = _nanmax(best_shifted, axis=0)
        twin = recording.init_twin
        if twin is not None and not isinstance(features, dict):
            twin_scores = unit_scores(twin, names, kinds)
            null_init = twin_scores.groupby("feature", sort=False)["score"].max().loc[names].values

    table = _table(names, units, r[:, :count], auroc[:, :count], score[:, :count])
    table["measure"] = np.repeat(np.where(binary[:count], "auroc", "r"), len(units))
    table["null_init"] = np.repeat(null_init, len(units))
    table["null_shift"] = np.repeat(null_shift, len(units))
    table["order"] = np.arange(len(table))
    best = (
        table.sort_values(
            ["feature", "score", "order"],
            ascending=[True, False, True],
            na_position="last",
            kind="stable",
        )
        .groupby("feature", sort=False)
        .head(top)
    )
    best = best.set_index("feature").loc[names].reset_index()  # features in the asked order
    best["rank"] = best.groupby("feature", sort=False).cumcount() + 1
    columns = [
        "feature",
        "rank",
        "unit",
        "layer",
        "kind",
        "index",
        "r",
        "auroc",
        "score",
        "measure",
        "null_init",
        "null_shift",
    ]
    return best[columns].reset_index(drop=True)


def _nanmax(values: np.ndarray, axis: int) -> np.ndarray:
    """np.nanmax without the all-NaN warning (all-NaN gives NaN)."""
    filled = np.where(np.isnan(values), -np.inf, values).max(axis=axis)
    return np.where(np.isinf(filled), np.nan, filled)


# ----------------------------------------------------------------------------- one unit


def top_contexts(
    recording: Recording, unit, k: int = 8, width: int = 40, sign: str = "positive"
) -> pd.DataFrame:
    """The k strongest activations of a unit, at least `width` chars apart, with their text.

    The window is `width` chars ending a quarter width after the char: a state summarizes what
    came before it. sign: positive (highest), negative (lowest) or absolute (largest |value|).
    """
    if sign not in SIGNS:
        raise ProbeError(f"sign must be one of {', '.join(SIGNS)}, got {sign!r}")
    if k < 1 or width < 1:
        raise ProbeError("k and width must be >= 1")
    values = recording.unit(unit)
    strength = {"positive": values, "negative": -values, "absolute": np.abs(values)}[sign]
    order = np.argsort(-strength, kind="stable")
    blocked = np.zeros(len(values), bool)
    picked = []
    for position in order:
        if blocked[position]:
            continue
        picked.append(int(position))
        blocked[max(0, position - width + 1) : position + width] = True
        if len(picked) == k:
            break
    rows = []
    for position in picked:
        stop = min(len(values), position + 1 + width // 4)
        start = max(0, stop - width)
        rows.append(
            {
                "position": position,
                "value": float(values[position]),
                "start": start,
                "stop": stop,
                "context": recording.text[start:stop],
            }
        )
    return pd.DataFrame(rows, columns=["position", "value", "start", "stop", "context"])


# ----------------------------------------------------------------------------- brush and match


def _check_span(recording: Recording, start: int, stop: int) -> None:
    if not 0 <= start < stop <= recording.chars:
        raise ProbeError(f"span [{start}, {stop}) is not inside the text (0..{recording.chars})")


def units_on_span(
    recording: Recording,
    start: int,
    stop: int,
    threshold: float = 0.5,
    kinds: list[str] | None = None,
    off_outside: int = 0,
) -> list[Unit]:
    """LSTMVis brush: units >= threshold on every char of [start, stop), best mean first.

    With off_outside=n they must also be < threshold on the n chars just before and after the
    span (where the text has them), so units that are simply always on drop out.
    """
    _check_span(recording, start, stop)
    if off_outside < 0:
        raise ProbeError("off_outside must be >= 0")
    found = []
    for layer, kind in _selected(recording, kinds):
        array = recording.array(layer, kind)
        inside = np.asarray(array[start:stop], dtype=np.float32)
        keep = (inside >= threshold).all(axis=0)
        if off_outside:
            before = np.asarray(array[max(0, start - off_outside) : start], dtype=np.float32)
            after = np.asarray(array[stop : stop + off_outside], dtype=np.float32)
            keep &= (before < threshold).all(axis=0) & (after < threshold).all(axis=0)
        means = inside.mean(axis=0)
        found += [(float(means[i]), Unit(layer, kind, int(i))) for i in np.flatnonzero(keep)]
    found.sort(key=lambda pair: (-pair[0], pair[1]))
    return [unit for _, unit in found]


def _units_matrix(recording: Recording, units: list[Unit]) -> np.ndarray:
    """(chars, len(units)) float32, reading each layer/kind array once in chunks."""
    out = np.empty((recording.chars, len(units)), np.float32)
    groups: dict[tuple[int, str], list[int]] = {}
    for column, unit in enumerate(units):
        groups.setdefault((unit.layer, unit.kind), []).append(column)
    for (layer, kind), columns in groups.items():
        array = recording.array(layer, kind)
        indices = [units[c].index for c in columns]
        if max(indices) >= array.shape[1]:
            raise ProbeError(f"unit index out of range: layer {layer} {kind} has {array.shape[1]}")
        rows = _chunk_rows(array)
        for begin in range(0, recording.chars, rows):
            out[begin : begin + rows, columns] = array[begin : begin + rows][:, indices]
    return out


def match_spans(
    recording: Recording,
    units: list,
    threshold: float = 0.5,
    min_length: int = 2,
    top: int = 20,
    exclude: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """LSTMVis match: the stretches of text where the given units are on together.

    Spans are maximal runs where all units are >= threshold. If no such run (of min_length,
    outside `exclude`) exists anywhere, runs where a majority of them is on are returned instead.
    Ranked by the mean fraction of units on, then length. Spans overlapping `exclude` (the
    brushed span itself) are dropped.
    """
    units = [Unit.parse(u) for u in units]
    if not units:
        raise ProbeError("match_spans needs at least one unit")
    on = (_units_matrix(recording, units) >= threshold).sum(axis=1)
    total = len(units)
    spans = _runs(on, total, min_length, exclude)
    if spans.empty and total > 1:
        spans = _runs(on, total // 2 + 1, min_length, exclude)
    spans["units_on"] = spans["units_on"] / 1.0
    spans["score"] = spans["units_on"] / total
    spans = spans.sort_values(["score", "length", "start"], ascending=[False, False, True])
    spans = spans.head(top).reset_index(drop=True)
    spans["text"] = [
        recording.text[a:b] for a, b in zip(spans["start"], spans["stop"], strict=True)
    ]
    return spans[["start", "stop", "length", "units_on", "score", "text"]]


def _runs(on: np.ndarray, required: int, min_length: int, exclude) -> pd.DataFrame:
    """Maximal runs where on >= required, with the mean number of units on over each."""
    mask = np.concatenate([[False], on >= required, [False]])
    edges = np.flatnonzero(np.diff(mask.astype(np.int8)))
    starts, stops = edges[0::2], edges[1::2]
    keep = stops - starts >= min_length
    if exclude is not None:
        keep &= (stops <= exclude[0]) | (starts >= exclude[1])
    starts, stops = starts[keep], stops[keep]
    cumulative = np.concatenate([[0], np.cumsum(on)])
    mean_on = (cumulative[stops] - cumulative[starts]) / np.maximum(stops - starts, 1)
    return pd.DataFrame(
        {"start": starts, "stop": stops, "length": stops - starts, "units_on": mean_on}
    )
