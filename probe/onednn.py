"""oneDNN's kernels as the fast recorder calls them (probe/fastrecord.py): the faster GEMM
for this CPU, the fused LSTM layer whose workspace keeps every step's gates, and single
fused RNN layers."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from probe.model import CharRNN, step_layer
from probe.units import KINDS

# Where oneDNN's fused LSTM keeps each gate in a workspace row (PyTorch's order i, f, g, o).
FUSED_SLICES = {"input_gate": 0, "forget_gate": 1, "candidate": 2, "output_gate": 3}
LSTM_MODE = 2  # PyTorch's mode number for LSTM in its fused-RNN calls


def linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out=None
) -> torch.Tensor:
    """x @ weight.T + bias (into `out` where given and MKL runs it), through the faster of
    MKL and oneDNN for this CPU.

    Plain torch.mm/addmm go through MKL, which on AMD CPUs with AVX-512 skips it and runs at
    about half the rate oneDNN reaches there (oneDNN is what the fused nn.LSTM uses on CPU).
    On AVX2 CPUs MKL is as fast with two threads and faster with one (~85 vs ~65 GFLOP/s
    for a step's GEMM here), so oneDNN is used only where torch runs AVX-512 code. Writing
    into a reused `out` spares a fresh buffer's page faults (GEMMs of a chunk: 105 -> 143
    GFLOP/s here).
    """
    if PREFER_ONEDNN and x.device.type == "cpu" and x.dtype == torch.float32:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    if out is None:
        return F.linear(x, weight, bias)
    if bias is None:
        return torch.mm(x, weight.t(), out=out)
    return torch.addmm(bias, x, weight.t(), out=out)


def add_recurrent(row: torch.Tensor, h: torch.Tensor, weight: torch.Tensor):
    """A step's recurrent term h @ weight.T: added into row in place by one GEMM (returns
    None), or, where oneDNN is the faster GEMM (see `linear`), returned for the caller to add."""
    if PREFER_ONEDNN and row.device.type == "cpu":
        return linear(h, weight, None)
    row.addmm_(h, weight.t())
    return None


def _has_onednn_linear() -> bool:
    try:
        x, w = torch.ones(2, 3), torch.ones(4, 3)
        out = torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
        return bool(torch.equal(out, x @ w.t()))
    except (AttributeError, RuntimeError):
        return False


ONEDNN = _has_onednn_linear()
PREFER_ONEDNN = ONEDNN and torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def fused_lstm_layer(x, weights, h, c):
    """oneDNN's LSTM over x (steps, streams, inputs) in training mode, which keeps every
    step's gates in the workspace it returns (for the backward pass): (h per step, last h,
    last c, workspace)."""
    w_ih, w_hh, b_ih, b_hh = weights
    hidden = w_hh.shape[1]
    with torch.enable_grad():  # no workspace without grad mode; nothing here requires grad
        return torch.mkldnn_rnn_layer(
            x.contiguous(), w_ih, w_hh, b_ih, b_hh, h, c,
            reverse=False, batch_sizes=[], mode=LSTM_MODE, hidden_size=hidden, num_layers=1,
            has_biases=True, bidirectional=False, batch_first=False, train=True,
        )  # fmt: skip


def workspace_gates(workspace: torch.Tensor, steps: int, streams: int, hidden: int):
    """The (steps, streams, 4H) activated gates i, f, g, o at the start of the workspace.

    oneDNN pads each row to a multiple of 64 bytes, plus 64 more when that is a multiple of
    1 KB (to dodge cache-set aliasing)."""
    row = -(-4 * hidden // 16) * 16
    row += 16 if row % 256 == 0 else 0
    flat = workspace.view(torch.float32)[: steps * streams * row]
    return flat.view(steps, streams, row)[:, :, : 4 * hidden]


def single_rnn_layer(model: CharRNN, layer: int) -> nn.RNN:
    """Layer `layer` (0-based) of a vanilla-RNN model as a one-layer `nn.RNN`, same weights."""
    w_ih, w_hh, _, _ = model.layer_weights(layer)
    single = nn.RNN(w_ih.shape[1], w_hh.shape[1], nonlinearity=model.rnn.nonlinearity)
    single.load_state_dict(dict(zip(single.state_dict(), model.layer_weights(layer))))
    return single.to(w_ih.device).eval()


@functools.cache
def fused_lstm_works(hidden: int) -> bool:
    """Whether this PyTorch has the fused kernel and its workspace holds the gates where
    `workspace_gates` reads them: checked once per hidden size on a small random layer."""
    try:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(3, 2, 5, generator=generator)
        w_ih, w_hh = (torch.randn(4 * hidden, n, generator=generator) * 0.3 for n in (5, hidden))
        b_ih, b_hh = (torch.randn(4 * hidden, generator=generator) for _ in range(2))
        h, c = (torch.randn(2, hidden, generator=generator) for _ in range(2))
        _, _, _, workspace = fused_lstm_layer(x, (w_ih, w_hh, b_ih, b_hh), h, c)
        gates = workspace_gates(workspace, 3, 2, hidden)
        expected = step_layer(
            "lstm", (x @ w_ih.t() + b_ih).transpose(0, 1), w_hh, b_hh, (h, c), set(KINDS["lstm"])
        )[0]
    except (AttributeError, RuntimeError):
        return False
    blocks = gates.split(hidden, -1)
    return all(
        torch.allclose(blocks[i].transpose(0, 1), expected[kind], atol=1e-5)
        for kind, i in FUSED_SLICES.items()
    )
