"""Every shipped checkpoint loads, its card matches its config, and its loss is what the card says."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from probe.checkpoint import load_checkpoint
from probe.corpus import find_named, load_corpus
from probe.model import evaluate

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
SHIPPED = sorted(p.parent for p in CHECKPOINTS.glob("*/card.md"))
SLICE = 50_000
PIECE = 1_000


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
    test = test[: info["train_args"]["eval_chars"]]  # the text the card's loss was measured on
    # 50 pieces of 1,000 chars spread over it: a file of generated data can open the split.
    starts = np.linspace(0, len(test) - PIECE, SLICE // PIECE).astype(int)
    pieces = np.stack([checkpoint.vocab.encode(test[s : s + PIECE]) for s in starts])
    loss = evaluate(checkpoint.model, pieces.reshape(-1), seq_len=PIECE, streams=len(starts))
    # A sample is noisier than the full text: allow 0.3 nats either way.
    assert math.isfinite(loss) and abs(loss - card_loss) < 0.3, (loss, card_loss)
    json.dumps(info)  # the config is plain JSON, nothing else


def test_the_readme_quotes_the_cards():
    """What the README says of a shipped model (training time, cells) is what its card says."""
    readme = (CHECKPOINTS.parent / "README.md").read_text(encoding="utf-8")
    card = (CHECKPOINTS / "warpeace-lstm" / "card.md").read_text(encoding="utf-8")
    minutes = re.search(r"\| training \| .*?, (\d+) min on cpu: 2 cores", card).group(1)
    assert f"`checkpoints/warpeace-lstm` (2 × 128 LSTM,\n{minutes} minutes on 2 CPU cores" in readme
    quote = re.search(r"\| `in_quote` \| `2:cell:85` \| auroc \| ([0-9.]+) \| (-?[0-9.]+) ", card)
    auroc, r = float(quote.group(1)), float(quote.group(2))
    assert f"AUROC {auroc:.3f} for `in_quote`, r = −{abs(r):.2f}" in readme
    linux = (CHECKPOINTS / "linux-lstm" / "card.md").read_text(encoding="utf-8")
    for feature, unit, claim in [
        ("in_comment", "1:cell:63", "(`1:cell:63`, AUROC\n{:.3f}"),
        ("in_if_condition", "2:cell:37", "(`2:cell:37`, AUROC {:.3f})"),
        ("brace_depth", "1:cell:105", "(`1:cell:105`, r = {:.2f})"),
    ]:
        score = re.search(rf"\| `{feature}` \| `{unit}` \| \w+ \| ([0-9.]+) ", linux).group(1)
        assert claim.format(float(score)) in readme


def test_make_reproduce_and_the_report_state_each_checkpoint_s_settings():
    """`make reproduce` trains each shipped model with its config's settings and step count,
    and docs/reproduction.md's loss table and spectral radii are those of the shipped files."""
    from probe.gradients import spectral_radii
    from probe.train import TrainConfig

    makefile = (CHECKPOINTS.parent / "Makefile").read_text(encoding="utf-8")
    report = (CHECKPOINTS.parent / "docs" / "reproduction.md").read_text(encoding="utf-8")
    defaults = TrainConfig()
    for path in SHIPPED:
        info = json.loads((path / "config.json").read_text(encoding="utf-8"))
        args, name = info["train_args"], path.name
        assert f"STEPS_{name} ?= {info['step']}\n" in makefile
        flags = re.search(rf"\$\(call train,{name},[^,]+,(.*)\)", makefile).group(1).split()
        given = dict(zip(flags[::2], flags[1::2], strict=True))
        for key in ("corpus", "cell", "layers", "hidden", "dropout", "lr", "snapshot_every"):
            flag = "--" + key.replace("_", "-")
            value = given.get(flag, getattr(defaults, key))
            assert str(value) == str(args[key]) or float(value) == args[key], (name, flag)
        split = given.get("--split", "90/5/5").split("/")
        assert [float(s) / 100 for s in split] == pytest.approx(args["split"])
        for key in ("seq_len", "batch", "optimizer", "grad_clip", "lr_decay", "lr_decay_every"):
            assert getattr(defaults, key) == args[key], (name, key)
        millions = info["step"] * args["batch"] * args["seq_len"] / 1e6
        row = (
            f"| `{name}` | {args['corpus']} | {info['parameters']:,} | {info['step']:,} "
            f"({millions:.0f}) | {info['test_loss']:.3f} | {info['test_bits_per_char']:.3f} |"
        )
        assert row in report, row
    for label, folder in [
        ("linux-lstm", "linux-lstm"),
        ("linux-rnn (init)", "linux-rnn-snapshots/init"),
    ]:
        model = load_checkpoint(CHECKPOINTS / folder).model
        radii = spectral_radii(model).groupby("layer")["radius"].max()
        assert re.search(
            rf"\| {re.escape(label)} \|.*\| {', '.join(f'{r:.2f}' for r in radii)} \|", report
        )
