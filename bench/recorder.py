"""Recorder speed: chars/s recording every kind to float16 on disk, against three references.

(a) `per_char_loop`: what tools fall back to and most people write, since the fused layers
    return h only: batch 1, each char through every layer in turn, the gates from
    `F.linear` on the char's input and the previous h, the states appended to lists.
    Also reported: `CharRNN.trace` with batch 1, a stricter loop that already hoists the
    input projections out of the loop and writes into preallocated outputs (two of the
    optimisations the recorder is measured on);
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
LOOP_CHARS = 3_000  # the loops are slow: they run on a prefix and are scaled to chars/s
FUSED_SHARE = 0.25  # (b) stores nothing, so its rate is steady from the start: a quarter
# of each stream's steps measures it and keeps the bench short (same streams, same GEMMs)
TARGETS = {"flop_bound": 0.6, "vs_loop": 20.0, "vs_fused": 1 / 1.5}


def flops_per_char(cell: str, layers: int, hidden: int) -> int:
    gates = GATES_PER_CELL[cell] * hidden
    return sum(2 * gates * (hidden + (hidden if layer else 0)) for layer in range(layers))


@torch.no_grad()
def per_char_loop(model: CharRNN, ids: torch.Tensor) -> dict[tuple[int, str], torch.Tensor]:
    """Reference (a): ids (chars,) one at a time through every layer, batch 1, as a
    per-character extraction script computes what the fused layers hide. Returns
    {(layer, kind): (chars, hidden)} (layers from 1), as `CharRNN.trace` does."""
    config = model.config
    weights = [model.layer_weights(layer) for layer in range(config.layers)]
    h = [torch.zeros(1, config.hidden, device=ids.device) for _ in weights]
    c = [torch.zeros_like(state) for state in h]
    states: dict[tuple[int, str], list[torch.Tensor]] = {}
    for char in ids:
        x = F.one_hot(char[None], config.vocab_size).float()
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
            inputs, recurrent = F.linear(x, w_ih, b_ih), F.linear(h[layer], w_hh, b_hh)
            if config.cell == "lstm":
                i, f, g, o = (inputs + recurrent).chunk(4, dim=1)
                i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
                c[layer] = f * c[layer] + i * g
                h[layer] = o * c[layer].tanh()
                values = {"cell": c[layer], "input_gate": i, "forget_gate": f,
                          "output_gate": o, "candidate": g}  # fmt: skip
            elif config.cell == "gru":
                (x_r, x_z, x_n), (h_r, h_z, h_n) = inputs.chunk(3, 1), recurrent.chunk(3, 1)
                r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
                n = (x_n + r * h_n).tanh()
                h[layer] = (1 - z) * n + z * h[layer]
                values = {"reset_gate": r, "update_gate": z, "candidate": n}
            else:
                h[layer] = (inputs + recurrent).tanh()
                values = {}
            values["hidden"] = h[layer]
            for kind, value in values.items():
                states.setdefault((layer + 1, kind), []).append(value)
            x = h[layer]
        model.decoder(x)  # the next char's logits, as the recorder computes them
    return {key: torch.cat(values) for key, values in states.items()}


def fused_forward(model: CharRNN, ids: np.ndarray, steps: int = 256):
    """Reference (b): the fused layer over the same streams as the recorder plans for ids,
    h only, state carried, for the first FUSED_SHARE of each stream's steps. Returns the
    run and the number of chars it covers."""
    device = next(model.parameters()).device
    fused, gpu = uses_fused_kernel(model), device.type == "cuda"
    streams, segment, _ = plan_streams(len(ids), None, WARMUP, fused, gpu)
    padded = np.zeros(streams * segment, dtype=np.int64)
    padded[: len(ids)] = ids
    tokens = torch.from_numpy(padded.reshape(streams, segment)).to(device)
    share = max(1, round(segment * FUSED_SHARE))

    def run(columns: int = share):
        with torch.no_grad():
            state = None
            for column in range(0, columns, steps):
                end = min(column + steps, columns)
                x = F.one_hot(tokens[:, column:end], model.config.vocab_size)
                _, state = model.rnn(x.float(), state)

    return run, streams * share


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
    fused_run, fused_chars = fused_forward(model, ids)
    fused_run(512)  # untimed: its set-up (oneDNN primitives), which a quarter of the text
    # weighs 4x more than the whole text did

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
                "fused": fused_run,
                "loop": lambda: per_char_loop(model, loop_ids[0]),
                "trace": lambda: model.trace(loop_ids),
                **peak.runs(),
            },
            rounds,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "shape": f"{cell} {layers}x{hidden}",
        "chars": chars,
        "bytes_per_char": 2 * len(shapes) * hidden,
        "flops_per_char": flops_per_char(cell, layers, hidden),
        "ours_chars_s": chars / min(times["ours"]),
        "fused_chars_s": fused_chars / min(times["fused"]),
        "loop_chars_s": loop_chars / min(times["loop"]),
        "trace_chars_s": loop_chars / min(times["trace"]),
        "gemm_gflops": peak.path_gflops(),
        "gemm_size": peak.size,
        "fused_vs_loop": ratio(
            [t / loop_chars for t in times["loop"]], [t / fused_chars for t in times["fused"]]
        ),
        "vs_loop": ratio(
            [t / loop_chars for t in times["loop"]], [t / chars for t in times["ours"]]
        ),
        "vs_trace": ratio(
            [t / loop_chars for t in times["trace"]], [t / chars for t in times["ours"]]
        ),
        "vs_fused": ratio(
            [t / fused_chars for t in times["fused"]], [t / chars for t in times["ours"]]
        ),
    }


def add_flop_bounds(results: list[dict]) -> float:
    """Each result's fraction of the FLOP bound, and its fused layer's: its best round's
    chars/s x FLOPs per char over the best GEMM rate of the whole run (the peak: noise only
    ever slows a GEMM down, so a slowed round's rate would flatter every fraction measured
    against it). Returns that peak (GFLOP/s)."""
    peak = max(max(r["gemm_gflops"].values()) for r in results)
    for r in results:
        r["flop_bound"] = r["ours_chars_s"] * r["flops_per_char"] / (peak * 1e9)
        r["fused_flop_bound"] = r["fused_chars_s"] * r["flops_per_char"] / (peak * 1e9)
    return peak


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
            f"{result['vs_loop']:5.1f}x loop  "
            f"{result['vs_trace']:5.1f}x trace  "
            f"{result['vs_fused']:.2f}x fused h-only  {result['written_gbs']:.2f} GB/s written",
            flush=True,
        )
        results.append(result)
    peak = add_flop_bounds(results)
    bounds = ", ".join(f"{r['shape']} {r['flop_bound']:.2f}" for r in results)
    print(f"  fractions of the FLOP bound (peak GEMM {peak:.0f} GFLOP/s): {bounds}", flush=True)
    return results


if __name__ == "__main__":
    from bench.common import setup

    setup()
    main(scale=0.05, rounds=2)
