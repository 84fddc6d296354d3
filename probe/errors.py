"""One exception type for every user-facing failure.

The CLI catches `ProbeError` and prints its message on one line with a non-zero exit, so
anything a user can cause (bad path, bad flag, foreign file) should raise it, never a bare
traceback.
"""


class ProbeError(Exception):
    """An error caused by the user's input, reported as one line."""


def option(name: str) -> str:
    """A yes/no option as the command line and Python spell it, for a message either may get:
    option("overwrite") is "--overwrite (overwrite=True in Python)"."""
    return f"--{name.replace('_', '-')} ({name}=True in Python)"


def argument(name: str) -> str:
    """An argument as the command line and Python spell it: "--max-chars (max_chars in Python)"."""
    return f"--{name.replace('_', '-')} ({name} in Python)"
