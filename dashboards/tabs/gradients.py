"""Gradient-decay tab: ||dL_t/dstate_{t-k}|| against the lag k for every recording served,
trained and random-init side by side. Computed on demand (a few seconds to minutes on CPU),
then cached next to each recording, so the next launch draws at once."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashboards.context import Context
from dashboards.plot_export import export_controls, export_style, register_export
from probe.errors import ProbeError
from probe.gradients import decay_cache, recording_decay
from probe.plots import decay_figure, placeholder

TITLE = "Gradient decay"
POSITIONS = 128
MAX_LAG = 1000
TINY = float(np.finfo(np.float32).tiny)  # gradients are float32


def layout(context: Context) -> html.Div:
    return html.Div(
        [
            html.P(
                "How far back does the loss reach? Norm of the gradient of the next-char loss "
                "w.r.t. the state k characters earlier, relative to k = 0, for each model and "
                "its random-init twin (top layer; dashed: LSTM cell state). A curve ends where its "
                "gradient underflows float32 (< 1e-38): it has vanished.",
                className="hint",
            ),
            html.Div(
                className="row",
                children=[
                    "max lag",
                    dcc.Input(id="gradients-lag", type="number", step=1, value=200),
                    html.Button("Compute", id="gradients-run"),
                    # What the computation is doing, polled while it runs (minutes for a big model)
                    html.Span(id="gradients-progress", className="hint"),
                    dcc.Interval(id="gradients-poll", interval=1000, disabled=True),
                    export_controls("gradients"),
                ],
            ),
            dcc.Store(id="gradients-shown"),  # the max lag of the curves drawn in this page
            dcc.Loading(
                [
                    html.Div(id="gradients-message", className="message"),
                    # The graph comes with the first curves: a graph in the page, even hidden,
                    # loads plotly.js (~0.3 s of a warm page load, ~1.5 s of a cold one).
                    html.Div(
                        "press Compute (seconds to minutes on a CPU; cached afterwards)",
                        id="gradients-holder",
                        className="hint",
                    ),
                ]
            ),
        ]
    )


def vanished(frame: pd.DataFrame) -> pd.DataFrame:
    """The curves without the lags where the mean gradient underflowed float32: below ~1e-38
    it is denormal noise, then 0, which a log axis draws as a plunge or a flat floor. Band
    edges that underflowed sit at that floor."""
    frame = frame[frame["mean"] >= TINY].copy()
    scale = frame["ratio_mean"] / frame["mean"]
    for edge in ("p10", "p90"):
        frame[f"ratio_{edge}"] = np.maximum(frame[f"ratio_{edge}"], TINY * scale)
        frame[edge] = np.maximum(frame[edge], TINY)
    return frame


def gradients_panel(
    context: Context, max_lag: int, positions: int = POSITIONS
) -> tuple[go.Figure, str]:
    """Decay curves of every served recording's model (cached on disk), and any problems."""
    frames, problems, started = [], [], time.monotonic()

    def report(line: str) -> None:
        seconds = time.monotonic() - started
        context.status["gradients"] = f"{recording.name}: {line} · {seconds:.0f} s"

    for recording in context.recordings:
        try:
            checkpoint = context.checkpoint_of(recording)
            frame = recording_decay(recording, int(max_lag), positions, checkpoint, progress=report)
            frames.append(frame.assign(recording=recording.name))
        except ProbeError as error:  # worded for the command line: say it as the page does
            said = str(error).replace("--max-lag", "max lag")
            said = said.replace(
                "with --checkpoint", "by serving with `probe dashboard --checkpoint`"
            )
            problems.append(f"{recording.name}: {said}")
    if not frames:
        return placeholder("no curves"), "; ".join(problems) or "no recordings"
    frame = pd.concat(frames, ignore_index=True)
    # Curves are named after the model: one model recorded on two texts would draw as one
    # zigzag line, so then every curve also names its recording.
    if frame.groupby("model")["recording"].nunique().max() > 1:
        frame["model"] = frame["model"] + " on " + frame["recording"]
    figure = decay_figure(vanished(frame), normalise=True)
    figure.update_layout(title_text="Gradient-norm decay (band: p10–p90)")  # fits 800 px
    return legend_below(figure), "; ".join(problems)


def all_cached(context: Context, max_lag) -> bool:
    """Whether every served recording has its curves for `max_lag` cached (drawn in a blink)."""
    return isinstance(max_lag, int) and all(
        decay_cache(recording, max_lag, POSITIONS).is_file() for recording in context.recordings
    )


def shown_figure(context: Context, max_lag: int | None) -> tuple[go.Figure, str]:
    """The curves drawn for `max_lag` (read back from the cache) and a file name, to export."""
    if max_lag is None:
        raise ProbeError("press Compute first: there are no curves to export")
    figure, _ = gradients_panel(context, max_lag)
    if not figure.data:
        raise ProbeError("there are no curves to export")
    return figure, f"gradient-decay_K{max_lag}"


def legend_below(figure: go.Figure, plot_height: int = 300) -> go.Figure:
    """The legend under the plot (on the right it took half a narrow window's plot width),
    the figure as much taller as it may need: one line an entry where entries cannot share."""
    entries = sum(1 for trace in figure.data if trace.showlegend is not False)
    top, gap = figure.layout.margin.t or 60, 70  # the gap holds tick labels and axis title
    bottom = gap + 30 * entries
    return figure.update_layout(
        height=top + plot_height + bottom,
        margin={"b": bottom},
        legend={"orientation": "h", "xanchor": "left", "x": 0, "yanchor": "top",
                "y": -gap / plot_height},
    )  # fmt: skip


def register(app, context: Context) -> None:
    @app.callback(
        Output("gradients-holder", "children"),
        Output("gradients-message", "children"),
        Output("gradients-shown", "data"),
        Output("gradients-export", "style"),
        Input("gradients-run", "n_clicks"),
        Input("tabs", "value"),
        State("gradients-lag", "value"),
        State("gradients-shown", "data"),
        prevent_initial_call=True,
        running=[  # the first computation takes a while: say so, and take no second click
            (Output("gradients-run", "disabled"), True, False),
            (Output("gradients-run", "children"), "computing…", "Compute"),
            (Output("gradients-poll", "disabled"), False, True),
        ],
    )
    def compute(_, tab, max_lag, shown):
        if ctx.triggered_id == "tabs":  # opened: draw at once what every cache holds already
            if tab != "gradients" or shown is not None or not all_cached(context, max_lag):
                return no_update, no_update, no_update, no_update
        elif not isinstance(max_lag, int) or not 1 <= max_lag <= MAX_LAG:  # keep what is drawn
            said = f"max lag must be a whole number in 1..{MAX_LAG}"
            return no_update, said, no_update, no_update
        context.status["gradients"] = "starting…"
        figure, message = gradients_panel(context, max_lag)
        context.status["gradients"] = ""
        plot = dcc.Graph(id="gradients-plot", figure=figure)
        return plot, message, max_lag, export_style(figure)

    register_export(
        app, "gradients", State("gradients-shown", "data"), lambda lag: shown_figure(context, lag)
    )

    @app.callback(
        Output("gradients-progress", "children"),
        Input("gradients-poll", "n_intervals"),
        Input("gradients-poll", "disabled"),
    )
    def show_progress(_, stopped):
        return "" if stopped else context.status.get("gradients", "")
