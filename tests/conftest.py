"""Shared fixtures: real tiny models trained on real text (a few seconds, once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tiny models gain nothing from more threads, and OpenMP threads spin badly when tests run
# beside other work on a 2-core machine.
torch.set_num_threads(1)

# The shared corpora: $PROBE_DATA if set (as for `probe`), else ../shared/data beside the repo.
DATA = Path(
    os.environ.get("PROBE_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)

pytest_plugins = ["tests.browser"]  # the browser tests' fixtures: server, page


def shared_text(name: str, chars: int) -> str:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"shared corpus {path.name} not found next to the repo (../shared/data)")
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read(chars)


@pytest.fixture(scope="session")
def linux_file(tmp_path_factory) -> Path:
    """The first 300k characters of the Linux kernel corpus as a file (C code)."""
    path = tmp_path_factory.mktemp("corpus") / "linux_head.c"
    path.write_text(shared_text("linux.txt", 300_000), encoding="utf-8", newline="")
    return path


@pytest.fixture(scope="session")
def train_tiny(tmp_path_factory, linux_file):
    """Factory: train a small model of a cell type on C code (cached per arguments)."""
    from probe.train import TrainConfig, train

    made = {}

    def make(cell: str = "lstm", layers: int = 1, hidden: int = 32, steps: int = 150) -> Path:
        key = (cell, layers, hidden, steps)
        if key not in made:
            out = tmp_path_factory.mktemp(f"run-{cell}")
            train(
                TrainConfig(
                    corpus=str(linux_file),
                    out=str(out),
                    cell=cell,
                    layers=layers,
                    hidden=hidden,
                    batch=16,
                    seq_len=50,
                    max_steps=steps,
                    val_every=50,
                    eval_chars=20_000,
                    quiet=True,
                )
            )
            made[key] = out / "best"
        return made[key]

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(train_tiny) -> Path:
    """A 2-layer x 32 LSTM trained for a few seconds on C code."""
    return train_tiny("lstm", layers=2, hidden=32, steps=200)


@pytest.fixture(scope="session")
def tiny_recording(tmp_path_factory, tiny_checkpoint):
    """A recording (all kinds, with random-init twin) of 20k held-out characters of C code."""
    from probe.record import record

    text = shared_text("linux.txt", 420_000)[400_000:]
    out = tmp_path_factory.mktemp("rec") / "tiny"
    return record(tiny_checkpoint, text, out, progress=False, source="linux.txt[400000:420000]")


@pytest.fixture(scope="module")
def app(tiny_recording):
    """The dashboard app serving the tiny recording (its Context is `app.probe_context`)."""
    from dashboards import build_app

    return build_app([tiny_recording])


@pytest.fixture(scope="module")
def context(app):
    return app.probe_context
