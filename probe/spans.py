"""Spans and contexts: what one unit, or a set of units, responds to in the text.

top_contexts shows the text around a unit's strongest activations; units_on_span and match_spans
are LSTMVis's brush and match: the units on over a stretch of text, and the other stretches where
those units are on together. Everything reads the float16 memmaps directly, a few columns or rows
at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from probe.errors import ProbeError, whole_number
from probe.recording import Recording
from probe.units import SIGNS, Unit, name_list

GATHER_ROWS = 1 << 16  # rows per read when gathering a few columns out of a memmap


def selected_arrays(recording: Recording, kinds: list[str] | None) -> list[tuple[int, str]]:
    """The recording's (layer, kind) arrays of the given kinds (all without kinds)."""
    kinds = name_list(kinds)
    if kinds is None:
        return recording.layer_kinds
    have = sorted({k for _, k in recording.layer_kinds})
    if not kinds:
        raise ProbeError(f"no kinds given; name some of {', '.join(have)} (or None for all)")
    unknown = [k for k in kinds if k not in have]
    if unknown:
        raise ProbeError(f"recording has no kind {unknown[0]!r} (has {', '.join(have)})")
    return [(layer, kind) for layer, kind in recording.layer_kinds if kind in kinds]


# ----------------------------------------------------------------------------- one unit


def top_contexts(
    recording: Recording | str | Path, unit, k: int = 8, width: int = 40, sign: str = "positive"
) -> pd.DataFrame:
    """The k strongest activations of a unit, at least `width` chars apart, with their text.

    The window is `width` chars ending a quarter width after the char: a state summarizes what
    came before it. sign: positive (highest), negative (lowest), absolute (largest |value|) or
    unusual (farthest from the unit's median: where a gate that is mostly open closes, which
    absolute would list as a tie of a thousand 1.0s); positive and negative list only values
    of that sign (fewer than k, or none, if rare).
    """
    recording = Recording.of(recording)
    if sign not in SIGNS:
        raise ProbeError(f"sign must be one of {', '.join(SIGNS)}, got {sign!r}")
    k, width = whole_number(k, "k", 1), whole_number(width, "width", 1)
    values = recording.unit(unit)
    if sign == "unusual":
        strength = np.abs(values - np.median(values))
    else:
        strength = {"positive": values, "negative": -values, "absolute": np.abs(values)}[sign]
    # Ties (a unit saturated at 1.0 over many chars) go to the char where each run begins:
    # what made the unit saturate, not the chars after it.
    onset = np.concatenate([[True], strength[1:] != strength[:-1]])
    order = np.lexsort((~onset, -strength))
    blocked = np.zeros(len(values), bool)
    picked = []
    for position in order:
        if sign in ("positive", "negative") and not strength[position] > 0:
            break  # the rest are of the other sign (or 0)
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


def _check_span(recording: Recording, start: int, stop: int) -> tuple[int, int]:
    start, stop = whole_number(start, "start", None), whole_number(stop, "stop", None)
    if not 0 <= start < stop <= recording.chars:
        raise ProbeError(f"span [{start}, {stop}) is not inside the text (0..{recording.chars})")
    return start, stop


def units_on_span(
    recording: Recording | str | Path,
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
    recording = Recording.of(recording)
    start, stop = _check_span(recording, start, stop)
    off_outside = whole_number(off_outside, "off_outside")
    found = []
    for layer, kind in selected_arrays(recording, kinds):
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


def units_matrix(recording: Recording, units: list[Unit], dtype=np.float32) -> np.ndarray:
    """(chars, len(units)) values of some units, reading each layer/kind array once in chunks."""
    out = np.empty((recording.chars, len(units)), dtype)
    groups: dict[tuple[int, str], list[int]] = {}
    for column, unit in enumerate(units):
        recording.unit_array(unit)  # checks the index: a negative one would read another unit
        groups.setdefault((unit.layer, unit.kind), []).append(column)
    for (layer, kind), columns in groups.items():
        array = recording.array(layer, kind)
        indices = [units[c].index for c in columns]
        for begin in range(0, recording.chars, GATHER_ROWS):
            stop = begin + GATHER_ROWS
            out[begin:stop, columns] = np.asarray(array[begin:stop])[:, indices]
    return out


def match_spans(
    recording: Recording | str | Path,
    units,
    threshold: float = 0.5,
    min_length: int = 2,
    top: int = 20,
    exclude: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """LSTMVis match: the stretches of text where the given units (a list, or one) are on
    together.

    Spans are maximal runs where all units are >= threshold. If no such run (of min_length,
    outside `exclude`) exists anywhere, runs where a majority of them is on are returned instead.
    Ranked by the mean fraction of units on, then length. Spans overlapping `exclude` (the
    brushed span itself) are dropped.
    """
    recording = Recording.of(recording)
    units = [Unit.parse(u) for u in name_list(units)]
    if not units:
        raise ProbeError("match_spans needs at least one unit")
    min_length, top = whole_number(min_length, "min_length", 1), whole_number(top, "top", 1)
    on = (units_matrix(recording, units) >= threshold).sum(axis=1)
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
