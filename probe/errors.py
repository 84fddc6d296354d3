"""One exception type for every user-facing failure.

The CLI catches `ProbeError` and prints its message on one line with a non-zero exit, so
anything a user can cause (bad path, bad flag, foreign file) should raise it, never a bare
traceback.
"""

import numbers


class ProbeError(Exception):
    """An error caused by the user's input, reported as one line."""


def option(name: str) -> str:
    """A yes/no option as the command line and Python spell it, for a message either may get:
    option("overwrite") is "--overwrite (overwrite=True in Python)"."""
    return f"--{name.replace('_', '-')} ({name}=True in Python)"


def argument(name: str) -> str:
    """An argument as the command line and Python spell it: "--max-chars (max_chars in Python)"."""
    return f"--{name.replace('_', '-')} ({name} in Python)"


def whole_number(value, name: str, minimum: int | None = 0) -> int:
    """value as an int, if it is a whole number >= minimum (None: any; numpy's ints too): a str
    or a float where an int goes failed deep inside numpy, and top_contexts(k=2.5) never stopped."""
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not whole or (minimum is not None and value < minimum):
        at_least = "" if minimum is None else f" >= {minimum}"
        raise ProbeError(f"{name} must be a whole number{at_least}, got {value!r}")
    return int(value)
