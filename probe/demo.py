"""`probe demo`: the shipped default model on held-out stdlib code, searched and shown.

Uses `checkpoints/stdlib-lstm` (trained on the interpreter's own standard library, so it runs
offline on every machine). If that folder is missing, a small LSTM is trained for a few
minutes first. The recording is cached in `recordings/stdlib-demo` and reused while it
matches the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from probe.corpus import load_corpus
from probe.record import record_or_reuse
from probe.recording import Recording
from probe.search import search

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints" / "stdlib-lstm"
FALLBACK_RUN = REPO / "runs" / "demo-lstm"
RECORDING = REPO / "recordings" / "stdlib-demo"
DEMO_CHARS = 300_000
DEMO_FEATURES = ["in_string", "pos_in_line", "indent", "in_if_condition", "in_comment"]


def demo_checkpoint(progress: bool = True) -> Path:
    """The shipped default, or a quickly trained stand-in when it is missing."""
    if SHIPPED.is_dir():
        return SHIPPED
    if not (FALLBACK_RUN / "best").is_dir():
        from probe.train import TrainConfig, train

        print(f"{SHIPPED} is missing: training a small LSTM on stdlib for 5 minutes instead")
        train(
            TrainConfig(
                corpus="stdlib",
                out=str(FALLBACK_RUN),
                layers=2,
                hidden=128,
                max_minutes=5,
                quiet=not progress,
            )
        )
    return FALLBACK_RUN / "best"


def demo_recording(progress: bool = True) -> Recording:
    """Record held-out stdlib files (reused while checkpoint and text are unchanged)."""
    text = load_corpus("stdlib").split("test")[:DEMO_CHARS]
    source = f"stdlib test split, first {DEMO_CHARS:,} chars"
    return record_or_reuse(
        demo_checkpoint(progress), text, RECORDING, progress=progress, source=source
    )


def demo_table(recording: Recording) -> pd.DataFrame:
    """The best three units per demo feature, with their random-init and shift nulls."""
    return search(recording, DEMO_FEATURES, top=3)
