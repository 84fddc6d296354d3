"""How the recorder shares out its work (probe/record.py): streams and their warm-up
context, groups of streams side by side on the cores, torch's threads, and the heap.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import platform
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import numpy as np
import torch

from probe.errors import ProbeError
from probe.model import CharRNN

MIN_SHARD_STREAMS = 8  # fewer streams per group: too few rows per GEMM tile to reuse weights


def plan_streams(
    chars: int, streams: int | None, warmup: int, fused: bool = False, gpu: bool = False
) -> tuple[int, int, int]:
    """(streams, segment length, warm-up).

    Warm-up and the repair of each stream's start (see probe.record) cost as much as
    recording, so streams are few enough that they stay small, and many enough for big
    GEMMs. The layer kernels on CPU run about as fast on 16 streams per core as on 64, so
    the step loop takes one stream per 32 warm-ups (~3% extra, and fewer starts to repair,
    which matters with trained long-memory models: the stdlib demo's 300k chars, 37
    streams 135k chars/s, 16 streams 160k), but at least 16 per thread (see
    `plan_shards`; at 8 per thread a 3x512 layer kernel slows down). On a GPU, where a step of 1024
    streams costs no more launches than one of 256, up to 1024 (each segment >= 4
    warm-ups). The fused kernel runs about as fast on 32 streams as on 512, so it takes few
    long ones (each segment >= 32 warm-ups: ~3% warm-up), but at least 24 where segments
    can keep 8 warm-ups: on fewer it slows down (100k chars, 2x128: 6 streams 71k chars/s,
    25 streams 97k).
    """
    if (streams is not None and streams < 1) or warmup < 0:
        raise ProbeError(f"streams must be >= 1 and warmup >= 0, got {streams} and {warmup}")
    if streams is None:
        if fused:
            few_long = chars // max(32 * warmup, 4000)
            streams = min(64, max(few_long, min(24, chars // max(8 * warmup, 1000))))
        elif gpu:
            streams = min(1024, chars // max(4 * warmup, 1000))
        else:  # and at least 16 per thread where segments can keep 4 warm-ups
            per_thread = min(16 * torch.get_num_threads(), chars // max(4 * warmup, 1000))
            streams = min(256, max(chars // max(32 * warmup, 1000), per_thread))
    streams = max(1, min(streams, chars))
    segment = math.ceil(chars / streams)
    streams = math.ceil(chars / segment)
    return streams, segment, min(warmup, segment)


def warm_up_context(
    ids: np.ndarray, starts: np.ndarray, warmup: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the `warmup` chars before each stream's start (streams, warmup), whether the stream
    starts the text and so has none: it starts from zeros)."""
    cold = starts < warmup
    context = np.stack([ids[max(start - warmup, 0) : max(start, warmup)] for start in starts])
    return torch.from_numpy(context), torch.from_numpy(cold)


def plan_shards(model: CharRNN, streams: int) -> int:
    """Groups of streams recorded side by side, one thread each, with torch on one thread.

    Streams are independent, so a group needs no synchronisation with the others, and a
    step's GEMM runs better on one core than split over two (128 x 256 x 1024 here: ~85
    GFLOP/s on one core, ~65 per core on two); the float16 copies, the gate kernels and
    Python's per-step work, serial otherwise, run in parallel too. CPU only: on a GPU each
    op is parallel.
    """
    on_cpu = next(model.parameters()).device.type == "cpu"
    if not on_cpu:
        return 1
    return max(1, min(torch.get_num_threads(), streams // MIN_SHARD_STREAMS))


@contextlib.contextmanager
def torch_threads(threads: int):
    """torch's intra-op threads set to `threads` inside the block (process-wide)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def side_by_side(work, groups: list[tuple[int, int]], stop: threading.Event) -> None:
    """work(first, last) for each group, one thread each with torch on one thread (in this
    thread, as it is, if only one group).

    On an error or Ctrl-C in any of them, `stop` is set and the others return at their next
    chunk, before the error is raised here."""
    if len(groups) == 1:
        work(*groups[0])
        return
    # OpenMP's thread count is per thread: a new thread starts with the default, so each
    # one sets its own (MKL ran two threads under each otherwise).
    with (
        torch_threads(1),
        ThreadPoolExecutor(len(groups), initializer=torch.set_num_threads, initargs=(1,)) as pool,
    ):
        futures = [pool.submit(work, *group) for group in groups]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            stop.set()
        for future in futures:
            future.result()


@contextlib.contextmanager
def keep_freed_memory():
    """Let freed big blocks stay in the heap while recording.

    glibc hands blocks over 32 MB back to the OS when they are freed, so every chunk's fresh
    buffers (the kernel's workspace, the float16 copies) page-fault again: about a fifth of
    the recorder's time went to the kernel zeroing pages. Inside this block malloc keeps
    them for reuse; afterwards the 32 MB limit returns and the spare memory is released.
    Other C libraries: no change.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        yield
        return
    libc = ctypes.CDLL(None)
    mmap_threshold, trim_threshold = -3, -1  # mallopt's parameter numbers (malloc.h)
    libc.mallopt(mmap_threshold, 1 << 30)
    libc.mallopt(trim_threshold, 1 << 30)
    try:
        yield
    finally:
        libc.mallopt(mmap_threshold, 32 << 20)
        libc.mallopt(trim_threshold, 64 << 20)
        libc.malloc_trim(0)
