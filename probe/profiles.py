"""What a search derives from a feature alone, cached per text and name: its values, mean,
variance, 1s, and the steps the r pass sums it from (see `probe.search`)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from probe.features import compute, get_feature
from probe.fileio import sha256_text
from probe.recording import Recording

FEATURE_CACHE_SIZE = 32
# Each cache is also bounded in bytes: on a 6M-char text a feature takes 25 MB and its profile
# up to ~50 more, and every regex typed in the dashboard is a new one.
FEATURE_CACHE_BYTES = 1 << 29
STEP_SHARE = (
    4  # a stepped feature jumps at most once in this many chars (see probe.search._stepped)
)

_feature_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_profile_cache: OrderedDict[tuple[str, str], FeatureProfile] = OrderedDict()


def _cached(cache: OrderedDict, recording: Recording, name: str, make):
    """cache[(the recording's text hash, name)], made by make() if not there (least recently
    used out past FEATURE_CACHE_SIZE entries or FEATURE_CACHE_BYTES; the newest stays)."""
    key = (recording.manifest.get("text_sha256") or sha256_text(recording.text), name)
    if key not in cache:
        cache[key] = make()
        while len(cache) > 1 and (
            len(cache) > FEATURE_CACHE_SIZE
            or sum(map(_nbytes, cache.values())) > FEATURE_CACHE_BYTES
        ):
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key]


def _nbytes(item: np.ndarray | FeatureProfile) -> int:
    """Bytes held by a cached feature or profile (its arrays)."""
    if isinstance(item, np.ndarray):
        return item.nbytes
    arrays = (item.ones, item.jumps, item.sizes)
    return sum(array.nbytes for array in arrays if array is not None)


def feature_values(recording: Recording, name: str) -> np.ndarray:
    """A feature of the recording's text (float32, read-only), cached by text hash and name."""

    def make():
        values = compute(name, recording.text)
        values.setflags(write=False)
        return values

    return _cached(_feature_cache, recording, name, make)


@dataclass(frozen=True)
class FeatureProfile:
    """What a search derives from a feature alone (cached with it): mean, variance, whether
    it is binary (then `ones`: the sorted rows of its 1s), and its steps where the r pass
    sums it from them: it moves by `slope` a char (0, +1 or -1), but for `sizes` at the
    sorted rows `jumps` (circular, as shifted copies are: row 0's is from the last char), at
    most 1 in STEP_SHARE chars and fewer than its 1s if binary (else slope is None)."""

    mean: float
    var: float
    binary: bool
    ones: np.ndarray | None
    slope: float | None
    jumps: np.ndarray | None
    sizes: np.ndarray | None


def feature_profile(values: np.ndarray, binary: bool | None = None) -> FeatureProfile:
    """The profile of one feature's values (chars,). Binary ones are judged by AUROC, others by
    Pearson r. `binary`: the feature's type where it has one (a depth that stays in 0..1 on
    prose is still continuous), else whether the values are all 0 or 1."""
    if binary is None:
        binary = bool(np.isin(values, (0.0, 1.0)).all())
    chars = len(values)
    ones = np.flatnonzero(values == 1) if binary else None
    change = np.empty(chars)
    np.subtract(values[1:], values[:-1], out=change[1:], dtype=np.float64)
    change[0] = float(values[0]) - float(values[-1])
    slope = max((0.0, 1.0, -1.0), key=lambda step: np.count_nonzero(change == step))
    jumps = np.flatnonzero(change != slope)
    stepped = len(jumps) <= chars // STEP_SHARE and not (binary and len(jumps) >= len(ones))
    mean, var = float(values.mean(dtype=np.float64)), float(values.var(dtype=np.float64))
    steps = (slope, jumps, (change[jumps] - slope).astype(np.float32)) if stepped else (None,) * 3
    return FeatureProfile(mean, var, binary, ones, *steps)


def named_profile(recording: Recording, name: str, values: np.ndarray) -> FeatureProfile:
    """A named feature's profile, cached with its values; its type is its definition's."""
    binary = get_feature(name).binary
    return _cached(_profile_cache, recording, name, lambda: feature_profile(values, binary))
