"""Subcommands of the pipeline itself: train, sample, record, features, dashboard, demo."""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

from probe.cli.args import (
    command,
    fractions,
    int_in,
    load_text,
    positive_float,
    positive_int,
)
from probe.errors import ProbeError


# --- train ---------------------------------------------------------------------------------
def add_train(subparsers) -> None:
    p = command(
        subparsers,
        "train",
        "train a character-level language model",
        "  probe train --corpus stdlib --out runs/stdlib --max-minutes 10\n"
        "  probe train --corpus warpeace --split 80/10/10 --out runs/wp --layers 2 --hidden 256\n"
        "  probe train --out runs/wp --corpus warpeace --resume",
    )
    p.add_argument(
        "--corpus",
        default="stdlib",
        help="file, folder, stdlib, warpeace, linux or tinyshakespeare",
    )
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
    p.add_argument(
        "--lr-decay",
        type=positive_float,
        default=0.95,
        help="LR factor every --lr-decay-every steps",
    )
    p.add_argument("--lr-decay-every", type=positive_int, default=1000)
    p.add_argument(
        "--val-every", type=positive_int, default=200, help="validate and save every N steps"
    )
    p.add_argument(
        "--patience",
        type=positive_int,
        default=20,
        help="early stop after N validations without gain",
    )
    p.add_argument("--max-steps", type=positive_int, help="stop at step N (counted over resumes)")
    p.add_argument(
        "--max-minutes",
        type=positive_float,
        help="stop after N minutes of training in all (a resumed run counts its earlier ones)",
    )
    p.add_argument(
        "--snapshot-every",
        type=positive_int,
        help="keep snapshots/step-NNNNNN (6 digits) every N steps, and at init",
    )
    p.add_argument(
        "--split", type=fractions, default=(0.9, 0.05, 0.05), help="TRAIN/VAL/TEST, default 90/5/5"
    )
    p.add_argument(
        "--min-char-count", type=positive_int, default=5, help="rarer characters become <unk>"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out exactly where it stopped, with its own settings "
        "(only --max-steps, --max-minutes, --patience, --device, and --corpus naming the same "
        "text, may change)",
    )
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from probe.train import TrainConfig, train

    names = TrainConfig.__dataclass_fields__
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    result = train(config, given=args.typed_flags)
    print(
        f"stopped ({result['reason']}) at step {result['step']} after {result['minutes']:.1f} min"
    )
    print(
        f"best val loss {result['val_loss']:.4f} nats ({result['val_loss'] / math.log(2):.4f} bits/char)"
    )
    print(
        f"test loss     {result['test_loss']:.4f} nats ({result['test_loss'] / math.log(2):.4f} bits/char)"
    )
    print(f"checkpoint    {result['out']}/best")
    return 130 if result["reason"] == "interrupted" else 0  # saved, but stopped by Ctrl-C


# --- sample --------------------------------------------------------------------------------
def add_sample(subparsers) -> None:
    p = command(
        subparsers,
        "sample",
        "generate text from a checkpoint",
        "  probe sample --checkpoint checkpoints/stdlib-lstm --prime 'def ' --temperature 0.5",
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--temperature", type=positive_float, default=0.5)
    p.add_argument("--length", type=positive_int, default=400)
    p.add_argument("--prime", default="\n", help="text to start from (default: a newline)")
    p.add_argument("--seed", type=int)
    p.set_defaults(func=cmd_sample)


def cmd_sample(args) -> None:
    from probe.checkpoint import load_checkpoint
    from probe.sample import generate

    checkpoint = load_checkpoint(args.checkpoint)
    characters = generate(checkpoint, args.length, args.temperature, args.prime, args.seed)
    unknown = checkpoint.vocab.unknown_count(args.prime)
    if unknown:  # the model reads each as its unknown char: say so rather than go on silently
        print(f"note: {unknown} char(s) of --prime are outside the vocabulary", file=sys.stderr)
    print(args.prime, end="")
    for char in characters:  # shown as it is written: a long sample takes a while
        print(char, end="", flush=char == "\n")
    print()


# --- record --------------------------------------------------------------------------------
def add_record(subparsers) -> None:
    p = command(
        subparsers,
        "record",
        "record every cell's state on a held-out text",
        "  probe record --checkpoint checkpoints/stdlib-lstm --corpus stdlib --split test --out rec/stdlib\n"
        "  probe record --checkpoint runs/wp --text chapter.txt --out rec/chapter --kinds cell,hidden",
    )
    p.add_argument("--checkpoint", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="a UTF-8 text file")
    source.add_argument(
        "--corpus", help="a corpus spec, split as the checkpoint was trained on it (see --split)"
    )
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--out", required=True, help="recording folder to write")
    p.add_argument(
        "--kinds",
        help="comma-separated kinds to store (default: all). Each takes 2 bytes per char, "
        "unit and layer on disk: 1M chars of a 2 x 128 LSTM, 512 MB a kind, 3 GB for all six",
    )
    p.add_argument("--max-chars", type=positive_int)
    p.add_argument(
        "--streams",
        type=positive_int,
        help="parallel streams (default: automatic). Each must be long enough for the model to "
        "forget where it started; past that a warning says the recording is not exact",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=500,
        help="warm-up chars before each stream: a first guess of its start state, which a "
        "repair pass then makes exact (a better guess makes the repair shorter)",
    )
    p.add_argument(
        "--init-only", action="store_true", help="record a random-init model of the same shape"
    )
    p.add_argument(
        "--no-twin", action="store_true", help="skip the random-init twin used as search's null"
    )
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(func=cmd_record)


def cmd_record(args) -> None:
    from probe.record import record

    if args.warmup < 0:
        raise ProbeError("--warmup must be >= 0")
    text, source = load_text(args, [args.checkpoint])
    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds is not None else None
    recording = record(
        args.checkpoint,
        text,
        args.out,
        kinds,
        args.max_chars,
        args.overwrite,
        args.init_only,
        not args.no_twin,
        args.streams,
        args.warmup,
        source,
        device=args.device,
    )
    m = recording.manifest
    print(f"recorded {recording.chars:,} chars at {m['chars_per_s']:,} chars/s -> {recording.path}")
    if m["unknown_chars"]:
        count = m["unknown_chars"]
        were = "character was" if count == 1 else "characters were"
        print(f"note: {count:,} {were} outside the vocabulary (recorded as <unk>)")


# --- features ------------------------------------------------------------------------------
def add_features(subparsers) -> None:
    p = command(subparsers, "features", "list the per-character text features", "  probe features")
    p.epilog += "\n\n" + features_notes()
    p.set_defaults(func=cmd_features)


def features_notes() -> str:
    """What the features' values describe and how re:PATTERN matches, wrapped for a terminal."""
    import textwrap

    from probe.features import LOOKS_AHEAD, REGEX_NOTE

    return "\n".join(textwrap.fill(note, 100) for note in (LOOKS_AHEAD, REGEX_NOTE))


def cmd_features(args) -> None:
    from probe.features import REGEX_DESCRIPTION, list_features

    for feature in list_features():
        kind = "binary" if feature.binary else "continuous"
        print(f"{feature.name:20s} {kind:11s} {feature.description}")
    print(f"{'re:PATTERN':20s} {'binary':11s} {REGEX_DESCRIPTION}")
    print(f"\n{features_notes()}")


# --- dashboard -----------------------------------------------------------------------------
def add_dashboard(subparsers) -> None:
    p = command(
        subparsers,
        "dashboard",
        "explore recordings in a local web dashboard",
        "  probe dashboard --recording rec/stdlib\n"
        "  probe dashboard --recording rec/linux --recording rec/linux-init --port 8051\n"
        "  probe dashboard --checkpoint checkpoints/stdlib-lstm --text chapter.txt --out rec/chapter\n"
        "  probe dashboard --recording rec/wp --checkpoint moved/runs/wp   # for its Gradients tab",
    )
    p.add_argument("--recording", action="append", default=[], help="recording folder (repeatable)")
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="with --text: record it with this checkpoint first (with a progress bar); without: "
        "the checkpoint that made a recording, for the Gradients tab where it has moved since "
        "(repeatable, matched to recordings by its weights)",
    )
    p.add_argument("--text", help="UTF-8 text file to record with --checkpoint")
    p.add_argument("--out", help="keep the new recording here (default: a temporary folder)")
    p.add_argument("--overwrite", action="store_true", help="replace the recording at --out")
    p.add_argument("--max-chars", type=positive_int, help="record only the first N chars of --text")
    p.add_argument("--device", default="cpu", help="record --text on cpu or cuda")
    p.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: this machine only)"
    )
    p.add_argument("--port", type=int_in(1, 65535), default=8050)
    p.add_argument("--debug", action="store_true", help="Dash debug mode: error pop-ups, dev tools")
    p.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args) -> None:
    import contextlib
    import tempfile

    from probe.recording import Recording

    if args.text and len(args.checkpoint) != 1:
        raise ProbeError("--text needs one --checkpoint to record it with")
    if not args.text and (args.out or args.overwrite or args.max_chars):
        raise ProbeError("--out, --overwrite and --max-chars go with --checkpoint and --text")
    if not args.recording and not args.text:
        raise ProbeError("nothing to show: give --recording FOLDER, or --checkpoint C --text FILE")
    recordings = [Recording.open(path) for path in args.recording]
    if not args.text:
        check_checkpoints_made(args.checkpoint, recordings)
    with contextlib.ExitStack() as stack:
        if args.text:
            from probe.fileio import read_text_file
            from probe.record import record

            text = read_text_file(args.text)
            folder = (
                args.out
                or Path(stack.enter_context(tempfile.TemporaryDirectory())) / Path(args.text).stem
            )
            if Path(folder).exists() and not args.overwrite:  # before saying it records
                raise ProbeError(f"{folder} already exists (pass --overwrite to replace it)")
            print(f"recording {args.text} with {args.checkpoint} -> {folder}")
            recordings.append(
                record(
                    args.checkpoint[0],
                    text,
                    folder,
                    max_chars=args.max_chars,
                    source=str(args.text),
                    device=args.device,
                    overwrite=args.overwrite,
                )
            )
        serve(recordings, args.checkpoint, args.host, args.port, args.debug)


def check_checkpoints_made(checkpoints: list[str], recordings) -> None:
    """Each checkpoint given beside --recording must have made one of them (by weights id)."""
    from probe.checkpoint import checkpoint_id

    made = {recording.manifest.get("checkpoint", {}).get("id") for recording in recordings}
    for path in checkpoints:
        if checkpoint_id(path) not in made:
            raise ProbeError(f"{path} made none of the recordings served (their weights differ)")


def serve(recordings, checkpoints, host: str, port: int, debug: bool = False) -> None:
    """Build the Dash app on these recordings and serve it until Ctrl-C."""
    from dashboards import build_app

    app = build_app(recordings, checkpoints)
    check_address(host, port)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    print(f"probe dashboard: serving {len(recordings)} recording(s) at http://{host}:{port}/")
    app.run(host=host, port=port, debug=debug, use_reloader=False)


def check_address(host: str, port: int) -> None:
    """Fail in one line before serving if the address cannot be bound (in use, no such host)."""
    import socket

    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe_socket:
            probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug
            probe_socket.bind(address)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ProbeError(f"cannot serve on {host}:{port} ({reason})") from None


# --- demo ----------------------------------------------------------------------------------
def add_demo(subparsers) -> None:
    p = command(
        subparsers,
        "demo",
        "the shipped stdlib model on held-out stdlib code: top cells, then the dashboard",
        "  probe demo\n  probe demo --no-dashboard",
    )
    p.add_argument("--no-dashboard", action="store_true", help="print the top cells and stop")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int_in(1, 65535), default=8050)
    p.set_defaults(func=cmd_demo, debug=False)


def cmd_demo(args) -> None:
    from probe.cli.analysis import format_search_table
    from probe.demo import demo_recording, demo_table

    recording = demo_recording()
    checkpoint = recording.manifest["checkpoint"]
    print(f"model: {checkpoint['path']} (test loss {checkpoint['test_loss']:.3f} nats/char)")
    print(f"text:  {recording.manifest['source']} -> {recording.path}")
    print(format_search_table(demo_table(recording)))
    if not args.no_dashboard:
        serve([recording], [], args.host, args.port, args.debug)
