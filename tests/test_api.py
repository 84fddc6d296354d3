"""The Python API as a notebook uses it: short reprs, and clear ProbeErrors for bad arguments."""

import numpy as np
import pytest

from probe import ProbeError, Recording, Unit
from probe.export import text_heatmap
from probe.features import compute
from probe.plots import decay_figure, saturation_figure, search_figure
from probe.saturation import gate_saturation
from probe.search import match_spans, search, top_contexts, units_on_span
from tests.conftest import shared_text


def test_a_recording_repr_is_one_short_line(tiny_recording):
    """A notebook shows a cell's last value by its repr: it used to be the whole text."""
    shown = repr(Recording.open(tiny_recording.path))
    assert shown == f"<Recording {str(tiny_recording.path)!r}: 20,000 chars of lstm 2x32>"


def test_a_unit_index_out_of_range_is_refused_not_read_from_the_end(tiny_recording):
    """match_spans read a negative index's unit from the end of the layer: another unit."""
    for bad in (Unit(2, "cell", -1), Unit(2, "cell", 32)):
        with pytest.raises(ProbeError, match=r"index out of range \(layer has 32 units, 0 to 31"):
            match_spans(tiny_recording, [bad])
        with pytest.raises(ProbeError, match="index out of range"):
            tiny_recording.unit(bad)


def test_match_spans_takes_one_unit_as_text_heatmap_does(tiny_recording):
    """A unit's name was read as a list of its characters: "bad unit '2'"."""
    one = match_spans(tiny_recording, "2:cell:3", threshold=0.0)
    assert one.equals(match_spans(tiny_recording, ["2:cell:3"], threshold=0.0))
    assert one.equals(match_spans(tiny_recording, Unit(2, "cell", 3), threshold=0.0))
    assert len(one) > 0


def test_a_str_or_float_where_a_whole_number_goes_is_a_probe_error(tiny_recording):
    """They failed inside numpy ("slice indices must be integers"), or (k=2.5) listed every
    peak of the unit; numpy's integers, as np.argmax gives, are whole numbers."""
    calls = {
        "k": lambda k: top_contexts(tiny_recording, "2:cell:3", k=k),
        "width": lambda w: top_contexts(tiny_recording, "2:cell:3", width=w),
        "start": lambda start: units_on_span(tiny_recording, start, 110),
        "stop": lambda stop: text_heatmap(tiny_recording, "2:cell:3", 100, stop),
        "off_outside": lambda n: units_on_span(tiny_recording, 100, 110, off_outside=n),
        "min_length": lambda n: match_spans(tiny_recording, "2:cell:3", min_length=n),
        "top": lambda top: search(tiny_recording, "in_comment", top=top, nulls=False),
    }
    for name, call in calls.items():
        for bad in ("5", 2.5):
            with pytest.raises(ProbeError, match=f"{name} must be a whole number"):
                call(bad)
    assert len(top_contexts(tiny_recording, "2:cell:3", k=np.int64(2))) == 2
    assert units_on_span(tiny_recording, np.int64(100), np.int64(101), threshold=-1e9)
    with pytest.raises(ProbeError, match=r"span \[-10, 5\) is not inside the text"):
        units_on_span(tiny_recording, -10, 5)


def test_an_empty_list_of_kinds_is_a_probe_error(tiny_recording):
    """search failed in numpy ("need at least one array to concatenate")."""
    for call in (
        lambda: search(tiny_recording, "in_comment", kinds=[]),
        lambda: units_on_span(tiny_recording, 100, 110, kinds=[]),
    ):
        with pytest.raises(ProbeError, match="no kinds given; name some of candidate, cell"):
            call()


def test_compute_with_its_arguments_swapped_names_a_short_unknown_feature():
    """compute(text, name) said "unknown feature" followed by the whole text: a megabyte."""
    text = shared_text("warpeace.txt", 50_000)
    with pytest.raises(ProbeError) as error:
        compute(text, "in_quote")
    assert len(str(error.value)) < 400 and "(50,000 chars)" in str(error.value)
    assert compute("in_quote", text).shape == (50_000,)


def test_a_plot_given_another_function_s_table_says_which_it_plots(tiny_recording):
    """Each failed with a bare KeyError ('left', 'feature', 'model')."""
    saturation = gate_saturation(tiny_recording)
    found = search(tiny_recording, "in_comment", top=2, nulls=False)
    for figure, table, made_by in [
        (saturation_figure, found, "gate_saturation"),
        (search_figure, saturation, "search"),
        (decay_figure, found, "gradient_decay"),
    ]:
        with pytest.raises(ProbeError, match=f"plots a table made by {made_by}; the one given"):
            figure(table)
    assert saturation_figure(saturation).data and search_figure(found).data


def test_a_recording_where_a_checkpoint_goes_is_named_not_a_type_error(tiny_recording):
    """Path(recording) was a TypeError from deep inside pathlib."""
    from probe.gradients import gradient_decay

    with pytest.raises(ProbeError, match="^expected a checkpoint folder, got Recording"):
        gradient_decay(tiny_recording, "some text")
    for bad in (3, None):
        with pytest.raises(ProbeError, match="^expected a recording folder, got"):
            Recording.of(bad)


def test_loss_bits_are_made_without_a_whole_recording_copy(tiny_recording):
    """The dashboard and exports take the per-char loss of the whole recording: one float32
    array, never float64 or negated temporaries of the same length (74 MB on 6M chars)."""
    import math
    import tracemalloc

    tracemalloc.start()
    try:
        bits = tiny_recording.loss_bits()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    logprob = np.asarray(tiny_recording.logprob)
    assert bits.dtype == np.float32 and np.isnan(bits[0])
    np.testing.assert_array_equal(bits[1:], -logprob[:-1] / math.log(2))
    assert peak < 1.5 * bits.nbytes, (peak, bits.nbytes)
