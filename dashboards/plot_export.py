"""An export button for a tab's plot, as the text view has for its window: the plot shown,
redrawn with matplotlib by probe.export's export_plot (no browser needed) as png, pdf or svg."""

from __future__ import annotations

import re
from collections.abc import Callable

import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update

from probe.errors import ProbeError
from probe.export import export_plot

PLOT_FORMATS = ["png", "pdf", "svg"]  # .tex and .html are text figures': a plot has no text


def file_safe(name: str) -> str:
    """A recording's name as part of a file name."""
    return re.sub(r"[^\w.-]+", "-", name)


def export_controls(prefix: str) -> html.Span:
    """Format, button, download and message, with ids `{prefix}-export-...`; hidden (id
    `{prefix}-export`) until the tab draws a plot: see `export_style`."""
    return html.Span(
        id=f"{prefix}-export",
        className="export",
        style=export_style(go.Figure()),
        children=[
            dcc.Dropdown(
                id=f"{prefix}-export-format",
                options=PLOT_FORMATS,
                value="pdf",
                clearable=False,
                searchable=False,
            ),
            html.Button(
                "export", id=f"{prefix}-export-button", title="download this plot as a figure"
            ),
            dcc.Download(id=f"{prefix}-export-download"),
            html.Span(id=f"{prefix}-export-message", className="message"),
        ],
    )


def export_style(figure: go.Figure) -> dict:
    """The export controls' style next to a figure: shown where it plots something."""
    return {} if figure.data else {"display": "none"}


def register_export(
    app, prefix: str, shown: State, figure_of: Callable[[object], tuple[go.Figure, str]]
) -> None:
    """Export what `figure_of(shown)` draws, (figure, file name without extension); it raises
    a ProbeError, said next to the button, where nothing is drawn to export."""
    button = f"{prefix}-export-button"

    @app.callback(
        Output(f"{prefix}-export-download", "data"),
        Output(f"{prefix}-export-message", "children"),
        Input(button, "n_clicks"),
        State(f"{prefix}-export-format", "value"),
        shown,
        prevent_initial_call=True,
        running=[  # a PNG takes a second or two: the button says so and waits
            (Output(button, "disabled"), True, False),
            (Output(button, "children"), "exporting…", "export"),
        ],
    )
    def export(_clicks, fmt, drawn):
        try:
            figure, stem = figure_of(drawn)
            content = export_plot(figure, fmt)
        except ProbeError as error:
            return no_update, str(error)
        return dcc.send_bytes(content, f"{stem}.{fmt}"), f"exported {stem}.{fmt}"
