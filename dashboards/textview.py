"""The text view: a window of characters colored by one unit (or by per-char loss).

Coloring happens in the browser: the server sends only the window's text and values (a compact
list of rounded numbers) and `assets/probe.js` builds one span per character, interpolating the
same colormap anchors as `probe.colors` (sent from Python, the single source of truth). That
keeps a unit change or a window move to one small JSON round trip.
"""

from __future__ import annotations

import numpy as np
from dash import ClientsideFunction, Input, Output, State, dcc, html, no_update

from dashboards.context import Context, View, window_bounds
from dashboards.plot_export import file_safe
from probe.colors import anchor_colors, missing_position, upper
from probe.errors import ProbeError
from probe.export import TRACK_COLORS, track_color
from probe.features import get_feature
from probe.layout import TAB_STOP
from probe.units import Unit

EXPORT_FORMATS = ["png", "pdf", "svg", "tex", "html"]
# Tracks drawn under the text: as many as fit in the gap between lines (6 px; probe.js
# draws up to 3 as 2 px stripes, more as 1 px), each in a color of its own.
MAX_TRACKS = min(6, len(TRACK_COLORS))


def rounded(values: np.ndarray, digits: int = 4) -> list:
    """JSON-ready floats (None for NaN), rounded to keep the payload small."""
    values = np.round(np.asarray(values, np.float64), digits)
    return [None if np.isnan(v) else v for v in values.tolist()]


def window_payload(context: Context, view: View) -> dict:
    """What the browser needs to draw the window: text, values, color limit and feature tracks."""
    recording = context.recording(view.rec)
    start, stop = window_bounds(context, view)
    if view.color == "loss":
        values = context.loss_bits(view.rec)[start:stop]
        (low, limit), label = (0.0, context.loss_limit(view.rec)), "per-char loss (bits)"
    else:
        values = recording.unit(view.unit, start, stop)
        (low, limit), label = context.color_range(view.rec, view.unit), Unit.parse(view.unit).label
    features = ",".join(view.feature_names)
    colormap = upper(view.cmap) if view.color == "loss" else view.cmap
    tracks = []
    for number, name in enumerate(view.feature_names[:MAX_TRACKS]):
        feature = context.feature(view.rec, name)
        tracks.append(
            {
                "name": name,
                "binary": get_feature(name).binary,
                "color": track_color(number),  # as in the exports
                "values": rounded(feature[start:stop], 3),
            }
        )
    return {
        "key": f"{view.rec}|{view.color}|{view.cmap}|{view.unit}|{start}|{view.pos}|{features}",
        "layout": f"{view.rec}|{start}|{features}",  # same layout: the browser only recolors
        "start": start,
        "text": recording.text[start:stop],
        "values": rounded(values),
        "limit": float(limit),
        "low": -float(limit) if low is None else float(low),
        "label": label,
        "focus": view.pos,
        "tracks": tracks,
        "untracked": view.feature_names[MAX_TRACKS:],  # searched, not drawn
        "anchors": anchor_colors(colormap),
        "missing": missing_position(colormap),
        "view": view.to_json(),
    }


def export_bytes(context: Context, view: View, fmt: str) -> tuple[bytes, str]:
    """The current window as a paper figure from probe.export, and its file name."""
    try:
        from probe.export import LOSS, text_heatmap
    except ImportError:
        raise ProbeError("export is not available in this version of probe") from None
    start, stop = window_bounds(context, view)
    recording = context.recording(view.rec)
    features = view.feature_names or None
    unit = LOSS if view.color == "loss" else view.unit  # what the view is colored by
    figure = text_heatmap(recording, [unit], start, stop, colormap=view.cmap, features=features)
    name = f"{file_safe(recording.name)}_{unit.replace(':', '-')}_{start}-{stop}.{fmt}"
    return figure.to_bytes(fmt), name


def layout(context: Context) -> html.Div:
    """Navigation bar, legend and the (initially empty) text body that probe.js fills."""
    button = html.Button
    return html.Div(
        className="textview",
        children=[
            html.Div(
                className="nav",
                children=[
                    button("◀ window", id="prev-window", title="previous window"),
                    button("◀ strong", id="prev-strong", title="previous strong activation (p)"),
                    dcc.Input(  # no min: the browser would drop -5 unsaid; the view clamps it
                        id="jump",
                        type="number",
                        placeholder="go to char",
                        debounce=True,
                        className="jump",
                    ),
                    button("strong ▶", id="next-strong", title="next strong activation (n)"),
                    button("window ▶", id="next-window", title="next window"),
                    html.Div(
                        dcc.Slider(
                            id="pos-slider",
                            min=0,
                            max=1,
                            step=1,
                            value=0,
                            marks=None,
                            updatemode="mouseup",
                            tooltip={"placement": "bottom"},
                            allow_direct_input=False,  # "go to char" is the number box
                        ),
                        className="slider",
                    ),
                    html.Span(
                        className="export",
                        children=[
                            dcc.Dropdown(
                                id="export-format",
                                options=EXPORT_FORMATS,
                                value="png",
                                clearable=False,
                                searchable=False,
                            ),
                            button(
                                "export",
                                id="export-button",
                                title="download this window as a figure",
                            ),
                            dcc.Download(id="export-download"),
                        ],
                    ),
                ],
            ),
            html.Div(id="export-message", className="message"),
            html.Div(id="legend", className="legend"),
            html.Div(id="step-note", className="step-note"),  # probe.js: what a step could not do
            # Tabs to the tab stops figures and the indent feature count (the CSS default is 8).
            html.Pre(id="text-body", className="text-body", style={"tabSize": TAB_STOP}),
            dcc.Store(id="window-payload"),
            dcc.Store(id="render-done"),
            dcc.Store(id="brush-drawn"),
        ],
    )


def register(app, context: Context) -> None:
    """The payload itself comes from app.py's navigation callback (one round trip per step)."""
    app.clientside_callback(
        ClientsideFunction(namespace="probe", function_name="render"),
        Output("render-done", "data"),
        Input("window-payload", "data"),
    )
    app.clientside_callback(  # the brushed span stays marked in the text (probe.js)
        ClientsideFunction(namespace="probe", function_name="setBrush"),
        Output("brush-drawn", "data"),
        Input("brush-start", "value"),
        Input("brush-stop", "value"),
    )

    @app.callback(
        Output("export-download", "data"),
        Output("export-message", "children"),
        Input("export-button", "n_clicks"),
        State("export-format", "value"),
        State("view", "data"),
        prevent_initial_call=True,
        # A PNG of a window takes seconds: the button says so and waits.
        running=[
            (Output("export-button", "disabled"), True, False),
            (Output("export-button", "children"), "exporting…", "export"),
        ],
    )
    def export(_clicks, fmt, view_data):
        try:
            content, name = export_bytes(context, View.from_json(view_data), fmt)
        except ProbeError as error:
            return no_update, str(error)
        return dcc.send_bytes(content, name), f"exported {name}"
