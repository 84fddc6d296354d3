"""`probe demo`: the shipped default model on held-out stdlib code, searched and shown.

Uses `checkpoints/stdlib-lstm` (trained on the interpreter's own standard library, so it runs
offline on every machine). If that folder is missing, a small LSTM is trained for a few
minutes first. The recording is cached in `recordings/stdlib-demo` and reused while it
matches the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from probe.checkpoint import load_checkpoint
from probe.corpus import load_corpus
from probe.errors import ProbeError
from probe.record import record
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
    """Record held-out stdlib files (cached while the checkpoint is unchanged)."""
    checkpoint = load_checkpoint(demo_checkpoint(progress))
    if RECORDING.is_dir():
        try:
            cached = Recording.open(RECORDING)
            if cached.manifest["checkpoint"]["id"] == checkpoint.id:
                return cached
        except (ProbeError, KeyError):
            pass
    text = load_corpus("stdlib").split("test")[:DEMO_CHARS]
    return record(
        checkpoint,
        text,
        RECORDING,
        overwrite=True,
        progress=progress,
        source=f"stdlib test split, first {DEMO_CHARS:,} chars",
    )


def demo_table(recording: Recording) -> pd.DataFrame:
    """The best three units per demo feature, with their random-init and shift nulls."""
    return search(recording, DEMO_FEATURES, top=3)
