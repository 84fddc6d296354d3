"""The recorder's fast path: `CharRNN.trace`'s math, arranged for throughput.

`CharRNN.trace` is the readable reference; this computes the same states (tests check equality
within float16 tolerance) but is laid out for speed on CPU:

* all streams step together, so every step's recurrent product is one (streams x hidden) GEMM;
* input projections are hoisted out of the step loop: one lookup (layer 1, one-hot input) or
  one GEMM (layers above) per chunk of steps, with both biases folded in where the math allows;
* GEMMs go through oneDNN where PyTorch has it (see `linear`), like the fused layers do;
* buffers are time-major (steps, streams, units), outputs preallocated once, gates computed
  in place (LSTM gate rows reordered to i, f, o, g so one sigmoid covers three gates);
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


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x @ weight.T + bias, through oneDNN on CPU where PyTorch has it.

    Plain torch.mm/addmm go through MKL, which on some x86 CPUs (AMD) skips AVX-512 and runs
    at about half the rate oneDNN reaches (oneDNN is what the fused nn.LSTM uses on CPU).
    """
    if ONEDNN and x.device.type == "cpu" and x.dtype == torch.float32:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


def _has_onednn_linear() -> bool:
    try:
        x, w = torch.ones(2, 3), torch.ones(4, 3)
        out = torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
        return bool(torch.equal(out, x @ w.t()))
    except (AttributeError, RuntimeError):
        return False


ONEDNN = _has_onednn_linear()


class FastTracer:
    """Steps a model over (streams, steps) chunks of ids, carrying state between chunks.

    `run(ids)` yields (layer, {kind: (steps, streams, hidden) view}) for each layer, then
    ("logits", (steps, streams, vocab)); the views are only valid until the next yield.
    """

    def __init__(self, model: CharRNN, streams: int, steps: int, state):
        config = model.config
        self.cell, self.hidden, self.layers = config.cell, config.hidden, config.layers
        device = next(model.parameters()).device
        self.weights = [self._layer_weights(model, layer) for layer in range(self.layers)]
        self.decoder = (model.decoder.weight.detach(), model.decoder.bias.detach())
        empty = lambda: torch.empty(steps, streams, self.hidden, device=device)  # noqa: E731
        self.hidden_out = [empty(), empty()]  # layers alternate: one is the next one's input
        self.cell_out = empty() if self.cell == "lstm" else None
        if self.cell == "lstm":
            self.h = [s.clone() for s in state[0]]
            self.c = [s.clone() for s in state[1]]
        else:
            self.h = [s.clone() for s in state]

    def _layer_weights(self, model: CharRNN, layer: int):
        """(input table or None, W_ih, input bias, W_hh, recurrent bias) in our gate order."""
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
        return table, w_ih.contiguous(), input_bias, w_hh.contiguous(), recurrent_bias

    @torch.no_grad()
    def run(self, ids: torch.Tensor):
        """ids (streams, steps <= buffer steps); see the class docstring."""
        steps, streams = ids.shape[1], ids.shape[0]
        below = None
        for layer, (table, w_ih, input_bias, w_hh, recurrent_bias) in enumerate(self.weights):
            if layer == 0:  # one-hot input: the projection is a row lookup
                gates = table[ids.t()]
            else:
                gates = linear(below.reshape(steps * streams, -1), w_ih, input_bias)
                gates = gates.view(steps, streams, -1)
            step = {"lstm": self._lstm, "gru": self._gru, "rnn": self._rnn}[self.cell]
            step(layer, gates, w_hh, recurrent_bias)
            below = self.hidden_out[layer % 2][:steps]
            yield layer + 1, self._kinds(layer, gates)
        weight, bias = self.decoder
        logits = linear(below.reshape(steps * streams, -1), weight, bias)
        yield "logits", logits.view(steps, streams, -1)

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

    def _lstm(self, layer, gates, w_hh, _):
        """gates (steps, streams, 4H) holds x W_ih^T + b; filled in place with i, f, o, g."""
        hidden_out, cell_out, three = self.hidden_out[layer % 2], self.cell_out, 3 * self.hidden
        h, c = self.h[layer], self.c[layer]
        for t in range(gates.shape[0]):
            row = gates[t]
            row.add_(linear(h, w_hh, None))
            row[:, :three].sigmoid_()
            i, f, o, g = row.split(self.hidden, dim=1)
            g.tanh_()
            c_next, h_next = cell_out[t], hidden_out[t]
            torch.mul(f, c, out=c_next).addcmul_(i, g)
            torch.tanh(c_next, out=h_next).mul_(o)
            h, c = h_next, c_next
        self.h[layer].copy_(h)
        self.c[layer].copy_(c)

    def _gru(self, layer, gates, w_hh, b_hh):
        """gates (steps, streams, 3H) holds x W_ih^T + b_ih; filled in place with r, z, n."""
        hidden_out, two = self.hidden_out[layer % 2], 2 * self.hidden
        h = self.h[layer]
        for t in range(gates.shape[0]):
            recurrent = linear(h, w_hh, b_hh)
            row = gates[t]
            row[:, :two].add_(recurrent[:, :two]).sigmoid_()
            r, z, n = row.split(self.hidden, dim=1)
            n.addcmul_(r, recurrent[:, two:]).tanh_()
            h_next = hidden_out[t]
            torch.sub(h, n, out=h_next).mul_(z).add_(n)  # (1 - z) n + z h
            h = h_next
        self.h[layer].copy_(h)

    def _rnn(self, layer, gates, w_hh, _):
        hidden_out = self.hidden_out[layer % 2]
        h = self.h[layer]
        for t in range(gates.shape[0]):
            h_next = hidden_out[t]
            torch.tanh(gates[t].add_(linear(h, w_hh, None)), out=h_next)
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
