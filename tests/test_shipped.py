"""Every shipped checkpoint loads, its card matches its config, and its loss is what the card says."""

import json
import math
import re
from pathlib import Path

import pytest

from probe.checkpoint import load_checkpoint
from probe.corpus import find_named, load_corpus
from probe.train import evaluate

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
SHIPPED = sorted(p.parent for p in CHECKPOINTS.glob("*/card.md"))
SLICE = 20_000


def test_shipped_models_exist_and_fit_in_the_repo():
    assert {p.name for p in SHIPPED} >= {"stdlib-lstm"}, "the demo's default model must be shipped"
    total = sum(f.stat().st_size for f in CHECKPOINTS.rglob("*") if f.is_file())
    assert total < 40 * 2**20


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_card_matches_config_and_loss(path):
    checkpoint = load_checkpoint(path)
    info, card = checkpoint.info, (path / "card.md").read_text(encoding="utf-8")
    model = info["model"]
    assert f"{model['layers']} layers × {model['hidden']} units" in card
    assert f"{info['parameters']:,} parameters" in card
    assert info["corpus"]["sha256"] in card
    card_loss = float(re.search(r"\| test loss \| ([0-9.]+) nats", card).group(1))
    assert card_loss == pytest.approx(info["test_loss"], abs=1e-4)
    assert f"--max-steps {info['step']}" in card
    corpus = info["train_args"]["corpus"]
    if corpus != "stdlib" and find_named(corpus) is None:
        pytest.skip(f"corpus {corpus} not available next to the repo")
    test = load_corpus(corpus, tuple(info["corpus"]["split"])).split("test")
    loss = evaluate(checkpoint.model, checkpoint.vocab.encode(test[:SLICE]), streams=8)
    # A 20k-char slice is noisier than the full test split: allow 0.25 nats either way.
    assert math.isfinite(loss) and abs(loss - card_loss) < 0.25, (loss, card_loss)
    json.dumps(info)  # the config is plain JSON, nothing else
