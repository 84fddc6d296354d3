"""The Python API as a notebook uses it: short reprs, and clear ProbeErrors for bad arguments."""

from probe import Recording


def test_a_recording_repr_is_one_short_line(tiny_recording):
    """A notebook shows a cell's last value by its repr: it used to be the whole text."""
    shown = repr(Recording.open(tiny_recording.path))
    assert shown == f"<Recording {str(tiny_recording.path)!r}: 20,000 chars of lstm 2x32>"
