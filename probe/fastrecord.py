"""The recorder's fast path: `CharRNN.trace`'s math, arranged for throughput.

`CharRNN.trace` is the readable reference; `FastTracer` computes the same states (tests check
equality within 1e-5) but is laid out for speed on CPU. All streams step together, buffers
are time-major (steps, streams, units), and a chunk of steps is computed per call.

* LSTM and GRU on CPU with the compiled kernels (probe/recorder_kernels.py): one call per
  layer and chunk runs the recurrence, each step's recurrent GEMM and the gate math fused
  (`recorder_kernels.lstm_layer`, `gru_layer`), with the input projections hoisted out (a
  lookup for layer 1's one-hot input, one GEMM per chunk above); the same call writes the
  float16 copies the recorder stores. Where oneDNN is the faster GEMM (AVX-512 CPUs, see
  `onednn.linear`), the step loop below calls it and then one compiled call for each
  step's gate math. The decoder's log-probs: one compiled call per chunk, GEMM and
  softmax fused (`recorder_kernels.logprob`). The layer kernels take units in blocks of 8
  (LSTM) or 16: other sizes run padded with units that stay 0 (`pad_units`).
* LSTM on CPU without them: each layer runs through oneDNN's fused LSTM kernel (what
  `nn.LSTM` runs) in training mode, which keeps every step's activated gates in its
  workspace for the backward pass; we read them there, rebuild c with one multiply-add per
  step, and check that this c ends where the kernel's final c does (if a PyTorch release
  moved the gates, the check fails and the tracer falls back to the step loop below).
* Vanilla RNN: with the compiled kernels, a layer kernel as for the LSTM
  (`recorder_kernels.rnn_layer`). Without them, h is all it has to record, and that is
  what PyTorch's fused layer returns, so each layer runs as its own one-layer `nn.RNN`
  with the model's weights.
* GPUs and the fallbacks: a step loop with the input projections hoisted out, one
  recurrent GEMM per step (`onednn.linear`), gates computed in place (LSTM rows reordered
  to i, f, o, g: one sigmoid covers three gates) into preallocated buffers, by one compiled
  call per step where the kernels run. On CPU, `probe.record` runs groups of streams side
  by side, one thread each (`plan_shards`), so each tracer here runs on one core.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from probe import kernels, onednn, recorder_kernels
from probe.model import GATES_PER_CELL, CharRNN

# LSTM gate blocks in PyTorch's row order are i, f, g, o; we store i, f, o, g.
LSTM_ORDER = (0, 1, 3, 2)
LSTM_SLICES = {"input_gate": 0, "forget_gate": 1, "output_gate": 2, "candidate": 3}
GRU_SLICES = {"reset_gate": 0, "update_gate": 1, "candidate": 2}
# The kinds the layer kernels copy to float16, in their argument order.
HALF_KINDS = {
    "lstm": ("input_gate", "forget_gate", "output_gate", "candidate", "cell", "hidden"),
    "gru": ("reset_gate", "update_gate", "candidate", "hidden"),
    "rnn": ("hidden",),
}
BUFFER_BYTES = 512 << 20  # a chunk's buffers (~1/4 of it the gates): bounded memory
GPU_BUFFER_BYTES = 1 << 30  # on a GPU: fewer, longer chunks (each costs copies and syncs)
WRITE_BYTES = 32 << 10  # per stream per array per chunk
CHUNK_CHARS = 32768


def chunk_steps(model: CharRNN, streams: int) -> int:
    """Steps per chunk: enough that each stream's piece of a stored array is >= 32 KB (one
    write each; smaller writes cost more per byte) and a chunk holds >= CHUNK_CHARS chars
    (per-chunk costs: the writes' pieces, the calls), while the chunk's buffers stay near
    BUFFER_BYTES. LSTM 2x256, 1M chars on 128 streams, A/B in one process: 48 steps 50k
    chars/s, 128 steps 53k, 256 steps 57k."""
    hidden = model.config.hidden
    by_write = -(-WRITE_BYTES // (2 * hidden))
    per_step = (
        64 * hidden if uses_fused_kernel(model) else 16 * GATES_PER_CELL[model.config.cell] * hidden
    )
    on_gpu = next(model.parameters()).device.type == "cuda"
    by_buffer = (GPU_BUFFER_BYTES if on_gpu else BUFFER_BYTES) // (per_step * streams)
    return int(max(8, min(1024, by_buffer, max(by_write, CHUNK_CHARS // streams))))


def uses_fused_kernel(model: CharRNN) -> bool:
    """Whether `FastTracer` runs this model's layers through oneDNN's fused LSTM kernel: on
    CPU where the compiled kernels cannot run (with them, `recorder_kernels.lstm_layer`
    runs, or on AVX-512 CPUs the step loop with oneDNN's GEMM where its per-step kernel
    takes the size; see the module docstring)."""
    on_cpu = next(model.parameters()).device.type == "cpu"
    hidden = model.config.hidden
    stepped = kernels.library is not None and (not onednn.PREFER_ONEDNN or hidden % 8 == 0)
    return (
        model.config.cell == "lstm" and on_cpu and not stepped and onednn.fused_lstm_works(hidden)
    )


def _reorder_lstm(rows: torch.Tensor, hidden: int) -> torch.Tensor:
    blocks = rows.split(hidden, dim=0)
    return torch.cat([blocks[i] for i in LSTM_ORDER], dim=0)


def pad_units(weight: torch.Tensor, units: int, padded: int, inputs: bool) -> torch.Tensor:
    """A layer's (gates x units[, inputs]) weight or bias with each gate block's rows padded
    with zeros to `padded` units, and with `inputs`, its columns too (they are the units of
    the layer below). A padded unit's pre-activations are 0 and its state starts at 0, so it
    stays 0 (LSTM: c = 0.5 c + 0.5 tanh(0); GRU: h = 0.5 tanh(0) + 0.5 h; RNN: tanh(0)),
    and its zero columns keep it out of every real unit's sums."""
    if padded == units:
        return weight
    blocks = weight.reshape(-1, units, *weight.shape[1:])  # gate, unit[, input]
    shape = (blocks.shape[0], padded, *((padded,) if inputs else weight.shape[1:]))
    out = weight.new_zeros(shape)
    if inputs:
        out[:, :units, :units] = blocks
    else:
        out[:, :units] = blocks
    return out.reshape(-1, *shape[2:])


def model_state(state: torch.Tensor, cell: str):
    """A `FastTracer.state()` tensor as the model's own state: (h, c) for an LSTM, else h."""
    return (state[0], state[1]) if cell == "lstm" else state[0]


class FastTracer:
    """Steps a model over (streams, steps) chunks of ids, carrying state between chunks.

    `run(ids, take_halves, next_ids)` yields (layer, {kind: (steps, streams, hidden) view},
    halves) for each layer, then ("logits", (steps, streams, vocab), {}), or, given next_ids
    (streams, steps), ("logprob", log p(next char) (streams, steps) float32 numpy, {}); the
    views are only valid until the next yield. Where a layer runs through a compiled layer
    kernel, it first calls take_halves(layer) for {kind: float16 (streams, >= steps,
    hidden) buffer} and has the kernel copy those kinds there, stream-major, as it computes
    them (a separate float16 pass would read each chunk back from memory); `halves` is that
    dict where the kernel filled it, else {}.
    """

    def __init__(self, model: CharRNN, streams: int, steps: int, state):
        config = model.config
        self.cell, self.units, self.layers = config.cell, config.hidden, config.layers
        device = next(model.parameters()).device
        # W_hh packed for the compiled layer, where it runs and beats the step loop (or, for
        # the RNN, PyTorch's fused layer): where oneDNN is the faster GEMM (AVX-512), the
        # step loop or the fused layer calls it instead. The layer kernels take units in
        # blocks of `lanes`: other sizes run padded with units that stay 0 (see pad_units).
        pack, lanes = {
            "lstm": (recorder_kernels.lstm_pack, 8),
            "gru": (recorder_kernels.gru_pack, 16),
            "rnn": (recorder_kernels.panel_pack, 16),
        }[self.cell]
        layer_kernel = device.type == "cpu" and not onednn.PREFER_ONEDNN
        layer_kernel = layer_kernel and kernels.library is not None
        self.hidden = -(-self.units // lanes) * lanes if layer_kernel else self.units
        self.weights = [self._layer_weights(model, layer) for layer in range(self.layers)]
        decoder = pad_units(model.decoder.weight.detach().t(), self.units, self.hidden, False)
        self.decoder = (decoder.t().contiguous(), model.decoder.bias.detach())
        self.packed = [pack(w[3]) for w in self.weights] if layer_kernel else []
        empty = lambda: torch.empty(steps, streams, self.hidden, device=device)  # noqa: E731
        # The step loop's outputs; layers alternate, so one is the next one's input. Fused
        # RNN layers return their own h.
        stepped = self.cell != "rnn" or bool(self.packed)
        self.hidden_out = [empty(), empty()] if stepped else []
        self.cell_out = empty() if self.cell == "lstm" else None
        padding = (0, self.hidden - self.units)
        h, c = state if self.cell == "lstm" else (state, [])
        self.h, self.c = [F.pad(s, padding) for s in h], [F.pad(s, padding) for s in c]
        self.fused = uses_fused_kernel(model)
        self.fused_weights = [
            tuple(w.detach().contiguous() for w in model.layer_weights(layer))
            for layer in range(self.layers if self.fused else 0)
        ]
        self.one_hot = torch.eye(config.vocab_size, device=device)
        self.buffer_shape, self.gates = (steps, streams), None  # the step loop's, made on use
        self.logits = torch.empty(steps * streams, config.vocab_size, device=device)
        on_cpu = device.type == "cpu" and kernels.library is not None
        self.decoder_packed = recorder_kernels.decoder_pack(*self.decoder) if on_cpu else None
        self.rnn_layers = [
            onednn.single_rnn_layer(model, layer)
            for layer in range(self.layers if not stepped else 0)
        ]

    def _layer_weights(self, model: CharRNN, layer: int):
        """(input table or None, W_ih, input bias, W_hh, recurrent bias) in our gate order."""
        w_ih, w_hh, b_ih, b_hh = (w.detach() for w in model.layer_weights(layer))
        if self.cell == "lstm":
            w_ih, w_hh, b_ih, b_hh = (
                _reorder_lstm(w, self.units) for w in (w_ih, w_hh, b_ih, b_hh)
            )
        w_ih = pad_units(w_ih, self.units, self.hidden, inputs=layer > 0)
        w_hh = pad_units(w_hh, self.units, self.hidden, inputs=True)
        b_ih, b_hh = (pad_units(b, self.units, self.hidden, inputs=False) for b in (b_ih, b_hh))
        if self.cell == "gru":  # b_hh stays in the recurrent term: n uses r * (W_hn h + b_hn)
            input_bias, recurrent_bias = b_ih, b_hh
        else:
            input_bias, recurrent_bias = b_ih + b_hh, None
        table = (w_ih.t() + input_bias).contiguous() if layer == 0 else None
        return table, w_ih.contiguous(), input_bias, w_hh.contiguous(), recurrent_bias

    @torch.no_grad()
    def run(self, ids: torch.Tensor, take_halves=None, next_ids: torch.Tensor | None = None):
        """ids (streams, steps <= buffer steps); see the class docstring."""
        steps, streams = ids.shape[1], ids.shape[0]
        below = None
        for layer, (table, w_ih, input_bias, w_hh, recurrent_bias) in enumerate(self.weights):
            if self.rnn_layers:
                kinds = self._fused_rnn(layer, ids, below)
            else:
                kinds = self._fused_lstm(layer, ids, below) if self.fused else None
            halves = {}
            if kinds is None:
                gates = self._gates_buffer()[: steps * streams]
                if layer == 0:  # one-hot input: the projection is a row lookup
                    torch.index_select(table, 0, ids.t().reshape(-1), out=gates)
                else:
                    gates = onednn.linear(
                        below.reshape(steps * streams, -1), w_ih, input_bias, gates
                    )
                gates = gates.view(steps, streams, -1)
                if self.packed and take_halves and self.hidden == self.units:
                    halves = take_halves(layer + 1)
                step = {"lstm": self._lstm, "gru": self._gru, "rnn": self._rnn}[self.cell]
                if not step(layer, gates, w_hh, recurrent_bias, halves):
                    halves = {}
                kinds = self._kinds(layer, gates)
            below = kinds["hidden"]
            if self.hidden != self.units:  # padded: the model's units only
                kinds = {kind: value[..., : self.units] for kind, value in kinds.items()}
            yield layer + 1, kinds, halves
        if next_ids is None:
            yield "logits", self._logits(below), {}
        else:
            yield "logprob", self._logprob(below, next_ids), {}

    @torch.no_grad()
    def warm_up(self, context: torch.Tensor, cold: torch.Tensor) -> None:
        """Run context (streams, chars) through the layers for the state it leaves, nothing
        kept (the recorder's warm-up); streams where `cold` is True start from zeros."""
        steps = self.buffer_shape[0]
        for column in range(0, context.shape[1], steps):
            for layer, _, _ in self.run(context[:, column : column + steps]):
                if layer == self.layers:
                    break  # the decoder's output is not needed
        for state in self.h + (self.c if self.cell == "lstm" else []):
            state[cold] = 0

    def state(self) -> torch.Tensor:
        """The carried state, the model's units only: (parts, layers, streams, units), parts
        h (and c for an LSTM); see `model_state`."""
        parts = [self.h] + ([self.c] if self.cell == "lstm" else [])
        return torch.stack([torch.stack(part) for part in parts])[..., : self.units].clone()

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        steps, streams, _ = hidden.shape
        weight, bias = self.decoder
        logits = onednn.linear(
            hidden.reshape(steps * streams, -1), weight, bias, self.logits[: steps * streams]
        )
        return logits.view(steps, streams, -1)

    def _logprob(self, hidden: torch.Tensor, next_ids: torch.Tensor) -> np.ndarray:
        """(streams, steps) log p(next char): by one compiled call where it runs (the GEMM
        and the softmax fused; the logits never reach memory), else from the logits."""
        if self.decoder_packed is not None:
            next_ids = next_ids.contiguous()
            out = torch.empty(next_ids.shape)
            vocab = self.decoder[0].shape[0]
            if recorder_kernels.logprob(self.decoder_packed, vocab, hidden, next_ids, out):
                return out.numpy()
        return next_char_logprob(self._logits(hidden), next_ids)

    def _gates_buffer(self) -> torch.Tensor:
        """(buffer steps x streams, gates) for the step loop, reused chunk after chunk."""
        if self.gates is None:
            rows, width = math.prod(self.buffer_shape), self.weights[0][3].shape[0]
            self.gates = torch.empty(rows, width, device=self.logits.device)
        return self.gates

    def _fused_lstm(self, layer: int, ids: torch.Tensor, below: torch.Tensor | None):
        """One layer through oneDNN's fused LSTM kernel, gates read from its workspace.

        Returns None (and turns the fused path off) if the c it implies does not end at the
        kernel's final c: the workspace layout is oneDNN's, so every chunk checks it.
        """
        x = self.one_hot[ids.t().contiguous()] if layer == 0 else below
        hidden, h_last, c_last, workspace = onednn.fused_lstm_layer(
            x, self.fused_weights[layer], self.h[layer], self.c[layer]
        )
        gates = onednn.workspace_gates(workspace, *hidden.shape)
        cell = self.cell_out[: x.shape[0]]
        previous = self.c[layer]
        if kernels.library is not None:  # one call, not one op a step
            previous = previous.clone()  # the state stays as it was if the check fails
            recorder_kernels.lstm_cells(gates, previous, cell)
        else:
            i, f, g, _ = gates.split(self.hidden, dim=-1)
            torch.mul(i, g, out=cell)
            for t in range(x.shape[0]):  # c_t = f_t c_{t-1} + i_t g_t
                previous = cell[t].addcmul_(f[t], previous)
        if not torch.allclose(previous, c_last, rtol=1e-3, atol=1e-4):
            self.fused = False
            return None
        self.h[layer].copy_(h_last)
        self.c[layer].copy_(c_last)
        blocks = gates.split(self.hidden, dim=-1)
        kinds = {"hidden": hidden, "cell": cell}
        kinds.update({kind: blocks[i] for kind, i in onednn.FUSED_SLICES.items()})
        return kinds

    def _fused_rnn(self, layer: int, ids: torch.Tensor, below: torch.Tensor | None):
        x = self.one_hot[ids.t().contiguous()] if layer == 0 else below
        hidden, last = self.rnn_layers[layer](x, self.h[layer][None])
        self.h[layer].copy_(last[0])
        return {"hidden": hidden}

    def _kinds(self, layer: int, gates: torch.Tensor) -> dict[str, torch.Tensor]:
        steps = gates.shape[0]
        kinds = {"hidden": self.hidden_out[layer % 2][:steps]}
        blocks = gates.split(self.hidden, dim=-1)
        if self.cell == "lstm":
            kinds["cell"] = self.cell_out[:steps]
            kinds.update({kind: blocks[i] for kind, i in LSTM_SLICES.items()})
        elif self.cell == "gru":
            kinds.update({kind: blocks[i] for kind, i in GRU_SLICES.items()})
        return kinds

    def _copies(self, halves: dict[str, torch.Tensor]) -> list[torch.Tensor | None]:
        """The float16 buffers in the layer kernel's argument order (None: not wanted)."""
        return [halves.get(kind) for kind in HALF_KINDS[self.cell]]

    def _lstm(self, layer, gates, w_hh, _, halves) -> bool:
        """gates (steps, streams, 4H) holds x W_ih^T + b; filled in place with i, f, o, g.
        True where the layer kernel ran (and filled `halves`)."""
        steps, three = gates.shape[0], 3 * self.hidden
        hidden_out, cell_out = self.hidden_out[layer % 2][:steps], self.cell_out[:steps]
        h, c = self.h[layer], self.c[layer]
        if self.packed and recorder_kernels.lstm_layer(
            self.packed[layer], gates, h, c, hidden_out, cell_out, self._copies(halves)
        ):  # one call a chunk: the GEMM and the gate math fused, no Python between steps
            h.copy_(hidden_out[-1])
            c.copy_(cell_out[-1])
            return True
        for t in range(gates.shape[0]):
            row, c_next, h_next = gates[t], cell_out[t], hidden_out[t]
            recurrent = onednn.add_recurrent(row, h, w_hh)
            if kernels.library is None or not recorder_kernels.lstm_step(
                row, recurrent, c, c_next, h_next
            ):
                if recurrent is not None:
                    row.add_(recurrent)
                row[:, :three].sigmoid_()
                i, f, o, g = row.split(self.hidden, dim=1)
                g.tanh_()
                torch.mul(f, c, out=c_next).addcmul_(i, g)
                torch.tanh(c_next, out=h_next).mul_(o)
            h, c = h_next, c_next
        self.h[layer].copy_(h)
        self.c[layer].copy_(c)
        return False

    def _rnn(self, layer, gates, w_hh, _, halves) -> bool:
        """gates (steps, streams, H) holds x W_ih^T + b; h W_hh^T is added into it. Runs
        only where W_hh is packed (else PyTorch's fused layer runs); True where the layer
        kernel ran (and filled `halves`)."""
        steps = gates.shape[0]
        hidden_out, h = self.hidden_out[layer % 2][:steps], self.h[layer]
        if recorder_kernels.rnn_layer(
            self.packed[layer], gates, h, hidden_out, self._copies(halves)
        ):
            h.copy_(hidden_out[-1])
            return True
        for t in range(steps):  # where the kernel declines
            h = torch.tanh(gates[t].addmm_(h, w_hh.t()), out=hidden_out[t])
        self.h[layer].copy_(h)
        return False

    def _gru(self, layer, gates, w_hh, b_hh, halves) -> bool:
        """gates (steps, streams, 3H) holds x W_ih^T + b_ih; filled in place with r, z, n.
        True where the layer kernel ran (and filled `halves`)."""
        hidden_out, two = self.hidden_out[layer % 2], 2 * self.hidden
        h = self.h[layer]
        steps = gates.shape[0]
        if self.packed and recorder_kernels.gru_layer(
            self.packed[layer], b_hh, gates, h, hidden_out[:steps], self._copies(halves)
        ):  # one call a chunk, as for the LSTM
            h.copy_(hidden_out[steps - 1])
            return True
        for t in range(gates.shape[0]):
            recurrent = onednn.linear(h, w_hh, b_hh)
            row, h_next = gates[t], hidden_out[t]
            if kernels.library is not None and recorder_kernels.gru_step(row, recurrent, h, h_next):
                h = h_next  # one call, not eight ops
                continue
            row[:, :two].add_(recurrent[:, :two]).sigmoid_()
            r, z, n = row.split(self.hidden, dim=1)
            n.addcmul_(r, recurrent[:, two:]).tanh_()
            torch.sub(h, n, out=h_next).mul_(z).add_(n)  # (1 - z) n + z h
            h = h_next
        self.h[layer].copy_(h)
        return False


@torch.no_grad()
def next_char_logprob(logits: torch.Tensor, next_ids: torch.Tensor) -> np.ndarray:
    """logits (steps, streams, vocab), next_ids (streams, steps) -> (streams, steps) float32."""
    log_probs = F.log_softmax(logits, dim=-1)
    picked = log_probs.gather(2, next_ids.t().unsqueeze(2))[..., 0]
    return picked.t().float().cpu().numpy()
