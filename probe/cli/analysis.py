"""Subcommands that analyse recordings: search, contexts, export."""

from __future__ import annotations

import sys
from pathlib import Path

from probe.cli.args import (
    char_range,
    check_output_file,
    command,
    float_in,
    int_in,
    positive_float,
    positive_int,
    write_output,
)
from probe.errors import ProbeError
from probe.figure_files import MAX_COLUMNS, MAX_CONTEXTS
from probe.units import SIGNS


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
    from probe.features import get_feature
    from probe.recording import Recording
    from probe.search import search, selected_arrays

    recording = Recording.open(args.recording)
    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds is not None else None
    selected_arrays(recording, kinds)  # the inputs first: kinds, feature names
    for name in args.feature:
        get_feature(name)
    check_output_file(args.out, args.force)  # then the output, before a search of minutes
    table = search(
        recording, args.feature, kinds, args.top, not args.no_nulls, progress=sys.stderr.isatty()
    )
    table = table[SEARCH_COLUMNS]  # features constant on the text are left out, with a warning
    if args.format == "table":
        output = format_search_table(table)
    else:
        output = (table.to_csv(index=False) if args.format == "csv"
                  else table.to_json(orient="records", indent=1) + "\n")  # fmt: skip
    write_output(output, args.out, args.force)


SEARCH_COLUMNS = "feature rank unit measure score r auroc null_init null_shift".split()


def format_search_table(table) -> str:
    """An aligned text table of search results and a note on what the columns mean."""
    output = table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
    return f"{output}\n{SEARCH_NOTE}\n"


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
    p.add_argument(
        "--sign",
        default="positive",
        choices=SIGNS,
        help="positive (default), negative, absolute, or unusual: farthest from the unit's "
        "median (for a gate that is mostly open: where it closes)",
    )
    p.set_defaults(func=cmd_contexts)


def cmd_contexts(args) -> None:
    from probe.layout import NEWLINE_MARK, TAB_MARK
    from probe.recording import Recording
    from probe.search import top_contexts

    table = top_contexts(Recording.open(args.recording), args.unit, args.k, args.width, args.sign)
    if len(table) == 0:
        print(f"{args.unit} is never {args.sign} on this text (try --sign absolute)")
        return
    visible = str.maketrans({"\n": NEWLINE_MARK, "\t": TAB_MARK, "\r": "␍"})  # as exports draw
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
        help="rdbu (colorblind-safe, default), puor, paper (the paper's red/blue), gray (white "
        "to black: best for gates and the loss, which start at 0)",
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
        choices=SIGNS,
        help="with --top: which contexts are strongest (default: positive; see contexts --help)",
    )
    p.add_argument("--title")
    p.add_argument("--font-size", type=float_in(2, 72), default=9.0, help="points (default 9)")
    p.add_argument("--dpi", type=int_in(10, 1200), default=300, help="PNG resolution (default 300)")
    p.add_argument("--out", required=True, help="file to write: .pdf .svg .png .tex or .html")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(func=cmd_export)


LONG_EXPORT_CHARS = 5_000  # a range this long takes seconds to draw: say so first


def cmd_export(args) -> None:
    from probe.export import text_heatmap, top_contexts_sheet
    from probe.recording import Recording

    recording = Recording.open(args.recording)
    span = check_export_inputs(recording, args)
    out = Path(args.out)
    check_figure_file(out, args.force)  # after the inputs, before any drawing
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
        sign = args.sign or "positive"
        figure = top_contexts_sheet(
            recording, args.unit[0], args.top, args.width or 40, sign, **style
        )
    else:
        start, stop = span
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


def check_export_inputs(recording, args) -> tuple[int, int] | None:
    """Fail on a bad flag, unit, feature or range before the output is looked at; the range
    of characters to draw (None for a --top sheet)."""
    from probe.export import LOSS, check_range, parse_units
    from probe.features import get_feature

    if not args.top and args.sign:
        raise ProbeError("--sign goes with --top (a sheet of the strongest contexts)")
    if args.top:
        if len(args.unit) > 1:
            raise ProbeError("--top makes a sheet for one unit; give a single --unit")
        if args.range:
            raise ProbeError("--top picks its contexts from the whole text; drop --range")
        if args.unit[0] == "loss":
            raise ProbeError("--top makes a sheet of a unit's strongest contexts, not of the loss")
    for unit in parse_units(args.unit):
        if unit != LOSS:
            recording.unit(unit, 0, 0)  # a layer, kind or index it does not have
    for name in args.feature or []:
        get_feature(name)
    if args.top:
        return None
    return check_range(recording, *(args.range or (0, min(1000, recording.chars))))


def check_figure_file(out: Path, force: bool) -> None:
    """A bad extension, a folder, or a file there without --force fails before any drawing."""
    from probe.figure_files import format_of

    format_of(out)
    check_output_file(str(out), force)
