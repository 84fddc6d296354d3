"""Temperature sampling from a checkpoint: low temperature repeats itself, high gets noisy."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from probe.checkpoint import Checkpoint
from probe.errors import ProbeError, argument


def sample(
    checkpoint: Checkpoint,
    length: int = 400,
    temperature: float = 0.5,
    prime: str = "\n",
    seed: int | None = None,
) -> str:
    """Generate `length` characters after `prime` (the prime is not repeated in the output)."""
    return "".join(generate(checkpoint, length, temperature, prime, seed))


def generate(
    checkpoint: Checkpoint,
    length: int = 400,
    temperature: float = 0.5,
    prime: str = "\n",
    seed: int | None = None,
) -> Iterator[str]:
    """`sample` one character at a time, so a long sample can be shown as it is written.

    The arguments are checked here, before the first character.
    """
    if length < 1:
        raise ProbeError(f"{argument('length')} must be positive")
    if temperature <= 0:
        raise ProbeError(f"{argument('temperature')} must be > 0 (0.01 is nearly greedy)")
    if not prime:
        raise ProbeError(f"{argument('prime')} must not be empty")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return _characters(checkpoint, length, temperature, prime, generator)


@torch.no_grad()
def _characters(checkpoint, length, temperature, prime, generator) -> Iterator[str]:
    model, vocab = checkpoint.model.eval(), checkpoint.vocab
    logits, state = model(torch.from_numpy(vocab.encode(prime))[None])
    last = logits[0, -1]
    for _ in range(length):
        scores = last.double()
        scores[0] = -math.inf  # never emit the unknown character
        # Shifted so the best score is 0: a tiny temperature sends the rest to -inf (greedy),
        # where dividing the raw scores by it overflowed to inf - inf = nan.
        probs = torch.softmax((scores - scores.max()) / temperature, dim=-1)
        next_id = torch.multinomial(probs, 1, generator=generator)
        yield vocab.chars[int(next_id)]
        logits, state = model(next_id[None], state)
        last = logits[0, -1]
