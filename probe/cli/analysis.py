"""Subcommands that analyse recordings: search, contexts, export, gradients, saturation."""

from __future__ import annotations

import sys
from pathlib import Path

from probe.cli.args import (
    char_range,
    check_out_folder,
    check_output_file,
    command,
    float_in,
    int_in,
    load_text,
    positive_float,
    positive_int,
    write_files,
    write_output,
)
from probe.errors import ProbeError
from probe.figure_files import MAX_COLUMNS, MAX_CONTEXTS


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
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
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

    check_output_file(args.out, args.force)  # before the search, which can take minutes
    recording = Recording.open(args.recording)
    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds is not None else None
    table = search(
        recording, args.feature, kinds, args.top, not args.no_nulls, progress=sys.stderr.isatty()
    )
    if args.format == "table":
        output = format_search_table(table)
    else:  # rows of unscored units would read as a ranking: the file has none, stderr says why
        table, constant = without_constant_features(table[SEARCH_COLUMNS])
        for name in constant:
            print(f"probe search: note: {name}{CONSTANT}", file=sys.stderr)
        output = (table.to_csv(index=False) if args.format == "csv"
                  else table.to_json(orient="records", indent=1) + "\n")  # fmt: skip
    write_output(output, args.out, args.force)


SEARCH_COLUMNS = "feature rank unit measure score r auroc null_init null_shift".split()


CONSTANT = ": constant on this text, no unit can track it"


def without_constant_features(table):
    """The rows of features some unit has a score for, and the names of the others."""
    constant = table.groupby("feature", sort=False)["score"].apply(lambda s: s.isna().all())
    names = list(constant.index[constant])
    return table[~table["feature"].isin(names)], names


def format_search_table(table) -> str:
    """An aligned text table of search results, a line for each feature constant on the text
    (no score anywhere), and a note on what the columns mean."""
    table, constant = without_constant_features(table[SEARCH_COLUMNS])
    output = (
        table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
        if len(table)
        else ""
    )
    notes = [f"{name}{CONSTANT}" for name in constant]
    return "\n".join(filter(None, [output, *notes, SEARCH_NOTE])) + "\n"


# --- contexts ------------------------------------------------------------------------------
def add_contexts(subparsers) -> None:
    p = command(
        subparsers,
        "contexts",
        "show the text where one unit fires strongest",
        "  probe contexts --recording rec/linux --unit 2:cell:13\n"
        "  probe contexts --recording rec/wp --unit 1:hidden:7 --top 20 --sign negative",
    )
    p.add_argument("--recording", required=True)
    p.add_argument("--unit", required=True, help="LAYER:KIND:INDEX, e.g. 2:cell:13")
    p.add_argument("--top", "--k", dest="k", type=positive_int, default=8, help="how many contexts")
    p.add_argument("--width", type=int_in(1, MAX_COLUMNS), default=40, help="chars per context")
    p.add_argument("--sign", default="positive", choices=["positive", "negative", "absolute"])
    p.set_defaults(func=cmd_contexts)


def cmd_contexts(args) -> None:
    from probe.recording import Recording
    from probe.search import top_contexts

    table = top_contexts(Recording.open(args.recording), args.unit, args.k, args.width, args.sign)
    if len(table) == 0:
        print(f"{args.unit} is never {args.sign} on this text (try --sign absolute)")
        return
    visible = str.maketrans({"\n": "⏎", "\t": "→", "\r": "␍"})
    lead = int((table["position"] - table["start"]).max())  # rows are aligned on the peak char
    print(f"{'position':>9} {'value':>8}  " + "context".ljust(lead)[:lead] + "▼")
    for row in table.itertuples():
        pad = " " * (lead - (row.position - row.start))
        print(f"{row.position:>9} {row.value:>8.3f}  {pad}{row.context.translate(visible)}")


# --- export --------------------------------------------------------------------------------
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
        "--unit",
        action="append",
        required=True,
        help="LAYER:KIND:INDEX, or loss (the per-char loss in bits); repeat for stacked panels",
    )
    p.add_argument(
        "--range",
        type=char_range,
        metavar="START:STOP",
        help="characters to show (default: the first 1000)",
    )
    p.add_argument(
        "--width", type=int_in(1, MAX_COLUMNS), help="columns to wrap at (default 80; --top: 40)"
    )
    p.add_argument(
        "--colormap",
        default="rdbu",
        choices=["rdbu", "puor", "paper", "gray"],
        help="rdbu (colorblind-safe, default), puor, paper (the paper's red/blue)",
    )
    p.add_argument(
        "--limit",
        type=positive_float,
        help="top of the color range: ±LIMIT, or 0..LIMIT for gates and loss (default: a "
        "unit's max |value| over the whole recording, 1 for gates, the loss's 99th percentile)",
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
        "--top",
        type=int_in(1, MAX_CONTEXTS),
        metavar="K",
        help="a sheet of the unit's K strongest contexts",
    )
    p.add_argument(
        "--sign",
        choices=["positive", "negative", "absolute"],
        help="with --top: which contexts are strongest (default: positive)",
    )
    p.add_argument("--title")
    p.add_argument("--font-size", type=float_in(2, 72), default=9.0, help="points (default 9)")
    p.add_argument("--dpi", type=int_in(10, 1200), default=300, help="PNG resolution (default 300)")
    p.add_argument("--out", required=True, help="file to write: .pdf .svg .png .tex or .html")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_export)


LONG_EXPORT_CHARS = 5_000  # a range this long takes seconds to draw: say so first


def cmd_export(args) -> None:
    from probe.export import check_range, format_of, text_heatmap, top_contexts_sheet
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
    if not args.top and args.sign:
        raise ProbeError("--sign goes with --top (a sheet of the strongest contexts)")
    if args.top:
        if len(args.unit) > 1:
            raise ProbeError("--top makes a sheet for one unit; give a single --unit")
        if args.range:
            raise ProbeError("--top picks its contexts from the whole text; drop --range")
        if args.unit[0] == "loss":
            raise ProbeError("--top makes a sheet of a unit's strongest contexts, not of the loss")
        sign = args.sign or "positive"
        figure = top_contexts_sheet(
            recording, args.unit[0], args.top, args.width or 40, sign, **style
        )
    else:
        start, stop = check_range(recording, *(args.range or (0, min(1000, recording.chars))))
        if stop - start >= LONG_EXPORT_CHARS:  # seconds of silence otherwise
            print(f"drawing {stop - start:,} chars to {out}…", file=sys.stderr, flush=True)
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
    source.add_argument(
        "--corpus", help="a corpus spec, split as the checkpoints were trained on it (see --split)"
    )
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--max-lag", type=positive_int, default=200, help="largest lag K in characters")
    p.add_argument("--positions", type=positive_int, default=256, help="positions averaged over")
    p.add_argument("--warmup", type=int, default=100, help="chars read before each window")
    p.add_argument("--batch", type=positive_int, default=64, help="positions per backward pass")
    p.add_argument("--layer", type=positive_int, help="layer to plot and print (default: top)")
    p.add_argument("--normalise", action="store_true", help="divide by the lag-0 norm")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", required=True, help="folder for decay.csv, spectral.csv, decay.html")
    p.add_argument("--force", action="store_true", help="overwrite those files if they exist")
    p.set_defaults(func=cmd_gradients)


GRADIENT_FILES = ("decay.csv", "spectral.csv", "decay.html")


def cmd_gradients(args) -> None:
    import pandas as pd

    from probe.checkpoint import load_checkpoint
    from probe.gradients import checkpoint_label, gradient_decay, run_snapshots, spectral_radii
    from probe.plots import decay_figure

    out = check_out_folder(args.out, GRADIENT_FILES, args.force)
    paths = [s for c in args.checkpoint for s in (run_snapshots(c) if args.snapshots else [c])]
    text, source = load_text(args, paths)
    if len({Path(path).resolve() for path in paths}) < len(paths):
        raise ProbeError("a checkpoint is given twice")
    checkpoints, labels = [], set()
    for path in paths:  # every check before the first (long) computation
        checkpoint = load_checkpoint(path, args.device)
        label = checkpoint_label(checkpoint)
        if label in labels:  # the curves and the table are keyed by it
            raise ProbeError(f"{path}: a checkpoint named {label!r} is already given")
        labels.add(label)
        layers = checkpoint.model.config.layers
        if args.layer and args.layer > layers:
            raise ProbeError(f"--layer {args.layer}: {label} has {layers} layer(s)")
        checkpoints.append((checkpoint, label))
    decays, radii = [], []
    for checkpoint, label in checkpoints:
        sizes = (args.max_lag, args.positions, args.warmup, args.batch)
        decays.append(gradient_decay(checkpoint, text, *sizes, label, progress=True))
        radii.append(spectral_radii(checkpoint.model).assign(model=label))
    decay, spectral = pd.concat(decays, ignore_index=True), pd.concat(radii, ignore_index=True)
    figure = decay_figure(decay, normalise=args.normalise, layer=args.layer)
    write_files(
        out,
        {
            "decay.csv": lambda path: decay.to_csv(path, index=False),
            "spectral.csv": lambda path: spectral.to_csv(path, index=False),
            "decay.html": lambda path: figure.write_html(path, include_plotlyjs=True),
        },
    )
    column = "ratio_mean" if args.normalise else "mean"
    lags = sorted({k for k in (0, 10, 50, 100, 200) if k <= args.max_lag} | {args.max_lag})
    print(
        f"gradient norm ({'relative to lag 0' if args.normalise else 'absolute'}, mean over "
        f"{decay['positions'].max()} positions of {source}) at lag:"
    )
    print(f"{'model':32s} {'layer':>5s} {'state':6s} " + " ".join(f"{k:>9d}" for k in lags))
    for (model, layer, state), rows in decay.groupby(["model", "layer", "state"], sort=False):
        top = args.layer or decay.loc[decay["model"] == model, "layer"].max()
        if layer == top:
            values = rows.set_index("lag")[column]
            print(
                f"{model:32s} {layer:5d} {state:6s} " + " ".join(f"{values[k]:9.2e}" for k in lags)
            )
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
    p.add_argument("--force", action="store_true", help="overwrite those files if they exist")
    p.add_argument("--top", type=positive_int, default=10, help="integrator gates to list")
    p.set_defaults(func=cmd_saturation)


def cmd_saturation(args) -> None:
    from probe.plots import saturation_figure
    from probe.recording import Recording
    from probe.saturation import gate_saturation, integrators, saturation_summary

    recording = Recording.open(args.recording)
    out = check_out_folder(args.out, ("saturation.csv", "saturation.html"), args.force)
    saturation = gate_saturation(recording, progress=True)
    print(
        f"gate saturation over {recording.chars:,} chars of {recording.name} "
        "(fraction of chars < 0.1 / > 0.9, units mostly so):"
    )
    print(saturation_summary(saturation).to_string(index=False, float_format="{:.3f}".format))
    top = integrators(saturation, recording.config["cell"], args.top)
    print(
        f"most right-saturated {top['kind'].iloc[0] if len(top) else 'forget'} units "
        "(candidate integrators; color the text by one in the dashboard or `probe export`):"
    )
    for row in top.itertuples():
        print(f"  {row.unit:24s} open {row.right:6.1%}  shut {row.left:6.1%}  mean {row.mean:.3f}")
    if out:
        figure = saturation_figure(saturation)
        write_files(
            out,
            {
                "saturation.csv": lambda path: saturation.to_csv(path, index=False),
                "saturation.html": lambda path: figure.write_html(path, include_plotlyjs=True),
            },
        )
        print(f"wrote {out}/saturation.csv, saturation.html")
