"""probe.scan's worker pool: results in order, torch single-threaded in the workers, the
caller's thread count untouched, and a forked child that can still use it."""

from __future__ import annotations

import os

import pytest


def test_parallel_keeps_order_and_the_callers_thread_count():
    import torch

    from probe.scan import parallel

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = list(parallel(lambda i: (i, torch.get_num_threads()), range(20)))
        assert [i for i, _ in seen] == list(range(20))
        assert {threads for _, threads in seen} == {1}  # workers run torch single-threaded
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _parallel_in_child() -> None:
    import torch

    from probe.scan import parallel

    torch.set_num_threads(2)
    assert list(parallel(abs, range(-4, 0))) == [4, 3, 2, 1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this OS")
def test_parallel_works_in_a_forked_child_after_the_parent_used_it():
    """The pool is kept for the process: a forked child, which has none of its threads,
    gets its own (a stale pool would never run the child's tasks)."""
    import multiprocessing

    import torch

    from probe.scan import parallel

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert list(parallel(abs, range(-3, 0))) == [3, 2, 1]  # the parent's pool exists
        child = multiprocessing.get_context("fork").Process(target=_parallel_in_child)
        child.start()
        child.join(timeout=60)
        hung = child.is_alive()
        if hung:
            child.kill()
        assert not hung and child.exitcode == 0
    finally:
        torch.set_num_threads(before)
