"""The recorder's fast path: `CharRNN.trace`'s math, arranged for throughput.

`CharRNN.trace` is the readable reference; this computes the same states (tests check equality
within float16 tolerance) but is laid out for speed on CPU:

* all streams step together, so every step's recurrent product is one (streams x hidden) GEMM;
* input projections are hoisted out of the step loop: one lookup (layer 1, one-hot input) or
  one GEMM (layers above) per chunk of steps, with both biases folded in where the math allows;
* buffers are time-major (steps, streams, units) and preallocated once, gates are computed in
  place in them (LSTM gate rows reordered to i, f, o, g so one sigmoid covers three gates), and
  the per-step views are built once, so a step allocates nothing but the ops' results;
* each chunk is converted to float16 once per kind and written with one strided copy into the
  (chars, units) memmap, seen as (streams, segment, units) since streams are contiguous segments.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from probe.model import GATES_PER_CELL, CharRNN

# LSTM gate blocks in PyTorch's row order are i, f, g, o; we store i, f, o, g.
LSTM_ORDER = (0, 1, 3, 2)
LSTM_SLICES = {"input_gate": 0, "forget_gate": 1, "output_gate": 2, "candidate": 3}
GRU_SLICES = {"reset_gate": 0, "update_gate": 1, "candidate": 2}
BUFFER_BYTES = 16 << 20  # the gates buffer per chunk: big GEMMs, bounded memory


def chunk_steps(model: CharRNN, streams: int) -> int:
    """Steps per chunk so the gates buffer stays near BUFFER_BYTES."""
    width = GATES_PER_CELL[model.config.cell] * model.config.hidden
    return int(max(8, min(256, BUFFER_BYTES // (4 * width * streams))))


def _reorder_lstm(rows: torch.Tensor, hidden: int) -> torch.Tensor:
    blocks = rows.split(hidden, dim=0)
    return torch.cat([blocks[i] for i in LSTM_ORDER], dim=0)


class FastTracer:
    """Steps a model over (streams, steps) chunks of ids, carrying state between chunks.

    `run(ids)` yields (layer, {kind: (steps, streams, hidden) view}) for each layer, then
    ("logits", (steps, streams, vocab)); the views are only valid until the next yield.
    """

    def __init__(self, model: CharRNN, streams: int, steps: int, state):
        config = model.config
        self.cell, self.hidden, self.layers = config.cell, config.hidden, config.layers
        width = GATES_PER_CELL[self.cell] * self.hidden
        device = next(model.parameters()).device
        self.weights = [self._layer_weights(model, layer) for layer in range(self.layers)]
        self.decoder = (model.decoder.weight.detach().t(), model.decoder.bias.detach())
        self.steps = steps
        empty = lambda *shape: torch.empty(*shape, device=device)  # noqa: E731
        self.gates = empty(steps, streams, width)
        self.hidden_out = [empty(steps, streams, self.hidden) for _ in range(2)]
        self.cell_out = empty(steps, streams, self.hidden) if self.cell == "lstm" else None
        self.recurrent = empty(streams, width) if self.cell == "gru" else None
        if self.cell == "lstm":
            self.h = [s.clone() for s in state[0]]
            self.c = [s.clone() for s in state[1]]
        else:
            self.h = [s.clone() for s in state]
        # Per-step views, built once: gates[t] and its blocks, outputs[t].
        blocks = lambda t: t.split(self.hidden, dim=-1)  # noqa: E731
        self.gate_steps = list(self.gates.unbind(0))
        self.gate_blocks = [blocks(g) for g in self.gate_steps]
        self.sigmoid_steps = [g[:, : 3 * self.hidden] for g in self.gate_steps]
        self.hidden_steps = [list(b.unbind(0)) for b in self.hidden_out]
        self.cell_steps = list(self.cell_out.unbind(0)) if self.cell_out is not None else None

    def _layer_weights(self, model: CharRNN, layer: int):
        """(input table or W_ih^T, input bias, W_hh^T, recurrent bias) in our gate order."""
        w_ih, w_hh, b_ih, b_hh = (w.detach() for w in model.layer_weights(layer))
        if self.cell == "lstm":
            w_ih, w_hh, b_ih, b_hh = (
                _reorder_lstm(w, self.hidden) for w in (w_ih, w_hh, b_ih, b_hh)
            )
        if self.cell == "gru":  # b_hh stays in the recurrent term: n uses r * (W_hn h + b_hn)
            input_bias, recurrent_bias = b_ih, b_hh
        else:
            input_bias, recurrent_bias = b_ih + b_hh, None
        table = (w_ih.t() + input_bias).contiguous() if layer == 0 else None
        return table, w_ih.t(), input_bias, w_hh.t(), recurrent_bias

    @torch.no_grad()
    def run(self, ids: torch.Tensor):
        """ids (streams, steps <= self.steps), time-major inside; see the class docstring."""
        steps = ids.shape[1]
        flat_gates = self.gates[:steps].view(-1, self.gates.shape[-1])
        below = None
        for layer, (table, w_ih_t, input_bias, w_hh_t, recurrent_bias) in enumerate(self.weights):
            if layer == 0:  # one-hot input: the projection is a row lookup
                torch.index_select(table, 0, ids.t().reshape(-1), out=flat_gates)
            else:
                torch.addmm(input_bias, below.view(-1, self.hidden), w_ih_t, out=flat_gates)
            outputs = self.hidden_out[layer % 2]
            step = {"lstm": self._lstm, "gru": self._gru, "rnn": self._rnn}[self.cell]
            step(layer, steps, w_hh_t, recurrent_bias)
            below = outputs[:steps]
            yield layer + 1, self._kinds(layer, steps)
        weight, bias = self.decoder
        logits = torch.addmm(bias, below.reshape(-1, self.hidden), weight)
        yield "logits", logits.view(steps, -1, logits.shape[-1])

    def _kinds(self, layer: int, steps: int) -> dict[str, torch.Tensor]:
        kinds = {"hidden": self.hidden_out[layer % 2][:steps]}
        gates = self.gates[:steps].split(self.hidden, dim=-1)
        if self.cell == "lstm":
            kinds["cell"] = self.cell_out[:steps]
            kinds.update({kind: gates[i] for kind, i in LSTM_SLICES.items()})
        elif self.cell == "gru":
            kinds.update({kind: gates[i] for kind, i in GRU_SLICES.items()})
        return kinds

    def _lstm(self, layer, steps, w_hh_t, _):
        hidden_steps = self.hidden_steps[layer % 2]
        h, c = self.h[layer], self.c[layer]
        for t in range(steps):
            gates, (i, f, o, g) = self.gate_steps[t], self.gate_blocks[t]
            gates.addmm_(h, w_hh_t)
            self.sigmoid_steps[t].sigmoid_()
            g.tanh_()
            c_next, h_next = self.cell_steps[t], hidden_steps[t]
            torch.mul(f, c, out=c_next).addcmul_(i, g)
            torch.tanh(c_next, out=h_next).mul_(o)
            h, c = h_next, c_next
        self.h[layer].copy_(h)
        self.c[layer].copy_(c)

    def _gru(self, layer, steps, w_hh_t, b_hh):
        hidden_steps, two = self.hidden_steps[layer % 2], 2 * self.hidden
        recurrent = self.recurrent
        recurrent_rz, recurrent_n = recurrent[:, :two], recurrent[:, two:]
        h = self.h[layer]
        for t in range(steps):
            r, z, n = self.gate_blocks[t]
            torch.addmm(b_hh, h, w_hh_t, out=recurrent)
            self.gate_steps[t][:, :two].add_(recurrent_rz).sigmoid_()
            n.addcmul_(r, recurrent_n).tanh_()
            h_next = hidden_steps[t]
            torch.sub(h, n, out=h_next).mul_(z).add_(n)  # (1 - z) n + z h
            h = h_next
        self.h[layer].copy_(h)

    def _rnn(self, layer, steps, w_hh_t, _):
        hidden_steps = self.hidden_steps[layer % 2]
        h = self.h[layer]
        for t in range(steps):
            h_next = hidden_steps[t]
            torch.tanh(self.gate_steps[t].addmm_(h, w_hh_t), out=h_next)
            h = h_next
        self.h[layer].copy_(h)


class StreamWriter:
    """Writes time-major (steps, streams, ...) chunks into (chars, ...) arrays.

    Stream s covers rows [s * segment, (s + 1) * segment) of the text (the last one may be
    shorter), so the full streams are one (streams, segment, units) view of each array and a
    chunk is one strided copy per array, plus one for the short last stream.
    """

    def __init__(self, chars: int, streams: int, segment: int):
        self.chars, self.segment = chars, segment
        self.full = min(streams, chars // segment)

    def write(self, array: np.ndarray, chunk: np.ndarray, column: int) -> int:
        """chunk (streams, steps, ...) covers columns [column, column + steps) of each stream.

        Returns the number of rows written (padding past the text's end is dropped)."""
        steps = min(chunk.shape[1], self.segment - column)
        written = 0
        if self.full:
            view = array[: self.full * self.segment].reshape(
                self.full, self.segment, *array.shape[1:]
            )
            view[:, column : column + steps] = chunk[: self.full, :steps]
            written = self.full * steps
        last = self.full * self.segment
        lo, hi = last + column, min(last + column + steps, self.chars)
        if hi > lo:
            array[lo:hi] = chunk[self.full, : hi - lo]
            written += hi - lo
        return written


@torch.no_grad()
def next_char_logprob(logits: torch.Tensor, next_ids: torch.Tensor) -> np.ndarray:
    """logits (steps, streams, vocab), next_ids (streams, steps) -> (streams, steps) float32."""
    log_probs = F.log_softmax(logits, dim=-1)
    picked = log_probs.gather(2, next_ids.t().unsqueeze(2))[..., 0]
    return picked.t().float().cpu().numpy()
