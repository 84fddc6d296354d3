"""One exception type for every user-facing failure.

The CLI catches `ProbeError` and prints its message on one line with a non-zero exit, so
anything a user can cause (bad path, bad flag, foreign file) should raise it, never a bare
traceback.
"""


class ProbeError(Exception):
    """An error caused by the user's input, reported as one line."""
