"""Search: rank every recorded unit against text features.

Scoring is chunked and out of core over the float16 memmaps, on every core (`probe.scan`).
All features (and, for the shift null, their circular shifts) are rows of one small matrix F,
so each chunk is read and cast once and every feature is scored by one GEMM F X per chunk
(the compiled kernel, `probe.kernels`, takes binary features as the rows of their 1s, and
features that move by a fixed step a char but for a few jumps as those jumps: `_stepped`):

* Pearson r: features are centered exactly (float64) before the pass, so F X is N * cov;
  per-unit sum(x) and sum(x^2) give the variances. Units are shifted by their first-chunk mean
  so the float32 sums do not cancel on cells that sit far from zero.
* AUROC (binary features), two paths:

  - `search` screens: point-biserial r is Pearson r against the 0/1 feature, so each binary
    feature (and each shifted copy, for the shift null) gives an exact AUROC only to its
    `candidates` top-|r| units, from two histograms of their float16 sort keys (all chars,
    the feature's positives; see `probe.auroc`): exact, ties averaged. A binary feature ranks
    its candidates by max(AUROC, 1 - AUROC): the exhaustive ranking whenever the best-AUROC
    units are among them (tests compare the two).
  - `unit_scores` is the exhaustive, slow path: AUROC for every unit, by the same GEMM against
    rank-transformed chunks, each value replaced by the midrank of its bin among BINS equal
    bins over the unit's range: exact but for positive/negative pairs sharing a bin (< 0.005).
    It costs three reads of each array (moments and range, bin histogram, ranks).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from probe import kernels
from probe.auroc import candidate_auroc
from probe.errors import ProbeError, whole_number
from probe.kernels import Steps
from probe.profiles import FeatureProfile, feature_profile, feature_values, named_profile
from probe.recording import Recording
from probe.scan import moments, rank_sums
from probe.spans import (  # noqa: F401 (re-exported: spans used to live here)
    SIGNS,
    match_spans,
    selected_arrays,
    top_contexts,
    units_matrix,
    units_on_span,
)
from probe.units import Unit, name_list

BINS = 4096  # exhaustive path's AUROC bins: float16-fine near saturation (1024: errors 0.01)
SHIFTS = 5  # circular shifts of each feature for the shift null
SHIFT_SEED = 0


class ConstantFeatureWarning(UserWarning):
    """A feature has one value on every char of the text: no unit can track it, so `search`
    leaves it out (its rows would rank units by NaN scores)."""


RESULT_COLUMNS = (
    "feature rank unit layer kind index r auroc score measure null_init null_shift".split()
)


def shift_offsets(chars: int, count: int = SHIFTS, seed: int = SHIFT_SEED) -> np.ndarray:
    """Seeded circular-shift offsets in [10%, 90%] of the text: far enough to break alignment."""
    rng = np.random.default_rng(seed)
    return rng.integers(max(1, chars // 10), max(2, chars * 9 // 10), size=count)


# ----------------------------------------------------------------------------- the scan


def _shifted(rows: np.ndarray, offsets: tuple[int, ...], out: np.ndarray | None = None):
    """(len(offsets) * features, chars): each row circularly shifted by each offset, offset
    by offset (np.roll's direction: value t lands at t + offset). Written into `out` where
    given: on a big text the copies take gigabytes, and a second set would double that."""
    features, chars = rows.shape
    if out is None:
        out = np.empty((len(offsets) * features, chars), rows.dtype)
    for k, offset in enumerate(offsets):
        block, offset = out[k * features : (k + 1) * features], int(offset) % chars
        block[:, offset:] = rows[:, : chars - offset]
        block[:, :offset] = rows[:, chars - offset :]
    return out


def _positive_rows(profiles, binary: np.ndarray, offsets, chars: int) -> dict[int, np.ndarray]:
    """{column: sorted rows where it is 1} for the binary columns (offset-major, feature-minor:
    each binary feature's 1s, circularly shifted by each offset)."""
    features = len(profiles)
    positives = {}
    for column in np.flatnonzero(binary):
        rows, offset = profiles[column % features].ones, int(offsets[column // features])
        positives[int(column)] = _rotate(rows, offset, chars)[0]
    return positives


def _rotate(rows: np.ndarray, offset: int, chars: int) -> tuple[np.ndarray, int]:
    """Sorted rows, each moved on by offset circularly (still sorted: those that pass the
    end land at the start), and how many places the list was rolled."""
    offset %= chars
    wrap = int(np.searchsorted(rows, chars - offset))
    return np.concatenate([rows[wrap:] + offset - chars, rows[:wrap] + offset]), wrap


def _stepped(profiles, columns, offsets, chars: int) -> dict[int, Steps]:
    """{column: its Steps} for the columns the r pass's kernel sums faster from their steps
    (see FeatureProfile; shifted copies jump as often and have as many 1s), columns: as in
    _scan."""
    stepped = {}
    for j, profile in enumerate(profiles):
        if profile.slope is None:
            continue
        for k, offset in enumerate(offsets):
            column = k * len(profiles) + j
            rows_at, wrap = _rotate(profile.jumps, int(offset), chars)
            sizes = np.roll(profile.sizes, -wrap)
            stepped[column] = Steps(columns[column], profile.slope, rows_at, sizes)
    return stepped


def _scan(recording, rows, profiles, kinds, progress, exhaustive=True, offsets=(0,)):
    """(units, r, auroc, binary, ones) of every selected unit against every feature (rows
    (features, chars), profiles) circularly shifted by each offset: columns offset-major,
    feature-minor (ones: the rows where each binary column is 1, see `_positive_rows`).

    exhaustive: AUROC of every unit by binned midranks (two more passes); otherwise the AUROC
    columns are left NaN for the caller to screen (`_screened_scan`). A shifted feature has its
    feature's mean, variance and binariness, so those are computed once per feature.
    """
    chars = recording.chars
    if rows.shape[1] != chars:
        raise ProbeError(f"feature has {rows.shape[1]} values, recording has {chars} chars")
    mean = np.array([profile.mean for profile in profiles])
    var_f = np.tile([profile.var for profile in profiles], len(offsets))
    binary = np.tile([profile.binary for profile in profiles], len(offsets))
    ranked = exhaustive and binary.any()
    columns = np.empty((len(binary) + 1, chars), np.float32)  # centered features, ones
    _shifted(rows, offsets, out=columns[:-1])  # in place: no temporary of the same size
    columns[:-1] -= np.tile(mean, len(offsets)).astype(np.float32)[:, None]
    columns[-1] = 1
    binary_columns = (
        torch.from_numpy(np.ascontiguousarray(columns[:-1][binary].T)) if ranked else None
    )
    positives = np.tile(mean, len(offsets))[binary] * chars
    pairs = positives * (chars - positives)

    ones = _positive_rows(profiles, binary, offsets, chars)
    stepped = _stepped(profiles, columns, offsets, chars) if kernels.library else {}
    features = torch.from_numpy(columns)
    selected = selected_arrays(recording, kinds)
    passes = 3 if ranked else 1
    total = passes * sum(recording.array(l, k).size for l, k in selected)
    units, r_parts, auroc_parts = [], [], []
    with tqdm(total=total, unit="val", unit_scale=True, disable=not progress, desc="search") as bar:
        for layer, kind in selected:
            array = recording.array(layer, kind)
            units += [Unit(layer, kind, i) for i in range(array.shape[1])]
            cov, var_x, low, high = moments(array, features, ranked, bar, ones, stepped)
            with np.errstate(divide="ignore", invalid="ignore"):
                r_parts.append(cov / np.sqrt(var_x[:, None] * var_f[None, :]))
            auroc = np.full((array.shape[1], len(binary)), np.nan)
            if ranked:
                sums = rank_sums(array, low, high, binary_columns, BINS, bar)
                with np.errstate(divide="ignore", invalid="ignore"):
                    auroc[:, binary] = 0.5 + chars * sums / pairs
            auroc_parts.append(auroc)
    r = np.concatenate(r_parts)
    r[~np.isfinite(r)] = np.nan
    auroc = np.clip(np.concatenate(auroc_parts), 0, 1)
    auroc[:, np.flatnonzero(binary)[pairs == 0]] = np.nan
    return units, r, auroc, binary, ones


# ----------------------------------------------------------------------------- screened AUROC


def _choose(r: np.ndarray, candidates: int, groups: np.ndarray) -> np.ndarray:
    """(units, columns) mask of the `candidates` highest-|r| (unit, column) pairs of each
    group of columns: a group of one column takes its top-|r| units."""
    score = np.nan_to_num(np.abs(r), nan=-1.0)
    chosen = np.zeros(r.shape, bool)
    for group in np.unique(groups):
        columns = np.flatnonzero(groups == group)
        block = score[:, columns]
        take = min(candidates, block.size)
        best = np.argpartition(-block.ravel(), take - 1)[:take]
        rows, picked = np.unravel_index(best, block.shape)
        chosen[rows, columns[picked]] = True
    return chosen


def _screened_scan(recording, rows, profiles, kinds, candidates, progress, offsets=(0,)):
    """_scan with r for every unit and exact AUROC for each binary column's top-|r| units.

    The shifted copies of a feature (offsets after the first) are screened together: the
    `candidates` best (unit, offset) pairs by |r|, since their only use is the best score
    over all of them (the shift null).
    """
    units, r, auroc, binary, ones = _scan(
        recording, rows, profiles, kinds, progress, False, offsets
    )
    if binary.any():
        features = rows.shape[0]
        positive_rows = list(ones.values())
        column = np.arange(len(binary))
        groups = np.where(column < features, column, features + column % features)[binary]
        chosen = _choose(r[:, binary], candidates, groups)
        with tqdm(
            total=int(chosen.any(1).sum()), disable=not progress, desc="auroc", unit="unit"
        ) as bar:
            auroc[:, binary] = candidate_auroc(recording, units, chosen, positive_rows, bar)
    return units, r, auroc, binary


def _feature_matrix(recording, features) -> tuple[list[str], np.ndarray, list[FeatureProfile]]:
    """The names, each once, their values as rows (features, chars), as every pass reads
    them, and their profiles (cached for named features: ~0.15 s a search of 1M chars)."""
    features = features if isinstance(features, dict) else name_list(features)
    names = list(dict.fromkeys(features))  # each feature once, in the order asked
    if not names:
        raise ProbeError("no features to search for")
    if isinstance(features, dict):
        arrays = [np.asarray(features[name], dtype=np.float32) for name in names]
        for name, array in zip(names, arrays, strict=True):
            if array.shape != (recording.chars,):
                raise ProbeError(f"feature {name} has shape {array.shape}, recording has "
                                 f"{recording.chars} chars")  # fmt: skip
        profiles = [feature_profile(array) for array in arrays]
    else:
        arrays = [feature_values(recording, name) for name in names]
        profiles = [named_profile(recording, n, a) for n, a in zip(names, arrays, strict=True)]
    return names, np.stack(arrays), profiles


def _without_constant(names, rows, profiles):
    """(names, rows, profiles) of the features that vary on the text, and the names of those
    that do not, each with a warning (a ProbeError if none varies: there is nothing to rank).
    Found before the scan, which can take minutes."""
    constant = rows.min(axis=1) == rows.max(axis=1)
    said = [f"{_constant_is(name, row[0])}: no unit can track it"
            for name, row, same in zip(names, rows, constant, strict=True) if same]  # fmt: skip
    if constant.all():
        raise ProbeError("; ".join(said))
    for message in said:
        warnings.warn(ConstantFeatureWarning(f"{message}; left out"), stacklevel=3)
    keep = np.flatnonzero(~constant)
    left_out = [name for name, same in zip(names, constant, strict=True) if same]
    return [names[i] for i in keep], rows[keep], [profiles[i] for i in keep], left_out


def _constant_is(name: str, value: float) -> str:
    """What a constant feature is: a regex that marks no char may only match empty strings."""
    if isinstance(name, str) and name.startswith("re:") and value == 0:
        return f"{name} matches no char of this text (empty matches, as of \\b, mark none)"
    return f"{name} is {value:g} on every char of this text"


def _scores(r: np.ndarray, auroc: np.ndarray, binary: np.ndarray) -> np.ndarray:
    """max(auroc, 1 - auroc) for binary columns, |r| for continuous ones."""
    return np.where(binary[None, :], np.maximum(auroc, 1 - auroc), np.abs(r))


def unit_scores(
    recording: Recording | str | Path,
    features,
    kinds: list[str] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Every selected unit against every feature (names or {name: values}), one row each.

    The exhaustive path: AUROC (binned midranks) for every unit, three reads of each array.
    `search` screens binary features by |r| instead and is many times faster on big recordings.
    Constant features are left out as `search` leaves them out.
    """
    recording = Recording.of(recording)
    names, rows, profiles = _feature_matrix(recording, features)
    names, rows, profiles, constant = _without_constant(names, rows, profiles)
    units, r, auroc, binary, _ = _scan(recording, rows, profiles, kinds, progress)
    table = _table(names, units, r, auroc, _scores(r, auroc, binary))
    table.attrs["constant"] = constant
    return table


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
    recording: Recording | str | Path,
    features,
    kinds: list[str] | None = None,
    top: int = 10,
    nulls: bool = True,
    progress: bool = False,
    candidates: int | None = None,
) -> pd.DataFrame:
    """The `top` best units per feature, with two nulls to judge whether a score means anything.

    candidates: binary features are screened (module docstring): only the `candidates` units
    with the highest |r| get an exact AUROC and are ranked by max(AUROC, 1 - AUROC), default
    max(64, 8 * top). Same ranking as the exhaustive `unit_scores` whenever the best-AUROC units
    are among them; more candidates read more unit columns. Continuous features rank by |r|.

    null_init: the best score of the random-init twin (its text; NaN without a twin or for
    features given as arrays). null_shift: the best score against the feature circularly
    shifted, max over SHIFTS seeded offsets: a feature with the same statistics but no
    alignment. Both are screened alike: shifted copies are extra columns of the same pass, and
    a binary feature's shifted copies share its `candidates` exact AUROCs among them.

    A feature constant on the text is left out with a ConstantFeatureWarning; the table's
    attrs["constant"] names those (a ProbeError if every feature is).
    """
    recording = Recording.of(recording)
    top = whole_number(top, "top", 1)
    candidates = whole_number(
        max(64, 8 * top) if candidates is None else candidates, "candidates", 1
    )
    names, rows, profiles = _feature_matrix(recording, features)
    names, rows, profiles, constant = _without_constant(names, rows, profiles)
    count = len(names)
    offsets = (0, *shift_offsets(recording.chars)) if nulls else (0,)
    units, r, auroc, binary = _screened_scan(
        recording, rows, profiles, kinds, candidates, progress, offsets
    )
    score = _scores(r, auroc, binary)
    null_shift = np.full(count, np.nan)
    null_init = np.full(count, np.nan)
    if nulls:
        best_shifted = _nanmax(score[:, count:], axis=0).reshape(SHIFTS, count)
        null_shift = _nanmax(best_shifted, axis=0)
        twin = recording.init_twin
        if twin is not None and not isinstance(features, dict):
            _, twin_rows, twin_profiles = _feature_matrix(twin, names)
            _, *twin_scores = _screened_scan(
                twin, twin_rows, twin_profiles, kinds, candidates, False
            )
            null_init = _nanmax(_scores(*twin_scores), axis=0)

    table = _table(names, units, r[:, :count], auroc[:, :count], score[:, :count])
    table["measure"] = np.repeat(np.where(binary[:count], "auroc", "r"), len(units))
    table["null_init"] = np.repeat(null_init, len(units))
    table["null_shift"] = np.repeat(null_shift, len(units))
    table["order"] = np.arange(len(table))
    ordered = table.sort_values(
        ["feature", "score", "order"], ascending=[True, False, True], kind="stable"
    )  # NaN scores (unscreened units) last
    best = ordered.groupby("feature", sort=False).head(top)
    best = best.set_index("feature").loc[names].reset_index()  # features in the asked order
    best["rank"] = best.groupby("feature", sort=False).cumcount() + 1
    best = best[RESULT_COLUMNS].reset_index(drop=True)
    best.attrs["constant"] = constant
    return best


def _nanmax(values: np.ndarray, axis: int) -> np.ndarray:
    """np.nanmax without the all-NaN warning (all-NaN gives NaN)."""
    filled = np.where(np.isnan(values), -np.inf, values).max(axis=axis)
    return np.where(np.isinf(filled), np.nan, filled)
