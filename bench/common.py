"""What every benchmark shares: the machine's description, its measured limits, timing.

Shared machines are noisy, so benchmarks never trust one absolute time: ours and a reference
run interleaved, round after round, in one process, and each round gives a ratio; we report
the median ratio and the best rate of each side.
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from probe import kernels
from probe.corpus import find_named
from probe.fileio import read_text_file
from probe.onednn import ONEDNN, linear

THREADS = 2
GEMM_SIZE = 1024
GEMM_REPEATS = 8
GPU_GEMM_SIZE = 8192


def setup(threads: int = THREADS) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)


def machine(device: str = "cpu") -> dict:
    """CPU model, cores, load, the GPU if used and library versions: printed next to results."""
    cpu = platform.processor() or "unknown CPU"
    fields: dict[str, str] = {}  # the first CPU's /proc/cpuinfo lines
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines():
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
    if cpu in ("unknown CPU", "x86_64", "") and "model name" in fields:
        cpu = fields["model name"]
    if "cpu family" in fields:  # a generic model name ("AMD EPYC") hides the generation
        cpu += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    flags = f" {fields.get('flags', '')}"
    extensions = [name for name in ("avx2", "avx512f", "amx_tile") if f" {name}" in flags]
    caches = Path("/sys/devices/system/cpu/cpu0/cache")
    sizes = [
        f"L{(index / 'level').read_text().strip()} {(index / 'size').read_text().strip()}"
        for index in sorted(caches.glob("index[23]"))
        if (index / "size").is_file()
    ]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "extensions": ", ".join(extensions) or "none listed",
        **({"caches": ", ".join(sizes)} if sizes else {}),
        "load_1min": round(os.getloadavg()[0], 1),
        **({"gpu": torch.cuda.get_device_name(device)} if device.startswith("cuda") else {}),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "search kernels": "compiled" if kernels.library is not None else "off (torch path)",
    }


def synchronize() -> None:
    """Wait for queued GPU work (if any GPU is in use), so a timer stops when it is done."""
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


def seconds(run: Callable[[], object]) -> float:
    synchronize()
    began = time.perf_counter()
    run()
    synchronize()
    return time.perf_counter() - began


def interleaved(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per round of each run, the runs alternating within every round."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(seconds(run))
    return times


def ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of numerator / denominator (per-round pairs cancel slow drifts)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


class GemmPeak:
    """The peak fp32 GEMM rate, measured in each round: the best of GEMM_REPEATS GEMMs through
    MKL (torch.mm) and through oneDNN (the path nn.LSTM uses on CPU), or through cuBLAS on
    a GPU (8192^3, TF32 off, as the recorder computes). One 13 ms GEMM a round was often
    slowed by a lost time slice (noise only ever slows it down), which inflated every
    fraction of the FLOP bound measured against it."""

    def __init__(self, device: str = "cpu"):
        on_gpu = device.startswith("cuda")
        size = GPU_GEMM_SIZE if on_gpu else GEMM_SIZE
        a, b = (torch.randn(size, size, device=device) for _ in range(2))
        self.size, self.flops = size, 2 * size**3
        self.paths = {f"gemm {'cublas' if on_gpu else 'mkl'}": lambda: torch.mm(a, b)}
        if ONEDNN and not on_gpu:
            self.paths["gemm onednn"] = lambda: linear(a, b, None)
        self.best: dict[str, list[float]] = {name: [] for name in self.paths}

    def runs(self) -> dict[str, Callable[[], object]]:
        """One entry per path for `interleaved`: each call records that round's best time."""

        def measure(name: str) -> None:
            self.best[name].append(min(seconds(self.paths[name]) for _ in range(GEMM_REPEATS)))

        return {name: functools.partial(measure, name) for name in self.paths}

    def path_gflops(self) -> dict[str, float]:
        """Each path's best rate over all rounds (GFLOP/s)."""
        return {name: self.flops / min(times) / 1e9 for name, times in self.best.items()}


def memory_bandwidth_gbs(megabytes: int = 512, rounds: int = 3) -> float:
    """Best read bandwidth of sums over an in-RAM float32 array, one part per thread (GB/s):
    what all cores together can read, as search's passes do (one core alone reads ~60%)."""
    values = np.ones(megabytes * (1 << 20) // 4, dtype=np.float32)
    parts = np.array_split(values, THREADS)
    with ThreadPoolExecutor(THREADS) as pool:  # numpy's sum releases the GIL
        best = min(seconds(lambda: list(pool.map(np.sum, parts))) for _ in range(rounds))
    return values.nbytes / best / 1e9


def disk_write_gbs(folder: Path, megabytes: int = 512, rounds: int = 2) -> float:
    """Best write + fsync rate of a fresh file in `folder` (GB/s): the rate a recording is held
    to once its unwritten pages pass the kernel's dirty-page limit (a share of the RAM)."""
    block = np.random.default_rng(0).integers(0, 255, 8 << 20, dtype=np.uint8)
    path = folder / "disk-write-rate"
    best = np.inf
    for _ in range(rounds):
        began = time.perf_counter()
        with open(path, "wb") as file:
            for _ in range(megabytes // 8):
                file.write(block)
            file.flush()
            os.fsync(file.fileno())
        best = min(best, time.perf_counter() - began)
        path.unlink()
    return megabytes * (1 << 20) / best / 1e9


def linux_text(chars: int) -> str:
    """The first `chars` characters of the Linux corpus, repeated if it is shorter."""
    path = find_named("linux")
    if path is None:
        raise SystemExit("benchmarks need ../shared/data/linux.txt (or $PROBE_DATA)")
    text = read_text_file(path)
    return (text * (chars // len(text) + 1))[:chars]


def scratch(name: str) -> Path:
    """A folder under the temp dir for big benchmark files (deleted by the caller)."""
    return Path(tempfile.mkdtemp(prefix=f"probe-bench-{name}-"))
