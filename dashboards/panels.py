"""Side panels: feature search, brush-and-match, top contexts and the model card.

Every clickable result is a `goto` button whose id carries its target as "UNIT@POS" (either
part may be empty) and its place on the page (ids must be unique: one unit can top two
features' searches); the navigation callback in app.py handles them all the same way.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from dash import ALL, Input, Output, State, dcc, html, no_update

from dashboards.context import Context, View
from probe.colors import to_rgb
from probe.errors import ProbeError


def goto(rec: int, target: str, children, place: str, title: str = "", span=None) -> html.Button:
    """A result the user can click to jump to a unit and/or position ("UNIT@POS") of the
    recording it was found in (shown again if another is shown by then); with `span` (start,
    stop), probe.js marks those chars once the text is there."""
    marked = {"data-span": f"{span[0]}:{span[1]}"} if span else {}
    return html.Button(
        children,
        id={"type": "goto", "target": f"{rec}|{target}", "place": place},
        className="goto",
        title=title or f"show {target.rstrip('@')}",
        **marked,
    )


def shown_char(char: str) -> str:
    """A char as a snippet shows it: a newline or control char (a CR would break the line)
    as a mark, as the text view does."""
    if char == "\n":
        return "↵"
    return "·" if (ord(char) < 32 and char != "\t") or char == "\x7f" else char


def colored_snippet(text: str, values, color_range: tuple, cmap: str, peak: int) -> html.Span:
    """A snippet colored as the text view colors it, painted by snippets.js from its data-*
    attributes: one Dash component, where one per char kept the browser busy ~0.8 s after
    every page load and unit change (React and Dash's per-component work, not drawing)."""
    low, limit = color_range
    rgb = np.ascontiguousarray(to_rgb(values, limit, cmap, low), dtype=np.uint8)
    return html.Span(
        className="ctx-text",
        **{
            "data-text": "".join(shown_char(ch) for ch in text),
            "data-colors": rgb.tobytes().hex(),  # 6 hex digits a char
            "data-peak": str(peak),
        },
    )


def number(value: float, digits: int = 3) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


# --- feature search ------------------------------------------------------------------------
SEARCH_COLUMNS = ["feature", "unit", "score", "r", "auroc", "null_init", "null_shift"]
SEARCH_TITLES = {
    "score": "what ranks units: max(AUROC, 1 − AUROC) for binary features, |r| for the others",
    "null_init": "the best score of any unit of the random-init twin",
    "null_shift": "the best score against the feature circularly shifted",
}


def search_table(context: Context, view: View, top: int = 10) -> html.Table | html.Div:
    """Units best explained by the view's features (probe.search), one clickable row each."""
    from probe.search import search

    if not view.feature_names:
        return html.Div("pick features (or type a regex) to search units", className="hint")
    results: pd.DataFrame = search(context.recording(view.rec), view.feature_names, top=top)
    header = html.Tr([html.Th(c, title=SEARCH_TITLES.get(c, "")) for c in SEARCH_COLUMNS])
    rows = []
    for feature, group in results.groupby("feature", sort=False):
        rows += [search_row(view.rec, feature, row) for row in group.itertuples()]
    for feature in results.attrs["constant"]:  # left out of the search: nothing to rank
        empty = feature.startswith("re:") and context.feature(view.rec, feature)[0] == 0
        message = f"{'matches no char of' if empty else 'constant on'} this text: nothing to rank"
        rows.append(html.Tr([html.Td(feature), html.Td(message, colSpan=6, className="hint")]))
    name = context.recording(view.rec).name
    return html.Div(
        [
            html.Div(f"for {', '.join(view.feature_names)} on {name}", className="sub"),
            html.Table([html.Thead(header), html.Tbody(rows)], className="search-table"),
        ]
    )


def search_row(rec: int, feature: str, row) -> html.Tr:
    """One result; greyed where the score does not beat a null (chance-level tracking)."""
    nulls = [getattr(row, name, math.nan) for name in ("null_init", "null_shift")]
    beaten = [null for null in nulls if null is not None and row.score <= null]
    return html.Tr(
        className="result below-null" if beaten else "result",
        title="no better than a null: the random-init twin or the shifted feature"
        if beaten
        else "",
        children=[
            html.Td(feature),
            html.Td(goto(rec, f"{row.unit}@", row.unit, f"search-{feature}-{row.unit}")),
            *(html.Td(number(getattr(row, c, None))) for c in SEARCH_COLUMNS[2:]),
        ],
    )


# --- brush and match -----------------------------------------------------------------------
def brush_results(context: Context, view: View, start, stop, threshold, kinds, off_outside):
    """Units on across [start, stop) and the other spans where the same units are on."""
    from probe.search import match_spans, units_on_span

    recording = context.recording(view.rec)
    if start is None or stop is None or not 0 <= start < stop <= recording.chars:
        raise ProbeError(f"brush a span: 0 <= start < stop <= {recording.chars}")
    # The checkboxes list every served recording's kinds, greyed where this one has none (a GRU
    # has no cell); a box checked for another recording may still be on: use this one's.
    recorded = {kind for _, kind in recording.layer_kinds}
    if kinds and not recorded & set(kinds):
        raise ProbeError(f"{recording.name} records none of {', '.join(kinds)}: "
                         f"check one of {', '.join(sorted(recorded))}")  # fmt: skip
    units = units_on_span(
        recording,
        int(start),
        int(stop),
        float(threshold),
        [kind for kind in kinds if kind in recorded] if kinds else None,
        off_outside=int(bool(off_outside)) * 3,
    )
    if not units:
        return html.Div(f"no unit is above {threshold} across [{start}, {stop})", className="hint")
    matches = match_spans(
        recording, units, float(threshold), top=20, exclude=(int(start), int(stop))
    )
    unit_buttons = [
        goto(view.rec, f"{unit}@{start}", str(unit), f"brush-{unit}") for unit in units[:40]
    ]
    match_rows = [
        html.Li(
            goto(
                view.rec,
                f"@{row.start}",
                [
                    html.B(f"{row.start}–{row.stop}"),
                    f" {row.units_on:g} on · ",
                    html.Code(repr(row.text)[1:-1]),
                ],
                f"match-{number}",
                title=f"score {row.score:.3f}",
                span=(row.start, row.stop),
            )
        )
        for number, row in enumerate(matches.itertuples())
    ]
    return html.Div(
        [
            html.Div(f"{len(units)} unit(s) on across [{start}, {stop}):", className="sub"),
            html.Div(unit_buttons, className="unit-list"),
            html.Div(
                f"{len(match_rows)} matching span(s), best first (click one to show it, "
                "marked in purple):",
                className="sub",
            ),
            html.Ol(match_rows, className="match-list"),
        ]
    )


# --- top contexts --------------------------------------------------------------------------
def contexts_list(context: Context, view: View, k: int = 8, width: int = 40) -> html.Ol:
    """The unit's k strongest activations, each with `width` chars of context (3/4 of them
    before it: a state sums up what came before), colored, clickable."""
    from probe.search import top_contexts

    recording = context.recording(view.rec)
    color_range = context.color_range(view.rec, view.unit)
    items = []
    # As `n` finds strong activations: a state far from 0, a gate far from its median.
    sign = "absolute" if color_range[0] is None else "unusual"
    contexts = top_contexts(recording, view.unit, k=k, width=width, sign=sign)
    for number, row in enumerate(contexts.itertuples()):
        values = recording.unit(view.unit, int(row.start), int(row.stop))
        text = recording.text[int(row.start) : int(row.stop)]
        label = html.Span(f"#{row.position} {row.value:+.3f} ", className="ctx-label")
        peak = int(row.position - row.start)  # outlined, as the view's focus
        snippet = colored_snippet(text, values, color_range, view.cmap, peak)
        target = f"@{row.position}"
        items.append(html.Li(goto(view.rec, target, [label, snippet], f"context-{number}")))
    return html.Ol(items, className="contexts")


# --- model card ----------------------------------------------------------------------------
def model_card(context: Context, rec: int) -> html.Table:
    """Checkpoint and recording facts: cell, size, parameters, corpus, losses."""
    recording = context.recording(rec)
    info, config = recording.manifest.get("checkpoint", {}), recording.config

    def loss(value):
        return "–" if value is None else f"{value:.4f} nats · {value / math.log(2):.4f} bits/char"

    parameters = info.get("parameters")
    rows = {
        "recording": recording.name,
        "checkpoint": info.get("name") or info.get("path", "–"),
        "cell": f"{config['cell'].upper()} · {config['layers']} layers × {config['hidden']}",
        "parameters": f"{parameters:,}" if isinstance(parameters, int) else "–",
        "corpus": corpus_name(info.get("corpus")),
        "training step": info.get("step", "–"),
        "val loss": loss(info.get("val_loss")),
        "test loss": loss(info.get("test_loss")),
        "text": f"{recording.chars:,} chars · {recording.manifest.get('source') or '–'}",
        "unknown chars": f"{recording.manifest.get('unknown_chars', 0):,}",
        "random-init twin": "yes" if (recording.path / "init").is_dir() else "no",
    }
    if info.get("init_only"):
        rows["note"] = "random-init model (not trained)"
    if recording.manifest.get("inexact_streams"):  # recorded with too many --streams
        rows["inexact"] = (f"{recording.manifest['inexact_streams']} stream starts differ from "
                           "one sequential pass")  # fmt: skip
    return html.Table(
        [html.Tr([html.Th(k), html.Td(str(v))]) for k, v in rows.items()], className="model-card"
    )


def corpus_name(corpus) -> str:
    """The checkpoint's corpus: a name, or a dict with name and split fractions."""
    if isinstance(corpus, dict):
        split = "/".join(f"{100 * f:g}" for f in corpus.get("split", ()))
        return f"{corpus.get('name', '?')}" + (f" (split {split})" if split else "")
    return str(corpus) if corpus else "–"


def recorded_kinds(context: Context) -> list[list[str]]:
    """Each served recording's kinds (a GRU records no cell, an RNN no gates)."""
    return [sorted({kind for _, kind in r.layer_kinds}) for r in context.recordings]


def layout(context: Context) -> html.Div:
    kinds = sorted({kind for recorded in recorded_kinds(context) for kind in recorded})
    return html.Div(
        className="panels",
        children=[
            html.Section(
                className="panel",
                children=[
                    html.H3("Feature search"),
                    html.Button("search units", id="search-button"),
                    dcc.Store(id="search-for"),  # [rec, features] of the table shown
                    html.Div(id="search-stale", className="step-note"),
                    dcc.Loading(html.Div(id="search-results")),
                ],
            ),
            html.Section(
                className="panel",
                children=[
                    html.H3("Brush & match"),
                    html.Div(
                        className="row",
                        children=[
                            "span",
                            dcc.Input(id="brush-start", type="number", min=0, placeholder="start"),
                            dcc.Input(id="brush-stop", type="number", min=1, placeholder="stop"),
                            "threshold",
                            dcc.Input(id="brush-threshold", type="number", value=0.5, step=0.05),
                        ],
                    ),
                    dcc.Checklist(
                        id="brush-kinds",
                        options=[{"label": kind, "value": kind} for kind in kinds],
                        value=[k for k in kinds if k in ("cell", "hidden")] or kinds[:1],
                        inline=True,
                    ),
                    dcc.Checklist(
                        id="brush-off",
                        options=[{"label": "off just before/after", "value": 1}],
                        value=[],
                        inline=True,
                    ),
                    html.Div(
                        "Select text to brush it. A unit is on where its value is ≥ threshold "
                        "on every brushed char (as LSTMVis): hidden states lie in −1..1, gates "
                        "in 0..1, cells are unbounded.",
                        className="hint",
                    ),
                    html.Button("find units", id="brush-button"),
                    dcc.Loading(html.Div(id="brush-results")),
                ],
            ),
            html.Section(
                className="panel wide-panel",
                children=[
                    html.H3("Top contexts"),
                    dcc.Loading(html.Div(id="contexts")),
                ],
            ),
        ],
    )


def guarded(build, *args) -> object:
    """Run a panel builder; user errors and a missing search module become a message."""
    try:
        return build(*args)
    except ProbeError as error:
        return html.Div(str(error), className="message")
    except ImportError:
        return html.Div("feature search (probe.search) is not available", className="message")


def register(app, context: Context) -> None:
    by_recording = recorded_kinds(context)
    if any(kinds != by_recording[0] for kinds in by_recording):  # then grey out what is not here
        app.clientside_callback(
            """(view, options) => options.map(option => ({...option,
                disabled: !KINDS[view ? view.rec : 0].includes(option.value)}))""".replace(
                "KINDS", json.dumps(by_recording)
            ),
            Output("brush-kinds", "options"),
            Input("view", "data"),
            State("brush-kinds", "options"),
        )

    @app.callback(
        Output("search-results", "children"),
        Output("search-for", "data"),
        Input("search-button", "n_clicks"),
        State("view", "data"),
        prevent_initial_call=True,
    )
    def run_search(_clicks, view_data):
        view = View.from_json(view_data)
        return guarded(search_table, context, view), [view.rec, view.feature_names]

    app.clientside_callback(  # in the browser: a step changes the view, a round trip each
        """(view, _results, searched) => {
          if (!view || !searched) return null;
          const names = view.features.concat(view.regex ? ["re:" + view.regex] : []);
          if (JSON.stringify(searched) === JSON.stringify([view.rec, names])) return null;
          const what = searched[0] !== view.rec ? "recording shown" : "features";
          return "the " + what + " changed since this search: search again to update it";
        }""",
        Output("search-stale", "children"),
        Input("view", "data"),
        Input("search-results", "children"),
        State("search-for", "data"),
    )

    @app.callback(
        Output("brush-results", "children"),
        Input("brush-button", "n_clicks"),
        State("view", "data"),
        State("brush-start", "value"),
        State("brush-stop", "value"),
        State("brush-threshold", "value"),
        State("brush-kinds", "value"),
        State("brush-off", "value"),
        prevent_initial_call=True,
    )
    def run_brush(_clicks, view_data, start, stop, threshold, kinds, off):
        if threshold is None:
            return html.Div("set a threshold", className="message")
        view = View.from_json(view_data)
        return guarded(brush_results, context, view, start, stop, threshold, kinds, off)

    # "unit-key" changes only with recording, unit or colormap, not with every window move.
    @app.callback(Output("contexts", "children"), Input("unit-key", "data"), State("view", "data"))
    def update_contexts(_key, view_data):
        view = View.from_json(view_data)
        return guarded(contexts_list, context, view) if view.unit else no_update

    @app.callback(
        Output("model-card", "children"), Input("unit-key", "data"), State("view", "data")
    )
    def update_card(_key, view_data):
        return guarded(model_card, context, View.from_json(view_data).rec)


# The input every panel's results feed into; app.py's navigation callback listens to it.
GOTO = Input({"type": "goto", "target": ALL, "place": ALL}, "n_clicks")
