"""Gate saturation tab: the paper's left/right-saturation scatter for the current recording,
and the most right-saturated forget (LSTM) or update (GRU) gates as buttons that show them."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update

from dashboards.context import Context, View
from dashboards.panels import goto
from dashboards.plot_export import export_controls, export_style, file_safe, register_export
from dashboards.tabs.gradients import legend_below
from probe.errors import ProbeError
from probe.plots import placeholder, saturation_figure
from probe.saturation import integrators, recording_saturation

TITLE = "Gate saturation"
TOP = 12
# The scatter is made when the tab is first opened, not with the page: a graph in the page,
# even hidden, loads and starts plotly.js (~0.3 s of a warm page load, ~1.5 s of a cold one).
# A pattern id, so app.py can listen for its clicks before it exists.
PLOT = {"type": "saturation-plot", "place": "tab"}


def layout(context: Context) -> html.Div:
    return html.Div(
        [
            html.P(
                "Each point is one gate unit: how often it is nearly shut (< 0.1) or nearly "
                "open (> 0.9). Forget gates open almost always carry their cell far: candidate "
                "long-term integrators. Click a point to color the text by it.",
                className="hint",
            ),
            html.Div(export_controls("saturation"), className="row"),
            dcc.Store(id="saturation-shown"),  # the recording drawn in this page, per browser tab
            dcc.Loading(html.Div("computing…", id="saturation-holder", className="hint")),
            html.Div(id="saturation-list"),
        ]
    )


def saturation_panel(context: Context, rec: int) -> tuple[go.Figure, list]:
    """(scatter, integrator buttons) for one recording; a gate-less one gives a message."""
    recording = context.recording(rec)
    try:
        table = recording_saturation(recording)
    except ProbeError as error:
        return placeholder("no gates to plot"), [html.Div(str(error), className="hint")]
    top = integrators(table, recording.config["cell"], TOP)
    buttons = [
        goto(
            rec,
            f"{row.unit}@",
            f"{row.unit} open {row.right:.0%}",
            f"saturation-{row.unit}",
            f"color the text by {row.unit}",
        )
        for row in top.itertuples()
    ]
    kind = top["kind"].iloc[0].replace("_", " ") if len(top) else "gate"
    heading = html.Div(
        f"most often open {kind}s (click to color the text by one):", className="sub"
    )
    figure = legend_below(saturation_figure(table))
    return figure, [heading, html.Div(buttons, className="unit-list")]


def shown_figure(context: Context, rec: int | None) -> tuple[go.Figure, str]:
    """The scatter of recording `rec` (read back from the cache) and a file name, to export."""
    if rec is None:
        raise ProbeError("no scatter is drawn yet: there is nothing to export")
    recording = context.recording(rec)
    figure = legend_below(saturation_figure(recording_saturation(recording)))
    return figure, f"{file_safe(recording.name)}_saturation"


def register(app, context: Context) -> None:
    # Drawn when the tab is opened and again only for another recording (the cache on disk
    # makes recomputing cheap; this skips resending). What a page shows is that page's state.
    @app.callback(
        Output("saturation-holder", "children"),
        Output("saturation-list", "children"),
        Output("saturation-shown", "data"),
        Output("saturation-export", "style"),
        Input("tabs", "value"),
        Input("view", "data"),
        State("saturation-shown", "data"),
    )
    def show(tab, data, shown):
        rec = View.from_json(data).rec
        if tab != "saturation" or shown == rec:
            return no_update, no_update, no_update, no_update
        figure, children = saturation_panel(context, rec)
        return dcc.Graph(id=PLOT, figure=figure), children, rec, export_style(figure)

    register_export(
        app, "saturation", State("saturation-shown", "data"), lambda rec: shown_figure(context, rec)
    )
