"""Search on a real tiny model: planted signals, exact-vs-approximate AUROC, span logic, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from probe import search as S
from probe.errors import ProbeError
from probe.recording import RecordingWriter
from probe.units import Unit

PLANTED = "2:cell:5"


def exact_auroc(values: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUROC with exact midranks (ties counted 1/2), by argsort."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    midranks = first + (counts + 1) / 2  # per distinct value
    ranks[order] = np.repeat(midranks, counts)
    n_pos = positive.sum()
    n_neg = len(values) - n_pos
    return (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@pytest.fixture(scope="module")
def planted(tiny_recording):
    values = tiny_recording.unit(PLANTED)
    return {"copy": values, "above_median": (values > np.median(values)).astype(np.float32)}


@pytest.fixture(scope="module")
def planted_search(tiny_recording, planted):
    return S.search(tiny_recording, planted, top=5)


def test_planted_signal_ranks_first(planted_search):
    first = planted_search[planted_search["rank"] == 1].set_index("feature")
    assert (first["unit"] == PLANTED).all()
    assert first.loc["copy", "r"] == pytest.approx(1, abs=1e-4)
    assert first.loc["copy", "measure"] == "r"
    assert first.loc["above_median", "measure"] == "auroc"
    assert first.loc["above_median", "auroc"] > 0.999
    assert np.isnan(first.loc["copy", "auroc"])
    assert list(planted_search.columns[:3]) == ["feature", "rank", "unit"]
    assert planted_search.groupby("feature").size().tolist() == [5, 5]


def test_nulls_are_well_below_a_planted_signal(planted_search):
    first = planted_search[planted_search["rank"] == 1].set_index("feature")
    # shifting a real cell's trace by >= 2k chars leaves only chance correlation
    assert first.loc["copy", "null_shift"] < 0.5
    assert first.loc["above_median", "null_shift"] < 0.75
    assert first["null_init"].isna().all()  # arrays given: the twin's text has no values


def test_named_features_have_init_null(tiny_recording):
    table = S.search(tiny_recording, ["in_comment", "brace_depth"], kinds=["cell"], top=3)
    assert table["null_init"].notna().all()
    twin = S.unit_scores(tiny_recording.init_twin, ["in_comment", "brace_depth"], kinds=["cell"])
    exhaustive = twin.groupby("feature")["score"].max()
    screened = table.groupby("feature")["null_init"].first()
    np.testing.assert_allclose(screened.loc[exhaustive.index], exhaustive, atol=1e-3)
    auroc = table[table["measure"] == "auroc"]
    np.testing.assert_allclose(auroc["score"], np.maximum(auroc["auroc"], 1 - auroc["auroc"]))
    brace = table[table["measure"] == "r"]
    np.testing.assert_allclose(brace["score"], brace["r"].abs())
    assert set(table["kind"]) == {"cell"}
    assert table.groupby("feature")["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    assert (table["rank"] == [1, 2, 3, 1, 2, 3]).all()
    twice = S.search(tiny_recording, ["in_comment", "in_comment"], kinds=["cell"], nulls=False)
    assert len(twice) == 10 and twice["null_shift"].isna().all()


def test_r_matches_direct_numpy(tiny_recording, monkeypatch):
    from probe import scan

    monkeypatch.setattr(scan, "CHUNK_ELEMENTS", 4096)  # many chunks, ragged last one
    monkeypatch.setattr(scan, "BLOCK_ELEMENTS", 40_000)  # several blocks, folded
    features = {
        "brace": S.feature_values(tiny_recording, "brace_depth"),
        "line": S.feature_values(tiny_recording, "pos_in_line"),
    }
    table = S.unit_scores(tiny_recording, features, kinds=["cell", "hidden"])
    for name, values in features.items():
        rows = table[table["feature"] == name]
        for (layer, kind), group in rows.groupby(["layer", "kind"], sort=False):
            x = np.asarray(tiny_recording.array(layer, kind), dtype=np.float64)
            xc, fc = x - x.mean(0), values - values.mean()
            direct = xc.T @ fc / np.sqrt((xc**2).sum(0) * (fc**2).sum())
            np.testing.assert_allclose(group["r"].values, direct, atol=1e-4)


def test_auroc_approximation_close_to_exact(tiny_recording):
    names = ["in_comment", "is_space"]
    # saturated tanh candidates are the hard case: values crowd near +-1 in fine fp16 steps
    table = S.unit_scores(tiny_recording, names, kinds=["candidate", "forget_gate"])
    worst = 0.0
    for name in names:
        positive = S.feature_values(tiny_recording, name) == 1
        rows = table[table["feature"] == name]
        for unit, approx in zip(rows["unit"], rows["auroc"], strict=True):
            exact = exact_auroc(tiny_recording.unit(unit).astype(np.float64), positive)
            worst = max(worst, abs(exact - approx))
    assert worst < 0.005


def test_screened_search_agrees_with_exhaustive(tiny_recording):
    names = ["in_comment", "in_string", "brace_depth"]
    fast = S.search(tiny_recording, names, top=3, nulls=False)
    slow = S.unit_scores(tiny_recording, names)
    for name in names:
        best = slow[slow["feature"] == name].sort_values("score", ascending=False).head(3)
        rows = fast[fast["feature"] == name]
        assert rows["unit"].tolist() == best["unit"].tolist()
        np.testing.assert_allclose(rows["score"], best["score"], atol=1e-3)
    assert (fast.set_index("feature").loc[["in_comment", "in_string"], "measure"] == "auroc").all()


def test_screened_auroc_is_exact_on_saturated_units(tiny_recording, monkeypatch):
    """Candidates get the exact tie-averaged AUROC, even where float16 values tie a lot."""
    from probe import auroc as A

    monkeypatch.setattr(A, "GATHER_BYTES", 2 * tiny_recording.chars * 3)  # batches of 3 units
    monkeypatch.setattr(A, "GATHER_ROWS", 4096)  # ragged row chunks
    positive = S.feature_values(tiny_recording, "in_comment") == 1
    table = S.search(
        tiny_recording, ["in_comment"], kinds=["forget_gate", "candidate"], top=8, nulls=False
    )
    assert table["auroc"].notna().all()
    for unit, auroc in zip(table["unit"], table["auroc"], strict=True):
        values = tiny_recording.unit(unit).astype(np.float64)
        assert len(np.unique(values)) < len(values) // 2  # heavily tied
        assert auroc == pytest.approx(exact_auroc(values, positive), abs=1e-6)
    few = S.search(tiny_recording, ["in_comment"], top=8, candidates=8, nulls=False)
    assert few["auroc"].notna().all()  # a tiny screen still scores every row it returns
    with pytest.raises(ProbeError, match="candidates"):
        S.search(tiny_recording, ["in_comment"], candidates=0)


def test_sort_keys_order_every_float16():
    import torch

    from probe.auroc import sort_keys

    values = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    values = values[~np.isnan(values)]
    bits = torch.from_numpy(values.view(np.int16).copy())
    keys = sort_keys(bits).numpy().view(np.uint16).astype(np.int64)
    order = np.argsort(keys)
    assert (np.diff(values[order].astype(np.float64)) >= 0).all()
    assert len(np.unique(keys)) == len(values)  # -0.0 and +0.0: adjacent keys, merged by counts


def test_auroc_from_midranks_counts_ties_as_half():
    from probe.auroc import KEYS, auroc_from_midranks, midranks

    everything = np.zeros(KEYS, np.int64)
    everything[[10, 20, 30]] = [2, 2, 1]  # values: 10, 10, 20, 20, 30
    midrank = midranks(everything)
    positive = np.array([20, 30])  # positives at 20 and 30; negatives at 10, 10, 20
    # pairs (pos, neg): 20 beats both 10s and ties 20 -> 2.5; 30 beats all three -> 3
    assert auroc_from_midranks(midrank, positive, 5) == pytest.approx(5.5 / 6)
    all_five = np.array([10, 10, 20, 20, 30])
    assert np.isnan(auroc_from_midranks(midrank, all_five, 5))  # no negatives


def test_spans_are_reexported():
    from probe import spans

    assert S.top_contexts is spans.top_contexts and S.match_spans is spans.match_spans
    assert S.units_on_span is spans.units_on_span


def test_degenerate_features(tiny_recording):
    zeros = np.zeros(tiny_recording.chars, np.float32)
    with pytest.raises(ProbeError, match="never is 0 on every char"):  # nothing to rank
        S.unit_scores(tiny_recording, {"never": zeros}, kinds=["cell"])
    with pytest.raises(ProbeError, match="chars"):
        S.unit_scores(tiny_recording, {"short": zeros[:10]})
    with pytest.raises(ProbeError, match="unknown feature"):
        S.search(tiny_recording, ["no_such_feature"])
    with pytest.raises(ProbeError, match="no kind"):
        S.unit_scores(tiny_recording, ["in_comment"], kinds=["telepathy"])


def test_features_constant_on_the_text_are_left_out_with_a_warning(tiny_recording):
    ones = np.ones(tiny_recording.chars, np.float32)
    with pytest.warns(S.ConstantFeatureWarning, match="re:QQQ matches no char") as caught:
        table = S.search(tiny_recording, ["re:QQQ", "in_comment"], top=5, nulls=False)
    assert len(caught) == 1 and caught[0].filename == __file__  # the caller's line
    assert set(table["feature"]) == {"in_comment"} and table["score"].notna().all()
    assert table.attrs["constant"] == ["re:QQQ"]
    with pytest.warns(S.ConstantFeatureWarning, match="re:QQQ"):  # the exhaustive path too
        every = S.unit_scores(tiny_recording, ["re:QQQ", "in_comment"], kinds=["cell"])
    assert set(every["feature"]) == {"in_comment"} and every.attrs["constant"] == ["re:QQQ"]
    with pytest.raises(ProbeError, match="^ones is 1 on every char .*; re:QQQ matches no char"):
        S.search(tiny_recording, {"ones": ones, "re:QQQ": 0 * ones})


def test_a_continuous_feature_is_scored_by_r_even_where_it_is_0_or_1(tiny_checkpoint, tmp_path):
    from probe.record import record

    prose = record(tiny_checkpoint, 'a (b) "c", d (e).\n' * 60, tmp_path / "prose", twin=False,
                   progress=False)  # fmt: skip
    assert set(S.feature_values(prose, "paren_depth")) == {0.0, 1.0}
    table = S.search(prose, ["paren_depth", "in_quote", "re:[()]"], nulls=False, top=1)
    assert table.set_index("feature")["measure"].to_dict() == {
        "paren_depth": "r", "in_quote": "auroc", "re:[()]": "auroc"
    }  # fmt: skip


def test_a_folder_and_a_single_name_are_taken_as_a_user_would_mean_them(tiny_recording):
    by_path = S.search(str(tiny_recording.path), "in_comment", kinds="cell", nulls=False, top=3)
    by_list = S.search(tiny_recording, ["in_comment"], kinds=["cell"], nulls=False, top=3)
    assert by_path.equals(by_list) and set(by_path["kind"]) == {"cell"}
    assert S.top_contexts(tiny_recording.path, "1:cell:0", 3).equals(
        S.top_contexts(tiny_recording, "1:cell:0", 3)
    )


def test_feature_values_are_cached(tiny_recording):
    first = S.feature_values(tiny_recording, "in_comment")
    assert S.feature_values(tiny_recording, "in_comment") is first
    assert not first.flags.writeable


def test_top_contexts_find_a_planted_spike(tiny_recording):
    table = S.top_contexts(tiny_recording, PLANTED, k=5, width=30, sign="absolute")
    values = tiny_recording.unit(PLANTED)
    assert table["value"].iloc[0] == pytest.approx(values[np.argmax(np.abs(values))])
    assert (np.diff(np.sort(table["position"])) >= 30).all()
    row = table.iloc[0]
    assert row["context"] == tiny_recording.text[row["start"] : row["stop"]]
    assert row["start"] <= row["position"] < row["stop"]
    low = S.top_contexts(tiny_recording, PLANTED, k=1, sign="negative")
    assert low["value"].iloc[0] == pytest.approx(values.min())
    # Only values of the sign asked for: a gate is never negative, so it has no such contexts.
    assert len(S.top_contexts(tiny_recording, "1:forget_gate:0", sign="negative")) == 0
    assert (S.top_contexts(tiny_recording, PLANTED, k=50)["value"] > 0).all()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A hand-built recording: 6 units on a 200-char text with known on-spans."""
    from probe.recording import Recording

    folder = tmp_path_factory.mktemp("synthetic")
    text = "".join(chr(ord("a") + i % 26) for i in range(200))
    writer = RecordingWriter(folder, text, {(1, "hidden"): 6})
    values = np.zeros((200, 6), np.float32)
    values[50:60, 0] = 0.9  # exactly the brushed span
    values[48:62, 1] = 0.8  # wider than the span
    values[:, 2] = 0.7  # always on
    values[50:55, 3] = 0.9  # only half the span
    values[120:130, [0, 1]] = 0.9  # units 0 and 1 together again
    values[150:156, 0] = 0.9  # unit 0 alone
    values[170:173, [0, 1]] = 0.9
    writer.arrays[(1, "hidden")][:] = values
    writer.finish({"config": {"cell": "rnn", "layers": 1, "hidden": 6}})
    return Recording.open(folder)


def test_tied_top_contexts_are_where_each_run_begins(synthetic):
    """A unit saturated over runs of chars: each run's first char, not the first run's chars."""
    table = S.top_contexts(synthetic, "1:hidden:0", k=4, width=2)
    assert list(table["position"]) == [50, 120, 150, 170]


def test_units_on_span_synthetic(synthetic):
    assert S.units_on_span(synthetic, 50, 60) == [Unit(1, "hidden", i) for i in (0, 1, 2)]
    assert S.units_on_span(synthetic, 50, 60, off_outside=1) == [Unit(1, "hidden", 0)]
    assert S.units_on_span(synthetic, 48, 62, off_outside=1) == [Unit(1, "hidden", 1)]
    assert S.units_on_span(synthetic, 0, 200, off_outside=5) == [Unit(1, "hidden", 2)]
    assert S.units_on_span(synthetic, 50, 60, threshold=0.85) == [Unit(1, "hidden", 0)]
    with pytest.raises(ProbeError, match="span"):
        S.units_on_span(synthetic, 60, 50)


def test_match_spans_synthetic(synthetic):
    units = ["1:hidden:0", "1:hidden:1"]
    spans = S.match_spans(synthetic, units, min_length=2, exclude=(50, 60))
    assert spans[["start", "stop"]].values.tolist() == [[120, 130], [170, 173]]
    assert (spans["score"] == 1).all() and (spans["units_on"] == 2).all()
    assert spans["text"].iloc[0] == synthetic.text[120:130]
    with_query = S.match_spans(synthetic, units, min_length=4)
    assert with_query[["start", "stop"]].values.tolist() == [[50, 60], [120, 130]]
    # no stretch has all three on: fall back to a majority (2 of 3)
    three = S.match_spans(synthetic, [*units, "1:hidden:3"], exclude=(40, 70))
    assert three[["start", "stop"]].values.tolist()[0] == [120, 130]
    assert three["score"].iloc[0] == pytest.approx(2 / 3)


def test_brush_then_match_on_real_recording(tiny_recording):
    values = tiny_recording.unit(PLANTED)
    threshold = float(np.quantile(values, 0.7))
    above = np.flatnonzero(values >= threshold)
    start = int(above[len(above) // 2])
    units = S.units_on_span(tiny_recording, start, start + 1, threshold=threshold)
    assert Unit.parse(PLANTED) in units
    spans = S.match_spans(tiny_recording, units[:3], threshold=threshold, min_length=1, top=10_000)
    covering = spans[(spans["start"] <= start) & (spans["stop"] > start)]
    assert len(covering) == 1 and covering["score"].iloc[0] == 1


def test_shift_null_is_the_best_score_over_shifted_copies(tiny_recording):
    """The screened shift null (a binary feature's shifted copies share their candidates)
    equals the exhaustive best score over every unit and every shifted copy."""
    names = ["in_comment", "brace_depth"]
    table = S.search(tiny_recording, names, kinds=["cell", "hidden"], candidates=16)
    null = table.groupby("feature")["null_shift"].first()
    for name in names:
        values = S.feature_values(tiny_recording, name)
        shifted = {str(offset): np.roll(values, offset) for offset in S.shift_offsets(len(values))}
        scores = S.unit_scores(tiny_recording, shifted, kinds=["cell", "hidden"])
        assert null[name] == pytest.approx(scores["score"].max(), abs=2e-3)


def test_search_holds_one_copy_of_the_shifted_features(tiny_recording):
    """The feature matrix (each feature and its SHIFTS shifted copies) is search's biggest
    allocation, gigabytes on a big text: it is built in place, never through a temporary."""
    import tracemalloc

    rng = np.random.default_rng(0)
    features = {f"f{i}": rng.standard_normal(tiny_recording.chars) for i in range(20)}
    matrix_bytes = (len(features) * (1 + S.SHIFTS) + 1) * tiny_recording.chars * 4
    tracemalloc.start()
    try:
        S.search(tiny_recording, features, kinds=["cell"], top=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * matrix_bytes, (peak, matrix_bytes)


def test_feature_cache_is_bounded_in_bytes(tiny_recording, monkeypatch):
    """Every regex typed in the dashboard is a new cached feature: on a big text 32 of them
    would hold gigabytes, so the cache also drops the least recently used past a byte budget."""
    from probe import profiles

    one = tiny_recording.chars * 4
    monkeypatch.setattr(profiles, "FEATURE_CACHE_BYTES", int(2.5 * one))
    names = [f"re:[a-z]{{{k}}}" for k in range(1, 6)]
    for name in names:
        S.feature_values(tiny_recording, name)
    cached = [name for _, name in profiles._feature_cache]
    assert cached[-2:] == names[-2:] and not set(names[:3]) & set(cached)
    assert S.feature_values(tiny_recording, names[-1]) is S.feature_values(
        tiny_recording, names[-1]
    )
