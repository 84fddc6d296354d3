"""Recorder speed: chars/s recording every kind to float16 on disk, against three references.

(a) `CharRNN.trace` with batch 1: the per-character loop tools fall back to;
(b) the fused `nn.LSTM`/`nn.GRU`/`nn.RNN` forward over the same text in the same parallel
    streams, returning h only (what PyTorch gives without recording anything);
(c) the FLOP bound: FLOPs per char of the recurrence and input projections (layer 1's input
    projection is a lookup, so it counts 0; the decoder is not counted) over the peak fp32
    GEMM rate measured in the same rounds.
"""

from __future__ import annotations

import shutil

import numpy as np
import torch
import torch.nn.functional as F

from bench.common import GemmPeak, disk_write_gbs, interleaved, linux_text, ratio, scratch
from probe.corpus import Vocab
from probe.fastrecord import uses_fused_kernel
from probe.model import GATES_PER_CELL, CharRNN, ModelConfig
from probe.record import record_arrays
from probe.recording import RecordingWriter
from probe.streams import plan_streams

# (cell, layers, hidden, chars at scale 1): 3x512 records 18 KB per char, so 250k chars.
SHAPES = [
    ("lstm", 1, 128, 1_000_000),
    ("lstm", 2, 256, 1_000_000),
    ("lstm", 3, 512, 250_000),
    ("gru", 2, 256, 1_000_000),
    ("rnn", 2, 256, 1_000_000),
]
WARMUP = 500  # the recorder's default
LOOP_CHARS = 3_000  # reference (a) is slow: it runs on a prefix and is scaled to chars/s
TARGETS = {"flop_bound": 0.6, "vs_loop": 20.0, "vs_fused": 1 / 1.5}


def flops_per_char(cell: str, layers: int, hidden: int) -> int:
    gates = GATES_PER_CELL[cell] * hidden
    return sum(2 * gates * (hidden + (hidden if layer else 0)) for layer in range(layers))


def fused_forward(model: CharRNN, ids: np.ndarray, steps: int = 256):
    """Reference (b): the fused layer over the same streams, h only, state carried."""
    device = next(model.parameters()).device
    fused, gpu = uses_fused_kernel(model), device.type == "cuda"
    streams, segment, _ = plan_streams(len(ids), None, WARMUP, fused, gpu)
    padded = np.zeros(streams * segment, dtype=np.int64)
    padded[: len(ids)] = ids
    tokens = torch.from_numpy(padded.reshape(streams, segment)).to(device)

    def run():
        with torch.no_grad():
            state = None
            for column in range(0, segment, steps):
                x = F.one_hot(tokens[:, column : column + steps], model.config.vocab_size)
                _, state = model.rnn(x.float(), state)

    return run


def bench_shape(
    cell: str, layers: int, hidden: int, chars: int, rounds: int, device: str = "cpu"
) -> dict:
    text = linux_text(chars)
    vocab = Vocab.build(text)
    ids = vocab.encode(text)
    model = CharRNN(ModelConfig(cell, layers, hidden, 0.0, len(vocab))).to(device).eval()
    kinds = list(model.kinds)
    folder = scratch(f"{cell}{layers}x{hidden}")
    shapes = {(layer, kind): hidden for layer in range(1, layers + 1) for kind in kinds}
    loop_ids = torch.from_numpy(ids[: min(LOOP_CHARS, chars)])[None].to(device)
    loop_chars = loop_ids.shape[1]

    rounds_done = []
    peak = GemmPeak(device)

    def ours():  # a fresh folder per round, as a user's recording gets
        out = folder / f"round-{len(rounds_done)}"
        out.mkdir()
        record_arrays(model, ids, RecordingWriter(out, text, shapes), kinds, progress=False)
        rounds_done.append(out)

    def drop():  # untimed by any ratio: deleting the last round's files (and their dirty
        shutil.rmtree(rounds_done[-1])  # pages) is not part of the next round's recording

    try:
        times = interleaved(
            {
                "ours": ours,
                "drop": drop,
                "fused": fused_forward(model, ids),
                "loop": lambda: model.trace(loop_ids),
                **peak.runs(),
            },
            rounds,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ours_rate = [chars / t for t in times["ours"]]
    bound = [g * 1e9 / flops_per_char(cell, layers, hidden) for g in peak.gflops()]
    return {
        "shape": f"{cell} {layers}x{hidden}",
        "chars": chars,
        "bytes_per_char": 2 * len(shapes) * hidden,
        "ours_chars_s": max(ours_rate),
        "fused_chars_s": chars / min(times["fused"]),
        "loop_chars_s": loop_chars / min(times["loop"]),
        "peak_gflops": max(peak.gflops()),
        "gemm_gflops": peak.path_gflops(),
        "gemm_size": peak.size,
        "flop_bound": float(np.median([o / b for o, b in zip(ours_rate, bound)])),
        "fused_flop_bound": float(
            np.median([chars / t / b for t, b in zip(times["fused"], bound)])
        ),
        "fused_vs_loop": ratio(
            [t / loop_chars for t in times["loop"]], [t / chars for t in times["fused"]]
        ),
        "vs_loop": ratio(
            [t / loop_chars for t in times["loop"]], [t / chars for t in times["ours"]]
        ),
        "vs_fused": ratio(times["fused"], times["ours"]),
    }


def main(scale: float = 1.0, rounds: int = 3, device: str = "cpu") -> list[dict]:
    folder = scratch("disk")
    try:
        disk = disk_write_gbs(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"  disk write + fsync {disk:.2f} GB/s", flush=True)
    results = []
    for cell, layers, hidden, chars in SHAPES:
        chars = max(2_000, int(chars * scale))
        result = bench_shape(cell, layers, hidden, chars, rounds, device)
        result["written_gbs"] = result["ours_chars_s"] * result["bytes_per_char"] / 1e9
        result["disk_write_gbs"] = disk
        print(
            f"  recorder {result['shape']:13s} {result['ours_chars_s']:9,.0f} chars/s  "
            f"{result['flop_bound']:.2f} of FLOP bound  {result['vs_loop']:5.1f}x loop  "
            f"{result['vs_fused']:.2f}x fused h-only  {result['written_gbs']:.2f} GB/s written",
            flush=True,
        )
        results.append(result)
    return results


if __name__ == "__main__":
    from bench.common import setup

    setup()
    main(scale=0.05, rounds=2)
