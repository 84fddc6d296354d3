"""`trace` (step by step, all states) must equal the fused `forward` the model trains with."""

import pytest
import torch

from probe.model import CharRNN, ModelConfig
from probe.units import KINDS


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_trace_equals_forward(cell):
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(cell=cell, layers=3, hidden=24, vocab_size=17)).eval()
    ids = torch.randint(0, 17, (4, 60))
    with torch.no_grad():
        first, state = model(ids[:, :30])
        second, final = model(ids[:, 30:], state)
        output, _ = model.rnn(torch.nn.functional.one_hot(ids, 17).float())
        trace_first, trace_state, _ = model.trace(ids[:, :30])
        trace_second, trace_final, traces = model.trace(ids[:, 30:], trace_state)
    assert (first - trace_first).abs().max() <= 1e-5
    assert (second - trace_second).abs().max() <= 1e-5  # carried state is exact too
    assert (output[:, 30:] - traces[3]["hidden"]).abs().max() <= 1e-5
    finals = zip(final, trace_final) if cell == "lstm" else [(final, trace_final)]
    for fused, stepped in finals:
        assert (fused - stepped).abs().max() <= 1e-5
    assert set(traces) == {1, 2, 3}
    assert tuple(traces[1]) == KINDS[cell]
    assert traces[2]["hidden"].shape == (4, 30, 24)


def test_lstm_trace_internals_are_consistent():
    """c_t = f*c_{t-1} + i*g and h_t = o*tanh(c_t): the recorded gates explain the states."""
    torch.manual_seed(1)
    model = CharRNN(ModelConfig(cell="lstm", layers=1, hidden=8, vocab_size=11)).eval()
    _, _, traces = model.trace(torch.randint(0, 11, (2, 20)))
    t = traces[1]
    previous = torch.cat([torch.zeros_like(t["cell"][:, :1]), t["cell"][:, :-1]], dim=1)
    assert torch.allclose(
        t["cell"], t["forget_gate"] * previous + t["input_gate"] * t["candidate"], atol=1e-6
    )
    assert torch.allclose(t["hidden"], t["output_gate"] * t["cell"].tanh(), atol=1e-6)
    for gate in ("input_gate", "forget_gate", "output_gate"):
        assert 0 <= t[gate].min() and t[gate].max() <= 1


def test_trace_keeps_only_requested_kinds():
    model = CharRNN(ModelConfig(cell="lstm", layers=2, hidden=8, vocab_size=5))
    _, _, traces = model.trace(torch.zeros(1, 5, dtype=torch.long), kinds=["cell"])
    assert list(traces[1]) == ["cell"] and list(traces[2]) == ["cell"]
