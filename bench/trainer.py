"""Trainer speed: `probe train`'s step (`Trainer.train_step`) against a bare PyTorch loop.

The bare loop is what anyone would write: nn.LSTM + nn.Linear on one-hot chars, cross
entropy, backward, Adam step, state carried and detached, same shape, batch and sequence
length, on the same text. Ours also clips gradients and sets the learning rate per step.
"""

from __future__ import annotations

import tempfile

import torch
import torch.nn.functional as F
from torch import nn

from bench.common import interleaved, ratio
from probe.train import TrainConfig, Trainer

TARGET = 0.9


def bare_loop(
    data: torch.Tensor, layers: int, hidden: int, vocab: int, seq_len: int, device: str = "cpu"
):
    """A block of steps of the reference loop over `data` (batch, stream length), which
    stays on the CPU as the trainer's does: each step moves its batch to `device`."""
    torch.manual_seed(0)
    rnn = nn.LSTM(vocab, hidden, layers, batch_first=True).to(device)
    decoder = nn.Linear(hidden, vocab).to(device)
    optimizer = torch.optim.Adam([*rnn.parameters(), *decoder.parameters()], lr=2e-3)
    where = {"position": 0, "state": None}

    def step():
        p = where["position"]
        if p + seq_len + 1 > data.shape[1]:
            p, where["state"] = 0, None
        x = F.one_hot(data[:, p : p + seq_len].to(device), vocab).float()
        y = data[:, p + 1 : p + seq_len + 1].to(device)
        output, state = rnn(x, where["state"])
        loss = F.cross_entropy(decoder(output).reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        where["state"] = tuple(s.detach() for s in state)
        where["position"] = p + seq_len
        return loss.item()

    return step


def main(
    layers: int = 2, hidden: int = 256, steps: int = 10, rounds: int = 3, device: str = "cpu"
) -> dict:
    with tempfile.TemporaryDirectory(prefix="probe-bench-train-") as out:
        config = TrainConfig(
            corpus="linux", out=out, layers=layers, hidden=hidden, device=device, quiet=True
        )
        trainer = Trainer(config)
        ours = trainer.train_step
        vocab = len(trainer.vocab)
        bare = bare_loop(trainer.train_data, layers, hidden, vocab, config.seq_len, device)
        ours(), bare()  # first steps allocate
        times = interleaved(
            {
                "ours": lambda: [ours() for _ in range(steps)],
                "bare": lambda: [bare() for _ in range(steps)],
            },
            rounds,
        )
    chars = steps * config.batch * config.seq_len
    result = {
        "shape": f"lstm {layers}x{hidden}, batch {config.batch} x {config.seq_len}",
        "ours_chars_s": chars / min(times["ours"]),
        "bare_chars_s": chars / min(times["bare"]),
        "vs_bare": ratio(times["bare"], times["ours"]),
    }
    print(
        f"  trainer {result['shape']}: {result['ours_chars_s']:,.0f} chars/s, "
        f"{result['vs_bare']:.2f}x the bare loop",
        flush=True,
    )
    return result


if __name__ == "__main__":
    from bench.common import setup

    setup()
    main(steps=3, rounds=2)
