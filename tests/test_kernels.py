"""Search's compiled kernels against numpy references, and search with them against search
without them (the torch path every other machine takes)."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest
import torch

from probe import kernels
from probe import search as S
from probe.auroc import sort_keys
from probe.profiles import feature_profile
from tests.test_search import exact_auroc

needs_kernels = pytest.mark.skipif(kernels.library is None, reason="kernels not built here")


def cpu_has_avx2() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.exists() and " avx2" in cpuinfo.read_text()


@pytest.mark.skipif(platform.machine() != "x86_64" or not cpu_has_avx2(), reason="no AVX2")
def test_kernels_are_built_and_used_on_an_avx2_machine():
    assert kernels.library is not None, "probe/_kernels.c did not compile at install"


@needs_kernels
@pytest.mark.parametrize("units", [1, 7, 16, 37, 100])
def test_moments_match_float64_numpy(units):
    rng = np.random.default_rng(units)
    chars = 1_500
    array = (rng.standard_normal((chars, units)) * 3 + 5).astype(np.float16)
    dense = list(rng.standard_normal((7, chars)).astype(np.float32))  # a short feature block
    ones = [np.sort(rng.choice(chars, size, replace=False)) for size in (1, 40, 900)]
    ones.append(np.zeros(0, np.int64))  # a feature that is never 1
    shift = np.asarray(array[:100], np.float32).mean(0)
    cross, sums, squares = np.zeros((11, units)), np.zeros(units), np.zeros(units)
    low, high = np.full(units, np.inf, np.float32), np.full(units, -np.inf, np.float32)
    for rows in [(0, 613), (613, 1_400), (1_400, chars)]:  # blocks, folded by the caller
        kernels.moments(array, rows, dense, ones, shift, cross, sums, squares, low, high)
    x = array.astype(np.float64) - shift
    expected = np.concatenate([np.array(dense, np.float64) @ x, [x[rows].sum(0) for rows in ones]])
    float32_sums = 1e-5 * np.abs(x).sum(0)  # what float32 sums of |x| may round away
    np.testing.assert_allclose(cross, expected, atol=3 * float32_sums.max())
    np.testing.assert_allclose(sums, x.sum(0), atol=float32_sums.max())
    np.testing.assert_allclose(squares, (x**2).sum(0), rtol=1e-5)
    np.testing.assert_allclose(low, x.min(0), atol=1e-6)
    np.testing.assert_allclose(high, x.max(0), atol=1e-6)
    kernels.moments(array, (0, chars), dense, ones, shift, cross, sums, squares)  # no range
    np.testing.assert_allclose(cross, 2 * expected, atol=6 * float32_sums.max())


def stepped_features(chars: int, rng) -> np.ndarray:
    """(3, chars): a position in a line (+1 a char, reset at line starts), a depth (0 a char,
    jumps up and down) and a distance to a line's end (-1 a char): steps as search sees them."""
    starts = np.sort(rng.choice(np.arange(1, chars), chars // 30, replace=False))
    line = np.zeros(chars, np.int64)
    line[starts] = 1
    line = np.cumsum(line)
    first = np.concatenate([[0], starts])[line]
    ends = np.concatenate([starts, [chars]])[line]
    depth = np.cumsum(rng.choice([-1, 0, 0, 0, 0, 0, 0, 0, 1], chars))
    return np.stack([np.arange(chars) - first, depth, ends - np.arange(chars) - 1]).astype(
        np.float32
    )


def test_steps_rebuild_every_shifted_column():
    rng = np.random.default_rng(0)
    rows = stepped_features(5_000, rng)
    offsets = (0, 1_234, 4_999)
    columns = S._shifted(rows - rows.mean(1, keepdims=True), offsets)
    profiles = [feature_profile(row) for row in rows]
    stepped = S._stepped(profiles, columns, offsets, rows.shape[1])
    assert sorted(stepped) == list(range(len(columns)))
    for column, steps in stepped.items():
        change = np.full(rows.shape[1], steps.slope, np.float64)
        change[steps.rows] += steps.sizes
        change[0] = steps.values[0]
        np.testing.assert_allclose(np.cumsum(change), columns[column], atol=1e-3)


@needs_kernels
@pytest.mark.parametrize("units", [1, 16, 37])
@pytest.mark.parametrize("with_dense", [True, False])  # False: search's usual, own loop
def test_stepped_moments_match_float64_numpy(units, with_dense):
    rng = np.random.default_rng(units)
    chars = 3_000
    array = (rng.standard_normal((chars, units)) * 3 + 5).astype(np.float16)
    rows = stepped_features(chars, rng)
    columns = rows - rows.mean(1, keepdims=True)
    profiles = [feature_profile(row) for row in rows]
    steps = list(S._stepped(profiles, columns, (0,), chars).values())
    assert [step.slope for step in steps] == [1, 0, -1]
    shift = np.asarray(array[:100], np.float32).mean(0)
    dense = [columns[1]] if with_dense else []  # the same feature both ways in one call
    cross, sums, squares = np.zeros((3 + len(dense), units)), np.zeros(units), np.zeros(units)
    for block in [(0, 1_001), (1_001, 2_900), (2_900, chars)]:  # tiles of odd and even rows
        kernels.moments(array, block, dense, [], shift, cross, sums, squares, steps=steps)
    x = array.astype(np.float64) - shift
    expected = columns.astype(np.float64) @ x
    scale = np.abs(columns.astype(np.float64)) @ np.abs(x)  # what float32 sums may round away
    np.testing.assert_allclose(cross[len(dense) :], expected, atol=1e-5 * scale.max())
    if with_dense:
        np.testing.assert_allclose(cross[0], expected[1], atol=1e-6 * scale.max())
    np.testing.assert_allclose(sums, x.sum(0), rtol=1e-5, atol=1e-3)


@needs_kernels
def test_column_keys_match_sort_keys_on_every_float16():
    bits = np.arange(1 << 16, dtype=np.uint16)
    array = bits.view(np.float16).reshape(-1, 64)  # every bit pattern, NaN included
    picked = np.array([63, 0, 5, 5])  # any order, repeats allowed
    out = np.empty((len(picked), array.shape[0]), np.uint16)
    kernels.column_keys(array, (0, 500), picked, out)
    kernels.column_keys(array, (500, array.shape[0]), picked, out)
    expected = sort_keys(torch.from_numpy(array.view(np.int16)[:, picked].T.copy()))
    np.testing.assert_array_equal(out, expected.numpy().view(np.uint16))


@needs_kernels
def test_auroc_is_exact_with_ties_and_signed_zeros():
    rng = np.random.default_rng(0)
    values = np.round(rng.standard_normal(20_000), 1).astype(np.float16)  # heavy ties
    values[::7] = np.float16(-0.0)
    values[1::7] = np.float16(0.0)  # equal to -0.0: ties, not an order
    keys = sort_keys(torch.from_numpy(values.view(np.int16).copy())).numpy().view(np.uint16)
    lifted = (values > 0) | (rng.random(values.size) < 0.3)
    features = [np.flatnonzero(lifted), np.flatnonzero(values == 0), np.arange(values.size), []]
    got = kernels.auroc(keys, [np.asarray(rows, np.int64) for rows in features])
    for rows, value in zip(features[:2], got[:2], strict=True):
        positive = np.zeros(values.size, bool)
        positive[rows] = True
        assert value == pytest.approx(exact_auroc(values.astype(np.float64), positive), abs=1e-12)
    assert np.isnan(got[2:]).all()  # no negatives; no positives


@needs_kernels
def test_bad_arguments_are_refused_before_c_sees_them():
    array = np.zeros((10, 4), np.float16)
    out = np.empty((1, 10), np.uint16)
    with pytest.raises(IndexError):
        kernels.column_keys(array, (0, 10), np.array([4]), out)
    with pytest.raises(IndexError):
        kernels.column_keys(array, (5, 11), np.array([0]), out)  # a row past the end
    with pytest.raises(IndexError):
        kernels.moments(array, (0, 11), [], [], *[np.zeros(4, np.float32)], *[np.zeros(4)] * 3)
    with pytest.raises(TypeError):
        kernels.column_keys(array.astype(np.float32), (0, 10), np.array([0]), out)
    with pytest.raises(IndexError):
        kernels.auroc(np.zeros(10, np.uint16), [np.array([10])])
    with pytest.raises(TypeError):
        kernels.moments(array, (0, 10), [np.zeros(9, np.float32)], [], *[np.zeros(4)] * 4)


@needs_kernels
def test_search_is_the_same_without_kernels(tiny_recording, monkeypatch):
    names = ["in_comment", "in_string", "brace_depth", "pos_in_line"]
    fast = S.search(tiny_recording, names, top=5, candidates=24)
    exhaustive = S.unit_scores(tiny_recording, names[:2], kinds=["cell"])
    monkeypatch.setattr(kernels, "library", None)
    slow = S.search(tiny_recording, names, top=5, candidates=24)
    assert fast["unit"].tolist() == slow["unit"].tolist()
    np.testing.assert_allclose(fast["auroc"], slow["auroc"], atol=1e-12)  # exact both ways
    for column in ["r", "score", "null_init", "null_shift"]:  # float32 sums, another order
        np.testing.assert_allclose(fast[column], slow[column], atol=2e-5, equal_nan=True)
    again = S.unit_scores(tiny_recording, names[:2], kinds=["cell"])
    np.testing.assert_allclose(exhaustive["r"], again["r"], atol=2e-5)
    np.testing.assert_allclose(exhaustive["auroc"], again["auroc"], atol=1e-4)


def test_a_library_from_another_version_is_refused(monkeypatch):
    """A checkout updated without reinstalling keeps an old build: never call into it."""

    class OldBuild:  # what ctypes gives for a library that predates the versioned functions
        def __getattr__(self, name):
            raise AttributeError(name)

    class OtherVersion:
        def probe_version(self):
            return kernels.VERSION + 1

    for library in (OldBuild(), OtherVersion()):
        with pytest.warns(UserWarning, match="out of date"):
            assert kernels._bind(library) is None
