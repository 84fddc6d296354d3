"""Plotly figures shared by the dashboard tabs and the exports: one look everywhere.

Figures are plain and paper-like (white template, readable fonts, axis titles with units),
built only from scatter/bar traces and line shapes so `probe.plotly_static` can redraw them
for PDF/SVG export.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from probe.errors import ProbeError

PALETTE = qualitative.Safe  # colorblind-safe, one color per model / gate kind
FONT = {"family": "DejaVu Sans, Arial, sans-serif", "size": 14}
STATE_DASH = {"hidden": "solid", "cell": "dash"}
# search_figure's sizes in CSS pixels: a bar, a panel at least, the gap between panels (x tick
# labels, axis title, the next panel's title), a unit name's character at FONT's size, and the
# figure at least (its title and the first panel's apart).
BAR_PX, MIN_PANEL_PX, PANEL_GAP_PX, LABEL_CHAR_PX, MIN_HEIGHT_PX = 22, 110, 95, 9, 380


def check_table(table: pd.DataFrame, columns: str, made_by: str) -> None:
    """A ProbeError, not a KeyError deep in the figure, for a table other than the one it plots."""
    missing = [column for column in columns.split() if column not in table.columns]
    if missing:
        raise ProbeError(
            f"this figure plots a table made by {made_by}; the one given has no "
            f"{', '.join(missing)} column"
        )


def paper_layout(figure: go.Figure, title: str, height: int = 420) -> go.Figure:
    figure.update_layout(
        template="plotly_white",
        font=FONT,
        title={"text": title, "x": 0.02},
        height=height,
        margin={"l": 70, "r": 20, "t": 60, "b": 60},
        legend={"bgcolor": "rgba(255,255,255,0.8)"},
    )
    return figure


def placeholder(message: str, height: int = 160) -> go.Figure:
    """No axes, only a line of text: what an empty plot shows until there is something to plot."""
    figure = go.Figure()
    figure.update_layout(
        template="plotly_white",
        font=FONT,
        height=height,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[{"text": message, "showarrow": False, "font": {"color": "#777"}}],
    )
    return figure


def rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def as_hex(color: str) -> str:
    """Plotly's qualitative palettes mix 'rgb(r,g,b)' and '#hex'; return '#hex'."""
    if color.startswith("#"):
        return color
    r, g, b = (int(part) for part in color[color.index("(") + 1 : -1].split(","))
    return f"#{r:02x}{g:02x}{b:02x}"


def decay_figure(
    data: pd.DataFrame | list[tuple[str, pd.DataFrame]],
    normalise: bool = True,
    log_y: bool = True,
    layer: int | None = None,
    band: bool = True,
) -> go.Figure:
    """Gradient norm against lag, one color per model, cell state dashed, p10-p90 band shaded.

    `data` is a `gradient_decay` DataFrame (its `model` column names the curves) or a list of
    (label, DataFrame) to overlay. `layer` defaults to each model's top layer.
    """
    frames = (
        [frame.assign(model=label) for label, frame in data] if isinstance(data, list) else [data]
    )
    frame = pd.concat(frames, ignore_index=True)
    check_table(frame, "model layer state lag mean p10 p90 ratio_mean", "gradient_decay")
    if frame.empty:
        raise ProbeError("no gradient-decay rows to plot")
    prefix = "ratio_" if normalise else ""
    figure = go.Figure()
    for number, (model, rows) in enumerate(frame.groupby("model", sort=False)):
        color = as_hex(PALETTE[number % len(PALETTE)])
        chosen = rows["layer"].max() if layer is None else layer
        rows = rows[rows["layer"] == chosen]
        if rows.empty:
            raise ProbeError(f"{model} has no layer {layer}")
        for state, curve in rows.groupby("state", sort=False):
            name = f"{model} · layer {chosen} {state}"
            if band:
                figure.add_trace(
                    go.Scatter(
                        x=list(curve["lag"]) + list(curve["lag"])[::-1],
                        y=list(curve[prefix + "p90"]) + list(curve[prefix + "p10"])[::-1],
                        fill="toself",
                        fillcolor=rgba(color, 0.15),
                        line={"width": 0},
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=name,
                    )
                )
            figure.add_trace(
                go.Scatter(
                    x=curve["lag"],
                    y=curve[prefix + "mean"],
                    mode="lines",
                    name=name,
                    legendgroup=name,
                    line={"color": color, "width": 2, "dash": STATE_DASH.get(state, "dot")},
                    hovertemplate=f"{name}<br>lag %{{x}}<br>%{{y:.3g}}<extra></extra>",
                )
            )
    what = "‖∂L<sub>t</sub>/∂state<sub>t−k</sub>‖"
    what += " / ‖∂L<sub>t</sub>/∂state<sub>t</sub>‖" if normalise else ""
    paper_layout(figure, "Gradient-norm decay (mean; band: 10th–90th percentile)")
    figure.update_xaxes(title_text="lag k (characters)")
    figure.update_yaxes(title_text=what, type="log" if log_y else "linear", exponentformat="power")
    return figure


def saturation_figure(saturation: pd.DataFrame, layer: int | None = None) -> go.Figure:
    """Fraction left-saturated (< 0.1) vs right-saturated (> 0.9) per gate unit, one subplot per
    layer as in Karpathy et al. (2015) Fig. 3; the line left + right = 1 bounds every point."""
    check_table(saturation, "unit layer kind left right", "gate_saturation")
    if layer is not None:
        saturation = saturation[saturation["layer"] == layer]
    if saturation.empty:
        raise ProbeError(
            "no gate units to plot" + (f" in layer {layer}" if layer is not None else "")
        )
    layers = sorted(saturation["layer"].unique())
    kinds = list(dict.fromkeys(saturation["kind"]))
    figure = make_subplots(
        rows=1,
        cols=len(layers),
        subplot_titles=[f"layer {n}" for n in layers],
        shared_yaxes=True,
        horizontal_spacing=0.06,
    )
    for column, number in enumerate(layers, start=1):
        for k, kind in enumerate(kinds):
            rows = saturation[(saturation["layer"] == number) & (saturation["kind"] == kind)]
            figure.add_trace(
                go.Scatter(
                    x=rows["left"],
                    y=rows["right"],
                    mode="markers",
                    name=kind.replace("_", " "),
                    legendgroup=kind,
                    showlegend=column == 1,
                    customdata=rows["unit"],
                    marker={"color": PALETTE[k % len(PALETTE)], "size": 7, "opacity": 0.75},
                    hovertemplate="%{customdata}<br>left %{x:.1%}<br>right %{y:.1%}<extra></extra>",
                ),
                row=1,
                col=column,
            )
        figure.add_shape(
            type="line",
            x0=0,
            y0=1,
            x1=1,
            y1=0,
            line={"color": "#888", "dash": "dash"},
            row=1,
            col=column,
        )
        figure.update_xaxes(
            title_text="left-saturated (< 0.1)", range=[-0.02, 1.02], row=1, col=column
        )
    figure.update_yaxes(title_text="right-saturated (> 0.9)", range=[-0.02, 1.02], row=1, col=1)
    return paper_layout(figure, "Gate saturation: fraction of characters", height=440)


def search_figure(search: pd.DataFrame) -> go.Figure:
    """Top units' scores per feature (a `probe.search.search` table) with the nulls as lines:
    dashed = best random-init unit, dotted = best unit on the shifted feature.

    Bars are horizontal, the best unit on top, so unit names read on the y axis however many
    there are (side by side under vertical bars, ten names overlap); panels grow with the bars.
    """
    check_table(search, "feature unit score measure r auroc null_init null_shift", "search")
    if search.empty:
        raise ProbeError("no search results to plot")
    features = list(dict.fromkeys(search["feature"]))
    panels = [max(MIN_PANEL_PX, BAR_PX * int((search["feature"] == f).sum())) for f in features]
    plot_px = sum(panels) + PANEL_GAP_PX * (len(features) - 1)
    figure = make_subplots(
        rows=len(features),
        cols=1,
        subplot_titles=features,
        row_heights=panels,
        vertical_spacing=PANEL_GAP_PX / plot_px,
    )
    for row, feature in enumerate(features, start=1):
        rows = search[search["feature"] == feature]
        measure = rows["measure"].iloc[0] if "measure" in rows else "score"
        figure.add_trace(
            go.Bar(
                x=rows["score"],
                y=rows["unit"],
                orientation="h",
                marker={"color": as_hex(PALETTE[0])},
                showlegend=False,
                hovertemplate="%{y}<br>" + measure + " score %{x:.3f}<extra></extra>",
            ),
            row=row,
            col=1,
        )
        for column, dash in (("null_init", "dash"), ("null_shift", "dot")):
            value = rows[column].iloc[0] if column in rows else float("nan")
            if pd.notna(value):
                figure.add_vline(x=value, line={"color": "#444", "dash": dash}, row=row, col=1)
        title = (
            "|r|" if measure == "r" else "max(AUROC, 1 − AUROC)" if measure == "auroc" else "score"
        )
        figure.update_xaxes(title_text=title, row=row, col=1)
        figure.update_yaxes(autorange="reversed", automargin=True, row=row, col=1)
    paper_layout(
        figure,
        "Best units per feature (dashed: random-init null, dotted: shift null)",
        height=max(MIN_HEIGHT_PX, plot_px + 120),  # paper_layout adds 120 px of margins
    )
    label_px = LABEL_CHAR_PX * int(search["unit"].astype(str).str.len().max())
    return figure.update_layout(margin={"l": 30 + label_px})
