"""The `probe` command. Only this module prints; every library function returns data.

Each subcommand is a pair: `add_NAME(subparsers)` declares its flags and `cmd_NAME(args)`
does the work. A ProbeError anywhere becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from probe.errors import ProbeError


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}") from None
    if not number > 0 or not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return number


def fractions(value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in value.split("/"))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected TRAIN/VAL/TEST like 90/5/5, got {value!r}")
    total = sum(parts)
    return tuple(p / total for p in parts)


def command(subparsers, name: str, help: str, examples: str):
    return subparsers.add_parser(
        name, help=help, description=help, epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# --- train ---------------------------------------------------------------------------------
def add_train(subparsers) -> None:
    p = command(subparsers, "train", "train a character-level language model",
                "  probe train --corpus stdlib --out runs/stdlib --max-minutes 10\n"
                "  probe train --corpus warpeace --split 80/10/10 --out runs/wp --layers 2 --hidden 256\n"
                "  probe train --out runs/wp --corpus warpeace --resume")
    p.add_argument("--corpus", default="stdlib", help="file, folder, stdlib, warpeace, linux or tinyshakespeare")
    p.add_argument("--out", required=True, help="run folder: best/, last/, log.csv")
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--layers", type=positive_int, default=2)
    p.add_argument("--hidden", type=positive_int, default=256)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--seq-len", type=positive_int, default=100, help="BPTT length")
    p.add_argument("--batch", type=positive_int, default=64, help="parallel streams")
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--optimizer", default="adam", choices=["adam", "rmsprop"])
    p.add_argument("--grad-clip", type=positive_float, default=5.0, help="max gradient norm")
    p.add_argument("--lr-decay", type=positive_float, default=0.95, help="LR factor every --lr-decay-every steps")
    p.add_argument("--lr-decay-every", type=positive_int, default=1000)
    p.add_argument("--val-every", type=positive_int, default=200, help="validate and save every N steps")
    p.add_argument("--patience", type=positive_int, default=20, help="early stop after N validations without gain")
    p.add_argument("--max-steps", type=positive_int)
    p.add_argument("--max-minutes", type=positive_float)
    p.add_argument("--snapshot-every", type=positive_int, help="keep snapshots/step-N every N steps (and at init)")
    p.add_argument("--split", type=fractions, default=(0.9, 0.05, 0.05), help="TRAIN/VAL/TEST, default 90/5/5")
    p.add_argument("--min-char-count", type=positive_int, default=5, help="rarer characters become <unk>")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> None:
    from probe.train import TrainConfig, train

    names = TrainConfig.__dataclass_fields__
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    result = train(config)
    print(f"stopped ({result['reason']}) at step {result['step']} after {result['minutes']:.1f} min")
    print(f"best val loss {result['val_loss']:.4f} nats ({result['val_loss'] / math.log(2):.4f} bits/char)")
    print(f"test loss     {result['test_loss']:.4f} nats ({result['test_loss'] / math.log(2):.4f} bits/char)")
    print(f"checkpoint    {result['out']}/best")


# --- sample --------------------------------------------------------------------------------
def add_sample(subparsers) -> None:
    p = command(subparsers, "sample", "generate text from a checkpoint",
                "  probe sample --checkpoint checkpoints/stdlib-lstm --prime 'def ' --temperature 0.5")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--temperature", type=positive_float, default=0.5)
    p.add_argument("--length", type=positive_int, default=400)
    p.add_argument("--prime", default="\n")
    p.add_argument("--seed", type=int)
    p.set_defaults(func=cmd_sample)


def cmd_sample(args) -> None:
    from probe.checkpoint import load_checkpoint
    from probe.sample import sample

    checkpoint = load_checkpoint(args.checkpoint)
    print(args.prime + sample(checkpoint, args.length, args.temperature, args.prime, args.seed))


# --- record --------------------------------------------------------------------------------
def add_record(subparsers) -> None:
    p = command(subparsers, "record", "record every cell's state on a held-out text",
                "  probe record --checkpoint checkpoints/stdlib-lstm --corpus stdlib --split test --out rec/stdlib\n"
                "  probe record --checkpoint runs/wp --text chapter.txt --out rec/chapter --kinds cell,hidden")
    p.add_argument("--checkpoint", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="a UTF-8 text file")
    source.add_argument("--corpus", help="a corpus spec (with --split)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--out", required=True, help="recording folder to write")
    p.add_argument("--kinds", help="comma-separated kinds to store (default: all)")
    p.add_argument("--max-chars", type=positive_int)
    p.add_argument("--streams", type=positive_int, help="parallel streams (default: automatic)")
    p.add_argument("--warmup", type=int, default=500, help="warm-up chars before each stream")
    p.add_argument("--init-only", action="store_true", help="record a random-init model of the same shape")
    p.add_argument("--no-twin", action="store_true", help="skip the random-init twin used as search's null")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_record)


def load_text(args) -> tuple[str, str]:
    """(text, description) from --text FILE or --corpus SRC --split S."""
    if args.text:
        from probe.fileio import read_text_file

        return read_text_file(args.text), str(args.text)
    from probe.corpus import load_corpus

    split = getattr(args, "split", "test")
    corpus = load_corpus(args.corpus, getattr(args, "split_fractions", None) or corpus_fractions(args.corpus))
    return corpus.split(split), f"{corpus.name} ({split} split)"


def corpus_fractions(spec: str) -> tuple[float, float, float]:
    """The split a shipped model used: 80/10/10 for War and Peace (as the paper), else 90/5/5."""
    return (0.8, 0.1, 0.1) if spec == "warpeace" else (0.9, 0.05, 0.05)


def cmd_record(args) -> None:
    from probe.record import record

    if args.warmup < 0:
        raise ProbeError("--warmup must be >= 0")
    text, source = load_text(args)
    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds else None
    recording = record(args.checkpoint, text, args.out, kinds, args.max_chars, args.overwrite,
                       args.init_only, not args.no_twin, args.streams, args.warmup, source)
    m = recording.manifest
    print(f"recorded {recording.chars:,} chars at {m['chars_per_s']:,} chars/s -> {recording.path}")
    if m["unknown_chars"]:
        print(f"note: {m['unknown_chars']:,} characters were outside the vocabulary (recorded as <unk>)")


# --- features ------------------------------------------------------------------------------
def add_features(subparsers) -> None:
    p = command(subparsers, "features", "list the per-character text features",
                "  probe features")
    p.set_defaults(func=cmd_features)


def cmd_features(args) -> None:
    from probe.features import list_features

    for feature in list_features():
        kind = "binary" if feature.binary else "continuous"
        print(f"{feature.name:20s} {kind:11s} {feature.description}")
    print(f"{'re:PATTERN':20s} {'binary':11s} 1 inside matches of a Python regular expression")


COMMANDS = [add_train, add_sample, add_record, add_features]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probe", description="Look inside character-level recurrent networks.",
        epilog="Run `probe COMMAND --help` for a command's flags and examples.",
    )
    parser.add_argument("--version", action="version", version=f"probe {__import__('probe').__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ProbeError as error:
        print(f"probe {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"probe {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
