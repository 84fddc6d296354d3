"""Gradient-decay tab: ||dL_t/dstate_{t-k}|| against the lag k for every recording served,
trained and random-init side by side. Computed on demand (a few seconds to minutes on CPU),
then cached next to each recording, so the next launch draws at once."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update

from dashboards.context import Context
from probe.errors import ProbeError
from probe.gradients import recording_decay
from probe.plots import decay_figure, placeholder

TITLE = "Gradient decay"
POSITIONS = 128
MAX_LAG = 1000


def layout(context: Context) -> html.Div:
    return html.Div(
        [
            html.P(
                "How far back does the loss reach? Norm of the gradient of the next-char loss "
                "w.r.t. the state k characters earlier, relative to k = 0, for each model and "
                "its random-init twin (top layer; dashed: LSTM cell state).",
                className="hint",
            ),
            html.Div(
                className="row",
                children=[
                    "max lag",
                    dcc.Input(id="gradients-lag", type="number", step=1, value=200),
                    html.Button("Compute", id="gradients-run"),
                ],
            ),
            dcc.Loading(
                [
                    html.Div(id="gradients-message", className="message"),
                    dcc.Graph(
                        id="gradients-plot",
                        figure=placeholder("press Compute (seconds to minutes on a CPU)"),
                    ),
                ]
            ),
        ]
    )


def gradients_panel(
    context: Context, max_lag: int, positions: int = POSITIONS
) -> tuple[go.Figure, str]:
    """Decay curves of every served recording's model (cached on disk), and any problems."""
    frames, problems = [], []
    for recording in context.recordings:
        try:
            frames.append(recording_decay(recording, int(max_lag), positions))
        except ProbeError as error:
            problems.append(f"{recording.name}: {error}")
    if not frames:
        return placeholder("no curves"), "; ".join(problems) or "no recordings"
    return decay_figure(pd.concat(frames, ignore_index=True), normalise=True), "; ".join(problems)


def register(app, context: Context) -> None:
    @app.callback(
        Output("gradients-plot", "figure"),
        Output("gradients-message", "children"),
        Input("gradients-run", "n_clicks"),
        State("gradients-lag", "value"),
        prevent_initial_call=True,
        running=[  # the first computation takes a while: say so, and take no second click
            (Output("gradients-run", "disabled"), True, False),
            (Output("gradients-run", "children"), "computing…", "Compute"),
        ],
    )
    def compute(_, max_lag):
        if not isinstance(max_lag, int) or not 1 <= max_lag <= MAX_LAG:  # keep what is drawn
            return no_update, f"max lag must be a whole number in 1..{MAX_LAG}"
        return gradients_panel(context, max_lag)
