"""The Python API as a notebook uses it: short reprs, and clear ProbeErrors for bad arguments."""

import pytest

from probe import ProbeError, Recording, Unit
from probe.search import match_spans


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
