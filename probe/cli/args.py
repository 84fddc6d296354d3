"""Argument types and small helpers shared by every `probe` subcommand."""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from probe.errors import ProbeError

if TYPE_CHECKING:
    from probe.corpus import Corpus


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def int_in(low: int, high: int):
    """An argument type: a whole number in [low, high]."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise argparse.ArgumentTypeError(
                f"expected a whole number {low}..{high}, got {value!r}"
            )
        return number

    return parse


def float_in(low: float, high: float):
    """An argument type: a number in [low, high]."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not low <= number <= high:  # NaN fails too
            raise argparse.ArgumentTypeError(f"expected a number {low:g}..{high:g}, got {value!r}")
        return number

    return parse


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}") from None
    if not number > 0 or not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return number


def char_range(value: str) -> tuple[int, int | None]:
    start, sep, stop = value.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(start or 0), int(stop) if stop else None
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected START:STOP like 2000:2600, got {value!r}"
        ) from None


def fractions(value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in value.split("/"))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected three positive parts TRAIN/VAL/TEST like 90/5/5, got {value!r}"
        )
    total = sum(parts)
    if not (math.isclose(total, 100) or math.isclose(total, 1)):
        raise argparse.ArgumentTypeError(f"TRAIN/VAL/TEST must sum to 100 (or 1), got {value!r}")
    return tuple(p / total for p in parts)


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append '(default: X)' to the help of every flag with a default worth saying."""
    for action in parser._actions:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default in ("", [])
        unset = unset or action.default == argparse.SUPPRESS
        if not unset and "default" not in text and action.help != argparse.SUPPRESS:
            action.help = f"{text} (default: %(default)s)".strip()


def command(subparsers, name: str, help: str, examples: str):
    return subparsers.add_parser(
        name,
        help=help,
        description=help,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def load_text(args, checkpoints: list[str] = ()) -> tuple[str, str]:
    """(text, description) from --text FILE or --corpus SRC --split S. A corpus the
    checkpoints were trained on is split as they were, so that `--split test` is text they
    never saw (a model trained at 96/2/2 would have trained on most of a 90/5/5 test split)."""
    if args.text:
        from probe.fileio import read_text_file

        return read_text_file(args.text), str(args.text)
    split = getattr(args, "split", "test")
    corpus = corpus_as_trained(args.corpus, checkpoints)
    parts = "/".join(f"{100 * f:g}" for f in corpus.fractions)
    return corpus.split(split), f"{corpus.name} ({split} split of {parts})"


def corpus_as_trained(spec: str, checkpoints: list[str] = ()) -> Corpus:
    """The corpus split the way the checkpoints trained on it were (by their config's corpus
    sha256 and split); among several splits, the one that trained on most, whose test text
    none of them saw. Otherwise the split the shipped models used (`corpus_fractions`), with a
    warning where a checkpoint trained on a text of the same name: an edited copy of it may
    share text with the training split."""
    from probe.corpus import load_corpus

    trained = trained_corpora(checkpoints)
    for fractions in sorted({f for f, _ in trained.values()}, key=lambda f: -(f[0] + f[1])):
        corpus = load_corpus(spec, fractions)
        if trained.get(corpus.sha256, (None,))[0] == fractions:
            return corpus
    corpus = load_corpus(spec, corpus_fractions(spec))
    if corpus.name in {name for _, name in trained.values()}:
        warnings.warn(
            f"{spec} is not the {corpus.name} the checkpoint trained on (its contents differ): "
            "its held-out split may hold text the model trained on",
            stacklevel=2,
        )
    return corpus


def trained_corpora(checkpoints: list[str]) -> dict[str, tuple[tuple[float, float, float], str]]:
    """{corpus sha256: (split fractions, corpus name)} from each checkpoint's config.json. A
    checkpoint that cannot be read is skipped here: loading it says why, in one line."""
    from probe.checkpoint import resolve
    from probe.fileio import read_json

    trained = {}
    for path in checkpoints:
        try:
            corpus = read_json(resolve(path) / "config.json", "checkpoint").get("corpus", {})
            fractions = tuple(float(f) for f in corpus["split"])
            if len(fractions) == 3 and isinstance(corpus["sha256"], str):
                known = trained.get(corpus["sha256"], ((0, 0, 0), ""))[0]
                if fractions[0] + fractions[1] > known[0] + known[1]:
                    trained[corpus["sha256"]] = (fractions, str(corpus.get("name", "")))
        except (ProbeError, OSError, KeyError, TypeError, ValueError, AttributeError):
            continue
    return trained


def corpus_fractions(spec: str) -> tuple[float, float, float]:
    """The split a shipped model used: 80/10/10 for War and Peace (as the paper), else 90/5/5."""
    return (0.8, 0.1, 0.1) if spec == "warpeace" else (0.9, 0.05, 0.05)


def check_out_folder(path: str | None, files: tuple[str, ...], force: bool) -> Path | None:
    """The --out folder for `files`, checked before any long work (a file in the way, results
    of an earlier run there) but created only by `write_files`, so a run that fails leaves
    nothing behind."""
    if path is None:
        return None
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ProbeError(f"--out {path} is a file, not a folder")
    there = [name for name in files if (folder / name).exists()]
    if there and not force:
        raise ProbeError(f"{path} already holds {', '.join(there)} (pass --force to overwrite)")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ProbeError(f"cannot write to {path}: {existing} is not a writable folder")
    return folder


def write_files(folder: Path, writers: dict) -> None:
    """Write each file of {name: write(path)} into folder, each by one rename (a stop midway
    leaves whole files, never half of one)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, write in writers.items():
        temporary = folder / f".{name}.tmp-{os.getpid()}"
        try:
            write(temporary)
            os.replace(temporary, folder / name)
        finally:
            temporary.unlink(missing_ok=True)


def check_output_file(path: str | None, force: bool = False) -> None:
    """Fail before any long work if --out cannot take the result."""
    if path is None:
        return
    if not path:
        raise ProbeError("--out is empty; name a file")
    if Path(path).is_dir():  # --force would not help
        raise ProbeError(f"{path} is a folder; give a file name in it")
    if Path(path).exists() and not force:
        raise ProbeError(f"{path} already exists (pass --force to overwrite it)")


def write_output(output: str, path: str | None, force: bool = False) -> None:
    """Print, or write to a file atomically (never over an existing one unless `force`)."""
    from probe.figure_files import save_bytes

    if path is None:
        print(output, end="")
        return
    check_output_file(path, force)
    save_bytes(output.encode("utf-8"), path, force)
    print(f"wrote {path}", file=sys.stderr)
