"""The recorder's compiled kernels against float64 torch math, and recordings with them
against recordings without them (the torch path every other machine takes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probe import kernels, recorder_kernels

needs_kernels = pytest.mark.skipif(kernels.library is None, reason="kernels not built here")


@needs_kernels
def test_to_half_matches_torch_on_strided_states():
    rng = np.random.default_rng(1)
    base = torch.from_numpy(rng.standard_normal((5, 3, 50)).astype(np.float32) * 3)
    base[0, 0, 3:8] = torch.tensor([1e6, -1e6, 1e-6, -0.0, 65519.0])  # inf, subnormal, -0, rounding
    values = base[:, :, 3:40]  # strided like a gate block of the workspace; width 37
    out = torch.zeros((3, 8, 37), dtype=torch.float16)  # a ring buffer longer than the chunk
    recorder_kernels.to_half(values, out)
    expected = values.transpose(0, 1).to(torch.float16)
    assert torch.equal(out[:, :5].view(torch.int16), expected.contiguous().view(torch.int16))
    assert (out[:, 5:] == 0).all()
    with pytest.raises(TypeError):
        recorder_kernels.to_half(values, torch.zeros((3, 4, 37), dtype=torch.float16))


@needs_kernels
def test_lstm_cells_match_the_step_loop():
    rng = np.random.default_rng(2)
    steps, streams, hidden = 6, 4, 13
    gates = torch.from_numpy(rng.random((steps, streams, 4 * hidden + 3)).astype(np.float32))
    gates = gates[:, :, : 4 * hidden]  # padded rows, as in oneDNN's workspace
    start = torch.from_numpy(rng.standard_normal((streams, hidden)).astype(np.float32))
    c, cell = start.clone(), torch.empty((steps, streams, hidden))
    recorder_kernels.lstm_cells(gates, c, cell)
    i, f, g, _ = gates.split(hidden, dim=-1)
    state = start
    for t in range(steps):
        state = f[t] * state + i[t] * g[t]
        torch.testing.assert_close(cell[t], state, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(c, state, rtol=1e-6, atol=1e-6)


@needs_kernels
def test_recordings_are_the_same_without_kernels(train_tiny, tmp_path, monkeypatch):
    from probe.record import record
    from tests.conftest import shared_text

    text = shared_text("linux.txt", 6_000)
    checkpoint = train_tiny("lstm", layers=2, hidden=32, steps=200)
    options = {"twin": False, "progress": False, "streams": 3}  # without kernels: fused layers
    fast = record(checkpoint, text, tmp_path / "fast", **options)
    monkeypatch.setattr(kernels, "library", None)
    slow = record(checkpoint, text, tmp_path / "slow", **options)
    for layer, kind in fast.layer_kinds:  # to a float16 step (c reaches ~30 here)
        a, b = fast.array(layer, kind), slow.array(layer, kind)
        np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), 2e-3, 2e-3)


def step_inputs(seed: int, gates: int, streams: int = 5, hidden: int = 24):
    """(rng, row, recurrent) for a step kernel: (streams, gates x hidden) each, row with
    saturating values."""
    rng = np.random.default_rng(seed)
    row = torch.from_numpy(rng.standard_normal((streams, gates * hidden)).astype(np.float32) * 4)
    row[0, :8] = torch.tensor([-100.0, 100.0, -20.0, 20.0, 1e-4, -1e-4, 0.0, 88.0])
    recurrent = torch.from_numpy(rng.standard_normal((streams, gates * hidden)).astype(np.float32))
    return rng, row, recurrent


@needs_kernels
def test_gru_step_matches_torch_math():
    streams, hidden = 5, 24
    rng, row, recurrent = step_inputs(3, 3, streams, hidden)
    h = torch.from_numpy(rng.uniform(-1, 1, (streams, hidden)).astype(np.float32))
    expected_row, h_next = row.clone(), torch.empty_like(h)
    r = torch.sigmoid(row[:, :hidden] + recurrent[:, :hidden])
    z = torch.sigmoid(row[:, hidden : 2 * hidden] + recurrent[:, hidden : 2 * hidden])
    n = torch.tanh(row[:, 2 * hidden :] + r * recurrent[:, 2 * hidden :])
    expected_row = torch.cat([r, z, n], dim=1)
    assert recorder_kernels.gru_step(row, recurrent, h, h_next)
    torch.testing.assert_close(row, expected_row, rtol=0, atol=3e-7)
    torch.testing.assert_close(h_next, (1 - z) * n + z * h, rtol=0, atol=5e-7)
    odd = torch.zeros((streams, 3 * 13))  # hidden not a multiple of 8: left to torch
    assert not recorder_kernels.gru_step(
        odd, odd.clone(), torch.zeros(streams, 13), torch.zeros(streams, 13)
    )


@needs_kernels
@pytest.mark.parametrize("separate", [True, False], ids=["recurrent-apart", "recurrent-added"])
def test_lstm_step_matches_torch_math(separate):
    streams, hidden = 5, 24
    rng, row, recurrent = step_inputs(4, 4, streams, hidden)
    c = torch.from_numpy(rng.uniform(-30, 30, (streams, hidden)).astype(np.float32))
    before = row + recurrent
    i, f, o = torch.sigmoid(before[:, : 3 * hidden]).split(hidden, dim=1)
    g = torch.tanh(before[:, 3 * hidden :])
    c_expected = f * c + i * g
    if not separate:
        row, recurrent = before.clone(), None
    c_next, h_next = torch.empty_like(c), torch.empty_like(c)
    assert recorder_kernels.lstm_step(row, recurrent, c, c_next, h_next)
    torch.testing.assert_close(row, torch.cat([i, f, o, g], dim=1), rtol=0, atol=3e-7)
    torch.testing.assert_close(c_next, c_expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(h_next, o * torch.tanh(c_expected), rtol=0, atol=5e-7)
    state = c.clone()  # c_next may be c itself (the kernel reads each value before writing)
    assert recorder_kernels.lstm_step(before.clone(), None, state, state, h_next)
    torch.testing.assert_close(state, c_expected, rtol=1e-6, atol=1e-6)
    odd = torch.zeros((streams, 4 * 13))  # hidden not a multiple of 8: left to torch
    assert not recorder_kernels.lstm_step(odd, None, *(torch.zeros(streams, 13) for _ in range(3)))


def layer_inputs(seed: int, gates: int, hidden: int, streams: int, steps: int = 4):
    """(W_hh, b_hh, x W_ih^T + b_ih, h0, c0) for a layer kernel, float32, seeded."""
    rng = np.random.default_rng(seed)

    def tensor(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values.astype(np.float32))

    return (
        tensor(rng.standard_normal((gates * hidden, hidden)) / hidden**0.5),
        tensor(rng.standard_normal(gates * hidden)),
        tensor(rng.standard_normal((steps, streams, gates * hidden))),
        tensor(rng.uniform(-1, 1, (streams, hidden))),
        tensor(rng.uniform(-5, 5, (streams, hidden))),
    )


@needs_kernels
@pytest.mark.parametrize("hidden, streams", [(8, 1), (24, 7), (264, 13)])
def test_lstm_layer_matches_torch_math(hidden, streams):
    """Fused GEMM and gate math over a chunk, against torch step by step: stream counts that
    leave a short tile of 6, and 264 units, more than one k block (256)."""
    w_hh, _, gates, h0, c0 = layer_inputs(5, 4, hidden, streams)
    steps = len(gates)
    hidden_out, cell_out = torch.empty(steps, streams, hidden), torch.empty(steps, streams, hidden)
    got = gates.clone()
    assert recorder_kernels.lstm_layer(
        recorder_kernels.lstm_pack(w_hh), got, h0, c0, hidden_out, cell_out
    )
    h, c = h0.double(), c0.double()
    for t in range(steps):
        before = gates[t].double() + h @ w_hh.double().t()
        i, f, o = torch.sigmoid(before[:, : 3 * hidden]).split(hidden, dim=1)
        g = torch.tanh(before[:, 3 * hidden :])
        c = f * c + i * g
        h = o * torch.tanh(c)
        expected = torch.cat([i, f, o, g], dim=1).float()
        torch.testing.assert_close(got[t], expected, rtol=1e-5, atol=2e-6)
        torch.testing.assert_close(cell_out[t], c.float(), rtol=1e-5, atol=2e-6)
        torch.testing.assert_close(hidden_out[t], h.float(), rtol=1e-5, atol=2e-6)
    odd = torch.zeros(1, 2, 4 * 12)  # hidden not a multiple of 8: left to torch
    state = torch.zeros(2, 12)
    assert not recorder_kernels.lstm_layer(
        torch.zeros(48, 12), odd, state, state, state[None], state[None]
    )


@needs_kernels
@pytest.mark.parametrize("hidden, streams", [(16, 1), (32, 7), (272, 13)])
def test_gru_layer_matches_torch_math(hidden, streams):
    """As for the LSTM layer, with PyTorch's GRU math (b_hn inside r's product)."""
    w_hh, b_hh, gates, h0, _ = layer_inputs(6, 3, hidden, streams)
    hidden_out, got = torch.empty(len(gates), streams, hidden), gates.clone()
    assert recorder_kernels.gru_layer(recorder_kernels.gru_pack(w_hh), b_hh, got, h0, hidden_out)
    h = h0.double()
    for t in range(len(gates)):
        recurrent, x = h @ w_hh.double().t() + b_hh.double(), gates[t].double()
        r, z = torch.sigmoid(x[:, : 2 * hidden] + recurrent[:, : 2 * hidden]).split(hidden, 1)
        n = torch.tanh(x[:, 2 * hidden :] + r * recurrent[:, 2 * hidden :])
        h = (1 - z) * n + z * h
        torch.testing.assert_close(
            got[t], torch.cat([r, z, n], dim=1).float(), rtol=1e-5, atol=2e-6
        )
        torch.testing.assert_close(hidden_out[t], h.float(), rtol=1e-5, atol=2e-6)
    odd = torch.zeros(1, 2, 3 * 24)  # hidden not a multiple of 16: left to torch
    state = torch.zeros(2, 24)
    assert not recorder_kernels.gru_layer(
        torch.zeros(72, 24), torch.zeros(72), odd, state, state[None]
    )


def run_layer(cell: str, inputs, halves=None):
    """A layer kernel over layer_inputs: (accepted, [its float32 outputs in the kernel's
    float16 order: the gates, then c for an LSTM, then h])."""
    w_hh, b_hh, gates, h0, c0 = inputs
    gates, (steps, streams) = gates.clone(), gates.shape[:2]
    hidden = h0.shape[1]
    hidden_out, cell_out = (torch.empty(steps, streams, hidden) for _ in range(2))
    if cell == "lstm":
        accepted = recorder_kernels.lstm_layer(
            recorder_kernels.lstm_pack(w_hh), gates, h0, c0, hidden_out, cell_out, halves
        )
        return accepted, [*gates.split(hidden, dim=-1), cell_out, hidden_out]
    if cell == "rnn":
        packed = recorder_kernels.panel_pack(w_hh)
        return recorder_kernels.rnn_layer(packed, gates, h0, hidden_out, halves), [hidden_out]
    accepted = recorder_kernels.gru_layer(
        recorder_kernels.gru_pack(w_hh), b_hh, gates, h0, hidden_out, halves
    )
    return accepted, [*gates.split(hidden, dim=-1), hidden_out]


@needs_kernels
@pytest.mark.parametrize("hidden, streams", [(16, 1), (32, 7), (272, 13)])
def test_rnn_layer_matches_torch_math(hidden, streams):
    """As for the LSTM layer, with a vanilla RNN's h' = tanh(x W_ih^T + b + W_hh h)."""
    inputs = layer_inputs(8, 1, hidden, streams)
    w_hh, _, gates, h0, _ = inputs
    accepted, (hidden_out,) = run_layer("rnn", inputs)
    assert accepted
    h = h0.double()
    for t in range(len(gates)):
        h = torch.tanh(gates[t].double() + h @ w_hh.double().t())
        torch.testing.assert_close(hidden_out[t], h.float(), rtol=1e-5, atol=2e-6)
    odd = layer_inputs(8, 1, 24, streams)  # hidden not a multiple of 16: left to torch
    assert not run_layer("rnn", odd)[0]


@needs_kernels
@pytest.mark.parametrize("cell, gate_count", [("lstm", 4), ("gru", 3), ("rnn", 1)])
def test_layer_kernels_copy_float16_rows_as_they_compute(cell, gate_count):
    """The float16 copies a layer kernel writes (stream-major, into longer buffers) equal
    its float32 outputs rounded; kinds given None are skipped, and nothing past the chunk's
    steps is touched. Buffers of another dtype have the kernel decline."""
    hidden, streams, buffer_steps = 16, 7, 6
    inputs = layer_inputs(7, gate_count, hidden, streams)
    steps = len(inputs[2])
    accepted, expected = run_layer(cell, inputs)
    assert accepted
    halves = [torch.full((streams, buffer_steps, hidden), 7.0, dtype=torch.float16)
              for _ in expected]  # fmt: skip
    if len(halves) > 1:
        halves[1] = None
    accepted, values = run_layer(cell, inputs, halves)
    assert accepted
    for value, wanted, half in zip(values, expected, halves):
        assert torch.equal(value, wanted)
        if half is not None:
            assert torch.equal(half[:, :steps], wanted.transpose(0, 1).half())
            assert bool((half[:, steps:] == 7.0).all())
    wrong = [torch.zeros(streams, buffer_steps, hidden)] * len(halves)
    assert not run_layer(cell, inputs, wrong)[0]
    assert not run_layer(cell, inputs, [*halves, halves[0]])[0]  # one too many


@needs_kernels
def test_tensors_off_the_cpu_never_reach_c():
    """The GRU step loop also runs on GPUs: there the kernel must decline, not get pointers."""
    elsewhere = [torch.empty((4, 24), device="meta") for _ in range(2)]  # any non-CPU device
    h = [torch.empty((4, 8), device="meta") for _ in range(2)]
    assert not recorder_kernels.gru_step(*elsewhere, *h)
    with pytest.raises(TypeError):
        recorder_kernels.to_half(
            torch.empty((2, 4, 8), device="meta"), torch.empty((4, 2, 8)).half()
        )
    with pytest.raises(TypeError):
        recorder_kernels.lstm_cells(torch.empty((2, 4, 32), device="meta"), *h[:1], h[1])


@needs_kernels
@pytest.mark.parametrize("vocab, hidden", [(5, 8), (98, 256), (200, 264)])
def test_logprob_matches_float64_log_softmax(vocab, hidden):
    """Decoder GEMM and softmax fused: a vocabulary padded to 16 (the padding ignored), 264
    units (more than one k block), 9 x 13 rows (a short last block of 48)."""
    generator = torch.Generator().manual_seed(vocab)
    weight = torch.randn(vocab, hidden, generator=generator) * 0.3
    bias = torch.randn(vocab, generator=generator)
    hidden_states = torch.randn(9, 13, hidden, generator=generator)
    next_ids = torch.randint(0, vocab, (13, 9), generator=generator)
    out = torch.empty(13, 9)
    packed = recorder_kernels.decoder_pack(weight, bias)
    assert recorder_kernels.logprob(packed, vocab, hidden_states, next_ids, out)
    logits = hidden_states.double() @ weight.double().t() + bias.double()
    expected = torch.log_softmax(logits, -1).gather(2, next_ids.t()[..., None])[..., 0].t()
    torch.testing.assert_close(out.double(), expected, rtol=2e-6, atol=2e-6)
    with pytest.raises(IndexError):
        recorder_kernels.logprob(packed, vocab, hidden_states, next_ids + vocab, out)
    assert not recorder_kernels.logprob(packed, vocab, hidden_states, next_ids.int(), out)
