"""The recorder's compiled kernels (probe/_recorder_kernels.c), wrapped: the LSTM and GRU
layers, their step math, the decoder's log-probs, the LSTM cell state from oneDNN's gates
and the float16 copies. Call them only where `probe.kernels.library` is not None; each
checks dtypes, layouts and shapes first, as C cannot, and returns False (nothing done)
where it does not take the tensors it is given, for the caller to use torch.
"""

from __future__ import annotations

import torch

from probe import kernels

DECODE_ROWS = 48  # rows per block in probe_logprob (its scratch)


def lstm_cells(gates: torch.Tensor, c: torch.Tensor, cell: torch.Tensor) -> None:
    """cell[t] = c = f_t * c + i_t * g_t for every step t of gates (steps, streams, >= 3 H:
    i, f, g first, any strides with unit-stride rows, float32), from c (streams, H) on; c
    ends as the last state. cell: float32 (steps, streams, H), contiguous."""
    steps, streams, _ = gates.shape
    hidden = c.shape[1]
    if gates.device.type != "cpu" or gates.dtype != torch.float32 or gates.stride(2) != 1:
        raise TypeError("kernel wants float32 gates on the CPU, rows unit-stride")
    if gates.shape[2] < 3 * hidden:
        raise TypeError("kernel wants gates (steps, streams, >= 3 hidden)")
    for tensor, shape in ((c, (streams, hidden)), (cell, (steps, streams, hidden))):
        if not kernels.on_cpu(tensor, torch.float32, shape):
            raise TypeError(f"kernel wants a contiguous float32 CPU tensor of shape {shape}")
    kernels.library.probe_lstm_cells(
        gates.data_ptr(), gates.stride(0), gates.stride(1), steps, streams, hidden,
        c.data_ptr(), cell.data_ptr(),
    )  # fmt: skip


def to_half(values: torch.Tensor, out: torch.Tensor) -> None:
    """out[s, t] = values[t, s] as float16: values float32 (steps, streams, width), any step
    and stream strides, unit-stride rows; out float16 (streams, >= steps, width), contiguous."""
    steps, streams, width = values.shape
    if values.device.type != "cpu" or values.dtype != torch.float32 or values.stride(2) != 1:
        raise TypeError("kernel wants float32 values on the CPU with unit-stride rows")
    if not kernels.on_cpu(out, torch.float16, out.shape):
        raise TypeError("kernel wants a contiguous float16 (streams, steps, width) CPU output")
    if out.shape[0] != streams or out.shape[1] < steps or out.shape[2] != width:
        raise TypeError(f"kernel wants an output of ({streams}, >= {steps}, {width})")
    kernels.library.probe_to_half(
        values.data_ptr(), values.stride(0), values.stride(1), steps, streams, width,
        out.data_ptr(), out.shape[1],
    )  # fmt: skip


def _steps(hidden: int, streams: int, tensors: list[tuple[torch.Tensor, int]]) -> bool:
    """Whether a step kernel takes these (tensor, width) pairs: contiguous float32 CPU
    tensors of shape (streams, width), and hidden % 8 == 0 (the kernels' lanes)."""
    return hidden % 8 == 0 and all(
        kernels.on_cpu(tensor, torch.float32, (streams, width)) for tensor, width in tensors
    )


def gru_step(
    row: torch.Tensor, recurrent: torch.Tensor, h: torch.Tensor, h_next: torch.Tensor
) -> bool:
    """One GRU step's gate math (see probe_gru_step): row (streams, 3H) = x W_ih^T + b_ih,
    overwritten with r, z, n; recurrent (streams, 3H) = h W_hh^T + b_hh; h_next written.
    False (nothing done) where the kernel does not take these tensors: the caller uses torch."""
    streams, hidden = h.shape
    tensors = [(row, 3 * hidden), (recurrent, 3 * hidden), (h, hidden), (h_next, hidden)]
    if not _steps(hidden, streams, tensors):
        return False
    kernels.library.probe_gru_step(
        row.data_ptr(), recurrent.data_ptr(), h.data_ptr(), h_next.data_ptr(), streams, hidden
    )
    return True


def lstm_step(
    row: torch.Tensor,
    recurrent: torch.Tensor | None,
    c: torch.Tensor,
    c_next: torch.Tensor,
    h_next: torch.Tensor,
) -> bool:
    """One LSTM step's gate math (see probe_lstm_step): row (streams, 4H) = x W_ih^T + b in
    gate order i, f, o, g, plus recurrent (streams, 4H) = h W_hh^T (None: already in row), is
    overwritten with the activated gates; c_next and h_next are written from c. False
    (nothing done) where the kernel does not take these tensors: the caller uses torch."""
    streams, hidden = c.shape
    tensors = [(row, 4 * hidden), (c, hidden), (c_next, hidden), (h_next, hidden)]
    if not _steps(hidden, streams, tensors + [(recurrent, 4 * hidden)] * (recurrent is not None)):
        return False
    kernels.library.probe_lstm_step(
        row.data_ptr(), None if recurrent is None else recurrent.data_ptr(),
        c.data_ptr(), c_next.data_ptr(), h_next.data_ptr(), streams, hidden,
    )  # fmt: skip
    return True


def lstm_pack(w_hh: torch.Tensor) -> torch.Tensor:
    """W_hh (4H, H), gate blocks i, f, o, g, laid out for `lstm_layer`: for each block of 8
    units, two panels (gates i, f; then o, g), each a row of 2 x 8 weights per k:
    (H/8, 2, H, 2, 8)."""
    hidden = w_hh.shape[1]
    return w_hh.reshape(2, 2, hidden // 8, 8, hidden).permute(2, 0, 4, 1, 3).contiguous()


def _halves(halves: list[torch.Tensor | None] | None, kinds: int, shape: tuple[int, int, int]):
    """(pointer array or None, steps_out) for a layer kernel's float16 copies, or None where
    the kernel cannot take them: `kinds` entries, each None or a contiguous float16 CPU
    tensor (streams, steps_out, hidden), one steps_out >= steps for all. shape: (steps,
    streams, hidden)."""
    if halves is None or not any(half is not None for half in halves):
        return None, 0
    steps, streams, hidden = shape
    steps_out = next(half for half in halves if half is not None).shape[1]
    taken = len(halves) == kinds and steps_out >= steps
    if not taken or not all(
        kernels.on_cpu(half, torch.float16, (streams, steps_out, hidden))
        for half in halves
        if half is not None
    ):
        return None
    return kernels.pointer_array(
        [None if half is None else half.data_ptr() for half in halves]
    ), steps_out


def _run_layer(name: str, lanes: int, shapes, halves, kinds: int, size: tuple) -> bool:
    """The layer kernel `name` on (tensor, shape) pairs, then the float16 copies' pointers
    and size = (steps, streams, hidden), where it takes them: hidden a multiple of `lanes`,
    every tensor a contiguous float32 CPU tensor of its shape, `halves` as `_halves` takes
    `kinds` of them. False (nothing done) where it does not."""
    copies = _halves(halves, kinds, size)
    if size[2] % lanes or copies is None:
        return False
    if any(not kernels.on_cpu(tensor, torch.float32, shape) for tensor, shape in shapes):
        return False
    getattr(kernels.library, name)(*(tensor.data_ptr() for tensor, _ in shapes), *copies, *size)
    return True


def lstm_layer(
    packed: torch.Tensor,
    gates: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    hidden_out: torch.Tensor,
    cell_out: torch.Tensor,
    halves: list[torch.Tensor | None] | None = None,
) -> bool:
    """An LSTM layer over a chunk (see probe_lstm_layer): gates (steps, streams, 4H) = x
    W_ih^T + b in gate order i, f, o, g, overwritten with the activated gates; hidden_out and
    cell_out (steps, streams, H) written, from state h, c (streams, H); packed from
    `lstm_pack`. `halves`: for i, f, o, g, c, h, None or a float16 (streams, >= steps, H)
    tensor that gets a copy (stream-major, as `to_half` writes). False (nothing done) where
    the kernel does not take these tensors."""
    steps, streams, width = gates.shape
    hidden = width // 4
    shapes = [
        (packed, (hidden // 8, 2, hidden, 2, 8)),
        (gates, (steps, streams, 4 * hidden)),
        (h, (streams, hidden)),
        (c, (streams, hidden)),
        (hidden_out, (steps, streams, hidden)),
        (cell_out, (steps, streams, hidden)),
    ]
    return _run_layer("probe_lstm_layer", 8, shapes, halves, 6, (steps, streams, hidden))


def gru_pack(w_hh: torch.Tensor) -> torch.Tensor:
    """W_hh (3H, H), gate blocks r, z, n, laid out for `gru_layer`: for each block of 16
    units, three panels of a row of 16 weights per k (r, z of units 0-7; r, z of units 8-15;
    n of all 16): (H/16, 3, H, 2, 8)."""
    hidden = w_hh.shape[1]
    blocks = w_hh.reshape(3, hidden // 16, 2, 8, hidden)  # gate, block, half, unit, k
    reset_update = blocks[:2].permute(1, 2, 4, 0, 3)  # block, half, k, gate, unit
    candidate = blocks[2].permute(0, 3, 1, 2)[:, None]  # block, 1, k, half, unit
    return torch.cat([reset_update, candidate], dim=1).contiguous()


def gru_layer(
    packed: torch.Tensor,
    b_hh: torch.Tensor,
    gates: torch.Tensor,
    h: torch.Tensor,
    hidden_out: torch.Tensor,
    halves: list[torch.Tensor | None] | None = None,
) -> bool:
    """A GRU layer over a chunk (see probe_gru_layer): gates (steps, streams, 3H) = x W_ih^T
    + b_ih, overwritten with r, z, n; hidden_out (steps, streams, H) written from state h
    (streams, H); packed from `gru_pack`, b_hh (3H); `halves` for r, z, n, h as in
    `lstm_layer`. False (nothing done) where the kernel does not take these tensors."""
    steps, streams, width = gates.shape
    hidden = width // 3
    scratch = torch.empty(streams, 16)
    shapes = [
        (packed, (hidden // 16, 3, hidden, 2, 8)),
        (b_hh, (3 * hidden,)),
        (gates, (steps, streams, 3 * hidden)),
        (h, (streams, hidden)),
        (hidden_out, (steps, streams, hidden)),
        (scratch, (streams, 16)),
    ]
    return _run_layer("probe_gru_layer", 16, shapes, halves, 4, (steps, streams, hidden))


def rnn_layer(
    packed: torch.Tensor,
    gates: torch.Tensor,
    h: torch.Tensor,
    hidden_out: torch.Tensor,
    halves: list[torch.Tensor | None] | None = None,
) -> bool:
    """A tanh RNN layer over a chunk (see probe_rnn_layer): gates (steps, streams, H) = x
    W_ih^T + b_ih + b_hh (h W_hh^T is added into it); hidden_out (steps, streams, H) written
    from state h (streams, H); packed from `panel_pack`; `halves` for h as in `lstm_layer`.
    False (nothing done) where the kernel does not take these tensors."""
    steps, streams, hidden = gates.shape
    shapes = [
        (packed, (hidden // 16, hidden, 16)),
        (gates, (steps, streams, hidden)),
        (h, (streams, hidden)),
        (hidden_out, (steps, streams, hidden)),
    ]
    return _run_layer("probe_rnn_layer", 16, shapes, halves, 1, (steps, streams, hidden))


def panel_pack(weight: torch.Tensor) -> torch.Tensor:
    """A (rows, K) weight as panels of 16 rows, each a row of their 16 weights per k, the
    rows padded with zeros to a multiple of 16: (padded / 16, K, 16). The layout of the
    decoder for `logprob` and of a vanilla RNN's W_hh for `rnn_layer`."""
    rows, width = weight.shape
    padded = torch.zeros(-(-rows // 16) * 16, width, dtype=torch.float32)
    padded[:rows] = weight.detach().float().cpu()
    return padded.reshape(-1, 16, width).transpose(1, 2).contiguous()


def decoder_pack(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's weight (vocab, H) and bias laid out for `logprob`: `panel_pack`'s
    panels, the bias padded with zeros to match."""
    panels = panel_pack(weight)
    biases = torch.zeros(panels.shape[0] * 16, dtype=torch.float32)
    biases[: len(bias)] = bias.detach().float().cpu()
    return panels, biases


def logprob(
    packed: tuple[torch.Tensor, torch.Tensor],
    vocab: int,
    hidden: torch.Tensor,
    next_ids: torch.Tensor,
    out: torch.Tensor,
) -> bool:
    """out[s, t] = log p(next_ids[s, t]) under the decoder (see probe_logprob) from the top
    layer's h: hidden float32 (steps, streams, H), next_ids int64 and out float32 (streams,
    steps), all contiguous on the CPU; packed from `decoder_pack`. False (nothing done) where
    the kernel does not take these tensors."""
    weights, biases = packed
    steps, streams, width = hidden.shape
    padded = biases.shape[0]
    shapes = [
        (weights, torch.float32, (padded // 16, width, 16)),
        (hidden, torch.float32, (steps, streams, width)),
        (next_ids, torch.int64, (streams, steps)),
        (out, torch.float32, (streams, steps)),
    ]
    if any(not kernels.on_cpu(tensor, dtype, shape) for tensor, dtype, shape in shapes):
        return False
    if next_ids.numel() and not (0 <= int(next_ids.min()) and int(next_ids.max()) < vocab):
        raise IndexError(f"next ids out of range [0, {vocab})")
    scratch = torch.empty(DECODE_ROWS, padded)
    kernels.library.probe_logprob(
        weights.data_ptr(), biases.data_ptr(), hidden.data_ptr(), next_ids.data_ptr(),
        out.data_ptr(), scratch.data_ptr(), steps, streams, width, vocab, padded,
    )  # fmt: skip
    return True
