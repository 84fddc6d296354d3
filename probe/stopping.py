"""How commands stop on Ctrl-C and `kill` (SIGTERM): both the same way, through the command's
cleanup, also in a background job (which starts with SIGINT ignored)."""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install(handler) -> dict:
    """Send Ctrl-C and `kill` to `handler` (where a handler may be set: the main thread).
    Returns the previous handlers, for `restore`."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {number: signal.signal(number, handler) for number in SIGNALS}


def restore(previous: dict) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)


def stop_on_signals() -> dict:
    """Make `kill` raise KeyboardInterrupt as Ctrl-C does, so a command cut short stops
    through its cleanup (a recording leaves no half-written temporary folder)."""
    return install(signal.default_int_handler)


class StopRequests:
    """Ctrl-C and `kill` ask training to stop after the step under way: a step, a validation
    and its saves are never cut in half, so `best/`, `last/`, the log and the best loss
    always agree. A second Ctrl-C stops at once; the run keeps what its last validation saved."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict = {}

    def __enter__(self) -> StopRequests:
        self.previous = install(self._request)
        return self

    def __exit__(self, *exc) -> None:
        restore(self.previous)

    def _request(self, number, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
