"""The benchmarks' references compute what the recorder computes: a ratio against a loop
that did less (or something else) would flatter the recorder."""

import pytest
import torch

from bench.recorder import per_char_loop
from probe.checkpoint import load_checkpoint


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_per_char_loop_equals_trace(cell, train_tiny, linux_file):
    checkpoint = load_checkpoint(train_tiny(cell=cell, layers=2))
    model = checkpoint.model.eval()
    text = linux_file.read_text()[:200]  # chars the model was trained on
    ids = torch.from_numpy(checkpoint.vocab.encode(text))
    states = per_char_loop(model, ids)
    with torch.no_grad():
        _, _, traces = model.trace(ids[None])
    expected = {
        (layer, kind): value[0] for layer in traces for kind, value in traces[layer].items()
    }
    assert states.keys() == expected.keys()
    for key, value in expected.items():
        assert (states[key] - value).abs().max() <= 1e-5, key
