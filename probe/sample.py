"""Temperature sampling from a checkpoint: low temperature repeats itself, high gets noisy."""

from __future__ import annotations

import torch

from probe.checkpoint import Checkpoint
from probe.errors import ProbeError


@torch.no_grad()
def sample(
    checkpoint: Checkpoint,
    length: int = 400,
    temperature: float = 0.5,
    prime: str = "\n",
    seed: int | None = None,
) -> str:
    """Generate `length` characters after `prime` (the prime is not repeated in the output)."""
    if length < 1:
        raise ProbeError("--length must be positive")
    if temperature <= 0:
        raise ProbeError("--temperature must be > 0 (use 0.01 for nearly greedy sampling)")
    if not prime:
        raise ProbeError("--prime must not be empty")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    model, vocab = checkpoint.model.eval(), checkpoint.vocab
    logits, state = model(torch.from_numpy(vocab.encode(prime))[None])
    last = logits[0, -1]
    out = []
    for _ in range(length):
        probs = torch.softmax(last / temperature, dim=-1)
        probs[0] = 0  # never emit the unknown character
        next_id = torch.multinomial(probs, 1, generator=generator)
        out.append(vocab.chars[int(next_id)])
        logits, state = model(next_id[None], state)
        last = logits[0, -1]
    return "".join(out)
