"""`CharRNN`: a character-level LSTM / GRU / vanilla-RNN language model.

`forward` uses PyTorch's fused recurrent layers (fast training). `trace` recomputes the same
network one step at a time from the same weights and returns what the fused layers hide:
every layer's cell state, hidden state and gates at every step. The two agree numerically
(tests check max |diff| <= 1e-5), so what the recorder shows is what the model computes.

Inputs are one-hot characters, as in Karpathy et al. (2015): the first layer's input
projection is a column lookup in W_ih, which `trace` exploits.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from probe.errors import ProbeError, argument
from probe.units import KINDS

LAYERS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
GATES_PER_CELL = {"lstm": 4, "gru": 3, "rnn": 1}


def check_device(name: str) -> str:
    """`name` as a torch device string, or a one-line ProbeError if this machine lacks it
    (torch's own errors for a missing GPU are assertions deep in the first `.to`)."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ProbeError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ProbeError(f"unsupported device {name!r}: use cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ProbeError(
                f"{argument('device')} {name}: this PyTorch ({torch.__version__}) sees no CUDA GPU"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ProbeError(
                f"{argument('device')} {name}: only {torch.cuda.device_count()} GPU(s) visible"
            )
    return str(device)


def hardware(device: str) -> str:
    """Where the run trained, for the checkpoint card, e.g. 'cpu: 2 cores x86_64, 1 thread'."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {os.cpu_count()} cores {platform.machine()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}"


@dataclass
class ModelConfig:
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    dropout: float = 0.0
    vocab_size: int = 100

    def __post_init__(self):
        if self.cell not in LAYERS:
            raise ProbeError(f"unknown cell {self.cell!r}; choose lstm, gru or rnn")
        for name in ("layers", "hidden", "vocab_size"):
            if int(getattr(self, name)) < 1:
                raise ProbeError(f"{argument(name)} must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ProbeError(f"{argument('dropout')} must be in [0, 1)")

    def to_json(self) -> dict:
        return asdict(self)


class CharRNN(nn.Module):
    """One-hot chars -> stacked recurrent layers -> dropout -> linear decoder over the vocab."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.rnn = LAYERS[config.cell](
            input_size=config.vocab_size,
            hidden_size=config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.decoder = nn.Linear(config.hidden, config.vocab_size)

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS[self.config.cell]

    def initial_state(self, batch: int, device=None):
        zeros = torch.zeros(self.config.layers, batch, self.config.hidden, device=device)
        return (zeros, zeros.clone()) if self.config.cell == "lstm" else zeros

    def forward(self, ids: torch.Tensor, state=None):
        """ids (batch, time) -> logits (batch, time, vocab), final state."""
        x = F.one_hot(ids, self.config.vocab_size).float()
        output, state = self.rnn(x, state)
        return self.decoder(self.drop(output)), state

    def layer_weights(self, layer: int) -> tuple[torch.Tensor, ...]:
        """(W_ih, W_hh, b_ih, b_hh) of a 0-based layer, gate rows in PyTorch's order."""
        return tuple(
            getattr(self.rnn, f"{n}_l{layer}")
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )

    @torch.no_grad()
    def trace(self, ids: torch.Tensor, state=None, kinds=None):
        """Run step by step, returning logits, final state and per-layer per-kind states.

        Returns (logits (B, T, V), final_state, traces) where traces[layer][kind] is a
        (B, T, hidden) tensor, layers counted from 1. `kinds` limits what is kept.
        """
        keep = set(kinds or self.kinds)
        batch, steps = ids.shape
        if state is None:
            state = self.initial_state(batch, ids.device)
        traces, finals = {}, []
        layer_input = None
        for layer in range(self.config.layers):
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
            if layer == 0:  # one-hot input: the projection is a column lookup
                projected = w_ih.t()[ids] + b_ih
            else:
                projected = layer_input @ w_ih.t() + b_ih
            layer_state = (
                (state[0][layer], state[1][layer]) if self.config.cell == "lstm" else state[layer]
            )
            outputs, final = step_layer(self.config.cell, projected, w_hh, b_hh, layer_state, keep)
            traces[layer + 1] = outputs
            finals.append(final)
            layer_input = outputs["hidden"]
        if self.config.cell == "lstm":
            final_state = (torch.stack([f[0] for f in finals]), torch.stack([f[1] for f in finals]))
        else:
            final_state = torch.stack(finals)
        logits = self.decoder(layer_input)
        for layer in traces:
            traces[layer] = {k: v for k, v in traces[layer].items() if k in keep}
        return logits, final_state, traces


def step_layer(cell: str, projected, w_hh, b_hh, state, keep: set[str]):
    """One layer's recurrence over time given the hoisted input projection (B, T, G*H).

    Returns ({kind: (B, T, H)}, final state). `hidden` is always kept (next layer's input).
    """
    batch, steps, _ = projected.shape
    hidden_size = w_hh.shape[1]
    wanted = keep | {"hidden"}
    out = {k: projected.new_empty(batch, steps, hidden_size) for k in KINDS[cell] if k in wanted}
    w_hh_t = w_hh.t()
    if cell == "lstm":
        h, c = state
        for t in range(steps):
            gates = torch.addmm(b_hh, h, w_hh_t).add_(projected[:, t])
            i, f, g, o = gates.chunk(4, dim=1)
            i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            for kind, value in (
                ("cell", c),
                ("hidden", h),
                ("input_gate", i),
                ("forget_gate", f),
                ("output_gate", o),
                ("candidate", g),
            ):
                if kind in out:
                    out[kind][:, t] = value
        return out, (h, c)
    h = state
    for t in range(steps):
        recurrent = torch.addmm(b_hh, h, w_hh_t)
        x = projected[:, t]
        if cell == "gru":
            x_r, x_z, x_n = x.chunk(3, dim=1)
            h_r, h_z, h_n = recurrent.chunk(3, dim=1)
            r = (x_r + h_r).sigmoid()
            z = (x_z + h_z).sigmoid()
            n = (x_n + r * h_n).tanh()
            h = (1 - z) * n + z * h
            for kind, value in (("reset_gate", r), ("update_gate", z), ("candidate", n)):
                if kind in out:
                    out[kind][:, t] = value
        else:
            h = (x + recurrent).tanh()
        out["hidden"][:, t] = h
    return out, h


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def evaluate(model: CharRNN, ids: np.ndarray, seq_len: int = 200, streams: int = 32) -> float:
    """Mean cross-entropy (nats/char) over `ids`, read as parallel streams with carried state."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    streams = max(1, min(streams, (len(ids) - 1) // max(seq_len, 1)))
    data = torch.from_numpy(ids[: (len(ids) // streams) * streams].reshape(streams, -1)).to(device)
    total, count, state = 0.0, 0, None
    for start in range(0, data.shape[1] - 1, seq_len):
        x = data[:, start : start + seq_len]
        y = data[:, start + 1 : start + seq_len + 1]
        x = x[:, : y.shape[1]]
        logits, state = model(x, state)
        total += F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"
        ).item()
        count += y.numel()
    model.train(was_training)
    return total / max(count, 1)
