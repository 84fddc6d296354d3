"""The `probe` command. Only this module prints; every library function returns data.

Each subcommand is a pair: `add_NAME(subparsers)` declares its flags and `cmd_NAME(args)`
does the work. A ProbeError anywhere becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
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
        name,
        help=help,
        description=help,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


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
    p.add_argument("--max-steps", type=positive_int)
    p.add_argument("--max-minutes", type=positive_float)
    p.add_argument(
        "--snapshot-every",
        type=positive_int,
        help="keep snapshots/step-N every N steps (and at init)",
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
        "--resume", action="store_true", help="continue the run in --out exactly where it stopped"
    )
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> None:
    from probe.train import TrainConfig, train

    names = TrainConfig.__dataclass_fields__
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    result = train(config)
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
    source.add_argument("--corpus", help="a corpus spec (with --split)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--out", required=True, help="recording folder to write")
    p.add_argument("--kinds", help="comma-separated kinds to store (default: all)")
    p.add_argument("--max-chars", type=positive_int)
    p.add_argument("--streams", type=positive_int, help="parallel streams (default: automatic)")
    p.add_argument("--warmup", type=int, default=500, help="warm-up chars before each stream")
    p.add_argument(
        "--init-only", action="store_true", help="record a random-init model of the same shape"
    )
    p.add_argument(
        "--no-twin", action="store_true", help="skip the random-init twin used as search's null"
    )
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_record)


def load_text(args) -> tuple[str, str]:
    """(text, description) from --text FILE or --corpus SRC --split S."""
    if args.text:
        from probe.fileio import read_text_file

        return read_text_file(args.text), str(args.text)
    from probe.corpus import load_corpus

    split = getattr(args, "split", "test")
    corpus = load_corpus(
        args.corpus, getattr(args, "split_fractions", None) or corpus_fractions(args.corpus)
    )
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
    )
    m = recording.manifest
    print(f"recorded {recording.chars:,} chars at {m['chars_per_s']:,} chars/s -> {recording.path}")
    if m["unknown_chars"]:
        print(
            f"note: {m['unknown_chars']:,} characters were outside the vocabulary (recorded as <unk>)"
        )


# --- features ------------------------------------------------------------------------------
def add_features(subparsers) -> None:
    p = command(subparsers, "features", "list the per-character text features", "  probe features")
    p.set_defaults(func=cmd_features)


def cmd_features(args) -> None:
    from probe.features import list_features

    for feature in list_features():
        kind = "binary" if feature.binary else "continuous"
        print(f"{feature.name:20s} {kind:11s} {feature.description}")
    print(f"{'re:PATTERN':20s} {'binary':11s} 1 inside matches of a Python regular expression")


# --- dashboard -----------------------------------------------------------------------------
def add_dashboard(subparsers) -> None:
    p = command(
        subparsers,
        "dashboard",
        "explore recordings in a local web dashboard",
        "  probe dashboard --recording rec/stdlib\n"
        "  probe dashboard --recording rec/linux --recording rec/linux-init --port 8051\n"
        "  probe dashboard --checkpoint checkpoints/stdlib-lstm --text chapter.txt --out rec/chapter",
    )
    p.add_argument("--recording", action="append", default=[], help="recording folder (repeatable)")
    p.add_argument(
        "--checkpoint", help="record --text with this checkpoint first (with a progress bar)"
    )
    p.add_argument("--text", help="UTF-8 text file to record with --checkpoint")
    p.add_argument("--out", help="keep the new recording here (default: a temporary folder)")
    p.add_argument("--max-chars", type=positive_int, help="record only the first N chars of --text")
    p.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: this machine only)"
    )
    p.add_argument("--port", type=positive_int, default=8050)
    p.add_argument("--debug", action="store_true", help="Dash debug mode: error pop-ups, dev tools")
    p.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args) -> None:
    import contextlib
    import tempfile

    from probe.recording import Recording

    if bool(args.checkpoint) != bool(args.text):
        raise ProbeError("--checkpoint and --text go together")
    if not args.recording and not args.checkpoint:
        raise ProbeError("nothing to show: give --recording FOLDER, or --checkpoint C --text FILE")
    recordings = [Recording.open(path) for path in args.recording]
    with contextlib.ExitStack() as stack:
        if args.checkpoint:
            from probe.fileio import read_text_file
            from probe.record import record

            text = read_text_file(args.text)
            folder = (
                args.out
                or Path(stack.enter_context(tempfile.TemporaryDirectory())) / Path(args.text).stem
            )
            print(f"recording {args.text} with {args.checkpoint} -> {folder}")
            recordings.append(
                record(
                    args.checkpoint, text, folder, max_chars=args.max_chars, source=str(args.text)
                )
            )
        serve(
            recordings,
            [args.checkpoint] if args.checkpoint else [],
            args.host,
            args.port,
            args.debug,
        )


def serve(recordings, checkpoints, host: str, port: int, debug: bool = False) -> None:
    """Build the Dash app on these recordings and serve it until Ctrl-C."""
    from dashboards import build_app

    app = build_app(recordings, checkpoints)
    print(f"probe dashboard: serving {len(recordings)} recording(s) at http://{host}:{port}/")
    try:
        app.run(host=host, port=port, debug=debug, use_reloader=False)
    except OSError as error:
        raise ProbeError(f"cannot serve on {host}:{port} ({error.strerror}); try --port") from None


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
    p.add_argument("--port", type=positive_int, default=8050)
    p.set_defaults(func=cmd_demo, debug=False)


def cmd_demo(args) -> None:
    from probe.demo import demo_recording, demo_table

    recording = demo_recording()
    checkpoint = recording.manifest["checkpoint"]
    print(f"model: {checkpoint['path']} (test loss {checkpoint['test_loss']:.3f} nats/char)")
    print(f"text:  {recording.manifest['source']} -> {recording.path}")
    print(format_search_table(demo_table(recording)))
    if not args.no_dashboard:
        serve([recording], [], args.host, args.port, args.debug)


# --- search --------------------------------------------------------------------------------
def add_search(subparsers) -> None:
    p = command(
        subparsers,
        "search",
        "rank every unit of a recording against text features",
        "  probe search --recording rec/linux --feature in_comment --feature brace_depth\n"
        "  probe search --recording rec/wp --feature in_quote --kinds cell --top 5\n"
        "  probe search --recording rec/linux --feature 're:\\bif\\b' --format csv \\\n"
        "      --out if.csv",
    )
    p.add_argument("--recording", required=True, help="a recording folder made by `probe record`")
    p.add_argument(
        "--feature",
        action="append",
        required=True,
        help="a feature name (see `probe features`) or re:PATTERN; repeat for several",
    )
    p.add_argument("--kinds", help="comma-separated kinds to search (default: all recorded)")
    p.add_argument("--top", type=positive_int, default=10, help="units per feature")
    p.add_argument("--format", default="table", choices=["table", "csv", "json"])
    p.add_argument("--out", help="write to this file instead of standard output")
    p.add_argument("--no-nulls", action="store_true", help="skip the init-twin and shift nulls")
    p.set_defaults(func=cmd_search)


SEARCH_NOTE = (
    "score: max(AUROC, 1-AUROC) for binary features, |r| for continuous ones; "
    "null_init: best score of a random-init model, null_shift: best score against "
    "the feature circularly shifted"
)


def cmd_search(args) -> None:
    from probe.recording import Recording
    from probe.search import search

    recording = Recording.open(args.recording)
    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds else None
    table = search(
        recording, args.feature, kinds, args.top, not args.no_nulls, progress=sys.stderr.isatty()
    )
    table = table[SEARCH_COLUMNS]
    if args.format == "csv":
        output = table.to_csv(index=False)
    elif args.format == "json":
        output = table.to_json(orient="records", indent=1) + "\n"
    else:
        output = format_search_table(table)
    write_output(output, args.out)


SEARCH_COLUMNS = [
    "feature",
    "rank",
    "unit",
    "measure",
    "score",
    "r",
    "auroc",
    "null_init",
    "null_shift",
]


def format_search_table(table) -> str:
    """An aligned text table of search results, with a note on what the columns mean."""
    output = table[SEARCH_COLUMNS].to_string(
        index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"
    )
    return output + "\n" + SEARCH_NOTE + "\n"


def write_output(output: str, path: str | None) -> None:
    """Print, or write to a file (a bad path is the user's error, not a traceback)."""
    if path is None:
        print(output, end="")
        return
    try:
        Path(path).write_text(output, encoding="utf-8")
    except OSError as error:
        raise ProbeError(f"cannot write {path}: {error.strerror}") from None


# --- contexts ------------------------------------------------------------------------------
def add_contexts(subparsers) -> None:
    p = command(
        subparsers,
        "contexts",
        "show the text where one unit fires strongest",
        "  probe contexts --recording rec/linux --unit 2:cell:13\n"
        "  probe contexts --recording rec/wp --unit 1:hidden:7 --k 20 --sign negative",
    )
    p.add_argument("--recording", required=True)
    p.add_argument("--unit", required=True, help="LAYER:KIND:INDEX, e.g. 2:cell:13")
    p.add_argument("--k", type=positive_int, default=8, help="how many contexts")
    p.add_argument("--width", type=positive_int, default=40, help="chars per context")
    p.add_argument("--sign", default="positive", choices=["positive", "negative", "absolute"])
    p.set_defaults(func=cmd_contexts)


def cmd_contexts(args) -> None:
    from probe.recording import Recording
    from probe.search import top_contexts

    table = top_contexts(Recording.open(args.recording), args.unit, args.k, args.width, args.sign)
    visible = str.maketrans({"\n": "⏎", "\t": "→", "\r": "␍"})
    print(f"{'position':>9} {'value':>8}  context")
    for row in table.itertuples():
        print(f"{row.position:>9} {row.value:>8.3f}  {row.context.translate(visible)}")


# --- export --------------------------------------------------------------------------------
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


def add_export(subparsers) -> None:
    p = command(
        subparsers,
        "export",
        "export text colored by units as a figure for a paper",
        "  probe export --recording rec/wp --unit 1:cell:137 --range 2000:2600 --out fig.pdf\n"
        "  probe export --recording rec/linux --unit 2:cell:13 --unit 2:cell:40 --feature in_string \\\n"
        "      --colormap paper --range 500:1400 --out fig.svg\n"
        "  probe export --recording rec/linux --unit 2:cell:13 --range 0:800 --out fig.tex  # for \\input{}\n"
        "  probe export --recording rec/wp --unit 1:cell:137 --top 8 --out sheet.pdf\n"
        "format from the extension: .pdf .svg .png .tex .html",
    )
    p.add_argument("--recording", required=True)
    p.add_argument(
        "--unit", action="append", required=True, help="LAYER:KIND:INDEX; repeat for stacked panels"
    )
    p.add_argument(
        "--range",
        type=char_range,
        metavar="START:STOP",
        help="characters to show (default: the first 1000)",
    )
    p.add_argument("--width", type=positive_int, help="columns to wrap at (default 80; --top: 40)")
    p.add_argument(
        "--colormap",
        default="rdbu",
        choices=["rdbu", "puor", "paper", "gray"],
        help="rdbu (colorblind-safe, default), puor, paper (the paper's red/blue)",
    )
    p.add_argument(
        "--limit",
        type=positive_float,
        help="color range +-LIMIT (default: each unit's max |value| over the whole recording)",
    )
    p.add_argument(
        "--feature", action="append", help="add r to the label and underline it; repeatable"
    )
    p.add_argument("--no-colorbar", action="store_true")
    p.add_argument(
        "--tanh", action="store_true", help="color tanh(value) on -1..1, as the paper colors cells"
    )
    p.add_argument(
        "--show-whitespace", action="store_true", help="draw tabs as → and newlines as ↵"
    )
    p.add_argument(
        "--top", type=positive_int, metavar="K", help="a sheet of the unit's K strongest contexts"
    )
    p.add_argument(
        "--sign",
        default="positive",
        choices=["positive", "negative", "absolute"],
        help="with --top: which contexts are strongest",
    )
    p.add_argument("--title")
    p.add_argument("--font-size", type=positive_float, default=9.0, help="points (default 9)")
    p.add_argument("--dpi", type=positive_int, default=300, help="PNG resolution (default 300)")
    p.add_argument("--out", required=True, help="file to write: .pdf .svg .png .tex or .html")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> None:
    from probe.export import format_of, text_heatmap, top_contexts_sheet
    from probe.recording import Recording

    out = Path(args.out)
    format_of(out)  # a bad extension or an existing file fails before any work
    if out.exists() and not args.force:
        raise ProbeError(f"{out} already exists (pass --force to overwrite it)")
    recording = Recording.open(args.recording)
    style = dict(
        colormap=args.colormap,
        limit=args.limit,
        features=args.feature,
        colorbar=not args.no_colorbar,
        font_size=args.font_size,
        title=args.title,
        tanh=args.tanh,
    )
    if args.top:
        if len(args.unit) > 1:
            raise ProbeError("--top makes a sheet for one unit; give a single --unit")
        figure = top_contexts_sheet(
            recording, args.unit[0], args.top, args.width or 40, args.sign, **style
        )
    else:
        start, stop = args.range or (0, min(1000, recording.chars))
        figure = text_heatmap(
            recording,
            args.unit,
            start,
            stop,
            args.width or 80,
            show_whitespace=args.show_whitespace,
            **style,
        )
    figure.save(out, args.dpi, args.force)
    lines = sum(len(panel.lines) for panel in figure.panels)
    print(f"wrote {out} ({len(figure.panels)} panel(s), {lines} lines of text)")


# --- gradients -----------------------------------------------------------------------------
def add_gradients(subparsers) -> None:
    p = command(
        subparsers,
        "gradients",
        "how the loss gradient decays with time lag (vanishing / exploding gradients)",
        "  probe gradients --checkpoint runs/rnn --checkpoint runs/gru --checkpoint runs/lstm \\\n"
        "      --corpus linux --split test --out out/decay\n"
        "  probe gradients --checkpoint runs/linux-lstm --snapshots --text held_out.c --out out/train\n"
        "  probe gradients --checkpoint runs/wp --corpus warpeace --max-lag 100 --layer 1 --normalise --out out/wp",
    )
    p.add_argument("--checkpoint", action="append", required=True, help="repeat to overlay models")
    p.add_argument(
        "--snapshots", action="store_true", help="use every snapshot of each run folder, then best"
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="a UTF-8 text file")
    source.add_argument("--corpus", help="a corpus spec (with --split)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--max-lag", type=positive_int, default=200, help="largest lag K in characters")
    p.add_argument("--positions", type=positive_int, default=256, help="positions averaged over")
    p.add_argument("--warmup", type=int, default=100, help="chars read before each window")
    p.add_argument("--batch", type=positive_int, default=64, help="positions per backward pass")
    p.add_argument("--layer", type=positive_int, help="layer to plot and print (default: top)")
    p.add_argument("--normalise", action="store_true", help="divide by the lag-0 norm")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", required=True, help="folder for decay.csv, spectral.csv, decay.html")
    p.set_defaults(func=cmd_gradients)


def cmd_gradients(args) -> None:
    import pandas as pd

    from probe.checkpoint import load_checkpoint
    from probe.gradients import checkpoint_label, gradient_decay, run_snapshots, spectral_radii
    from probe.plots import decay_figure

    text, source = load_text(args)
    paths = [s for c in args.checkpoint for s in (run_snapshots(c) if args.snapshots else [c])]
    decays, radii = [], []
    for path in paths:
        checkpoint = load_checkpoint(path, args.device)
        label = checkpoint_label(checkpoint)
        if args.layer and args.layer > checkpoint.model.config.layers:
            raise ProbeError(f"--layer {args.layer}: {label} has {checkpoint.model.config.layers}")
        decays.append(
            gradient_decay(checkpoint, text, args.max_lag, args.positions, args.warmup,
                           args.batch, label, progress=True)
        )
        radii.append(spectral_radii(checkpoint.model).assign(model=label))
    decay, spectral = pd.concat(decays, ignore_index=True), pd.concat(radii, ignore_index=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    decay.to_csv(out / "decay.csv", index=False)
    spectral.to_csv(out / "spectral.csv", index=False)
    figure = decay_figure(decay, normalise=args.normalise, layer=args.layer)
    figure.write_html(out / "decay.html", include_plotlyjs=True)
    column = "ratio_mean" if args.normalise else "mean"
    lags = [k for k in (0, 10, 50, 100, 200) if k <= args.max_lag]
    print(f"gradient norm ({'relative to lag 0' if args.normalise else 'absolute'}, mean over "
          f"{decay['positions'].max()} positions of {source}) at lag:")
    print(f"{'model':32s} {'layer':>5s} {'state':6s} " + " ".join(f"{k:>9d}" for k in lags))
    for (model, layer, state), rows in decay.groupby(["model", "layer", "state"], sort=False):
        top = args.layer or decay.loc[decay["model"] == model, "layer"].max()
        if layer == top:
            values = rows.set_index("lag")[column]
            print(f"{model:32s} {layer:5d} {state:6s} " + " ".join(f"{values[k]:9.2e}" for k in lags))
    print("spectral radius of W_hh (per gate block for LSTM/GRU):")
    for (model, layer), rows in spectral.groupby(["model", "layer"], sort=False):
        blocks = ", ".join(f"{b} {r:.3f}" for b, r in zip(rows["block"], rows["radius"]))
        print(f"  {model:30s} layer {layer}: {blocks}")
    print(f"wrote {out}/decay.csv, spectral.csv, decay.html")


# --- saturation ----------------------------------------------------------------------------
def add_saturation(subparsers) -> None:
    p = command(
        subparsers,
        "saturation",
        "gate saturation: how often each gate is nearly shut (< 0.1) or open (> 0.9)",
        "  probe saturation --recording rec/linux-lstm\n"
        "  probe saturation --recording rec/wp --out out/saturation --top 20",
    )
    p.add_argument("--recording", required=True, help="a recording of an LSTM or GRU")
    p.add_argument("--out", help="folder for saturation.csv and saturation.html")
    p.add_argument("--top", type=positive_int, default=10, help="integrator gates to list")
    p.set_defaults(func=cmd_saturation)


def cmd_saturation(args) -> None:
    from probe.plots import saturation_figure
    from probe.recording import Recording
    from probe.saturation import gate_saturation, integrators, saturation_summary

    recording = Recording.open(args.recording)
    saturation = gate_saturation(recording, progress=True)
    print(f"gate saturation over {recording.chars:,} chars of {recording.name} "
          "(fraction of chars < 0.1 / > 0.9, units mostly so):")
    print(saturation_summary(saturation).to_string(index=False, float_format="{:.3f}".format))
    top = integrators(saturation, recording.config["cell"], args.top)
    print(f"most right-saturated {top['kind'].iloc[0] if len(top) else 'forget'} units "
          "(candidate integrators; color the text by one in the dashboard or `probe export`):")
    for row in top.itertuples():
        print(f"  {row.unit:24s} open {row.right:6.1%}  shut {row.left:6.1%}  mean {row.mean:.3f}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        saturation.to_csv(out / "saturation.csv", index=False)
        saturation_figure(saturation).write_html(out / "saturation.html", include_plotlyjs=True)
        print(f"wrote {out}/saturation.csv, saturation.html")


COMMANDS = [
    add_demo,
    add_train,
    add_sample,
    add_record,
    add_features,
    add_dashboard,
    add_search,
    add_contexts,
    add_export,
    add_gradients,
    add_saturation,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probe",
        description="Look inside character-level recurrent networks.",
        epilog="Run `probe COMMAND --help` for a command's flags and examples.",
    )
    parser.add_argument(
        "--version", action="version", version=f"probe {__import__('probe').__version__}"
    )
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
