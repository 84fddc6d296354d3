"""Redraw a Plotly figure with matplotlib, so plots export to PDF/SVG/PNG without a browser.

Plotly's own static export (kaleido 1.x) drives an installed Chrome, which a fresh pip-only or
offline machine lacks. matplotlib is pure pip, mature, and writes vector PDF/SVG with real text.
This converter covers what probe's plots use: scatter lines/markers (log axes, dashes, fills,
colored markers), bars (grouped, stacked, horizontal, categorical), heatmaps, histograms,
subplots from axis domains (and overlaid twin axes), line/rect shapes, annotations (subplot
titles), titles, axis titles and legends. Anything else raises a clear ProbeError.
"""

from __future__ import annotations

import re

import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox, BboxTransformTo, TransformedBbox, blended_transform_factory

from probe.errors import ProbeError

PX = 0.75  # Plotly sizes are CSS pixels; 1 px = 0.75 pt
PLOT_AREA = (0.10, 0.13, 0.97, 0.88)  # left, bottom, right, top of all subplots (figure fraction)
DASHES = {"solid": "-", "dash": "--", "dot": ":", "dashdot": "-.", "longdash": "--"}
FONT = "DejaVu Sans"


def color(value, default=None):
    """A Plotly color ('rgb(1,2,3)', 'rgba(..)', '#hex', CSS name) as a matplotlib color."""
    if value is None:
        return default
    if isinstance(value, str):
        match = re.fullmatch(r"\s*rgba?\(([^)]*)\)\s*", value)
        if match:
            parts = [float(p) for p in match.group(1).split(",")]
            rgb = [p / 255 for p in parts[:3]]
            return (*rgb, parts[3]) if len(parts) == 4 else tuple(rgb)
    return value


def plain(text) -> str:
    """Plotly's HTML-ish text (<b>, <br>, <sub>, &amp;) as text for matplotlib (subscripts as
    mathtext, any other $ escaped)."""
    if not text:
        return ""
    text = str(text).replace("$", r"\$")
    text = re.sub(r"<sub>(.*?)</sub>", r"$_{\1}$", text, flags=re.I)
    text = re.sub(r"<br\s*/?>", "\n", text, flags=re.I)
    text = re.sub(r"<[^>]+>", "", text)
    return text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")


def colormap(scale, name: str = "plotly") -> LinearSegmentedColormap:
    """A Plotly colorscale ([[0, c0], ..., [1, c1]] or a named one) as a matplotlib colormap."""
    import plotly.colors

    if isinstance(scale, str):
        scale = plotly.colors.get_colorscale(scale)
    if not scale:
        scale = plotly.colors.get_colorscale("Viridis")
    stops = [
        (
            float(at),
            plotly.colors.unlabel_rgb(plotly.colors.convert_colors_to_same_type(c, "rgb")[0][0]),
        )
        for at, c in scale
    ]
    return LinearSegmentedColormap.from_list(name, [(at, np.array(c) / 255) for at, c in stops])


def plot_area(margin_left: float | None, width: float) -> tuple[float, float, float, float]:
    """PLOT_AREA, its left edge moved right for a wider left margin (long y tick labels)."""
    left = max(PLOT_AREA[0], (margin_left or 0) / width)
    return (left, *PLOT_AREA[1:])


def axis_name(ref: str | None, letter: str) -> str:
    """'x2' -> 'xaxis2', None or 'x' -> 'xaxis'."""
    ref = ref or letter
    return f"{letter}axis{ref[1:]}"


class Converter:
    """Builds one matplotlib Figure from one Plotly figure."""

    def __init__(self, fig):
        import plotly.graph_objects as go

        try:
            self.fig = go.Figure(fig)
        except ValueError as error:
            raise ProbeError(f"not a Plotly figure: {error}") from None
        self.layout = self.fig.layout
        width, height = self.layout.width or 700, self.layout.height or 450
        self.figure = Figure(figsize=(width / 100, height / 100))
        self.area = plot_area(self.layout.margin.l, width)
        self.axes: dict[tuple[str, str], object] = {}
        self.categories: dict[int, list] = {}
        self.bars: dict[int, int] = {}
        self.colorway = list(self.layout.template.layout.colorway or []) or [
            "#636efa",
            "#ef553b",
            "#00cc96",
            "#ab63fa",
            "#ffa15a",
            "#19d3f3",
            "#ff6692",
        ]

    def ax(self, xref: str | None, yref: str | None):
        """The matplotlib Axes for a Plotly x/y axis pair, placed by the axes' domains."""
        key = (axis_name(xref, "x"), axis_name(yref, "y"))
        if key in self.axes:
            return self.axes[key]
        x_axis, y_axis = self.layout[key[0]], self.layout[key[1]]
        base = next((a for (x, _), a in self.axes.items() if x == key[0]), None)
        if y_axis.overlaying and base is not None:
            ax = base.twinx()
        else:
            left, bottom, right, top = self.area
            (x0, x1), (y0, y1) = x_axis.domain or (0, 1), y_axis.domain or (0, 1)
            ax = self.figure.add_axes(
                (
                    left + x0 * (right - left),
                    bottom + y0 * (top - bottom),
                    (x1 - x0) * (right - left),
                    (y1 - y0) * (top - bottom),
                )
            )
            ax.spines[["top", "right"]].set_visible(False)
        for axis, setter in ((x_axis, ax.xaxis), (y_axis, ax.yaxis)):
            self.style_axis(ax, axis, setter)
        self.axes[key] = ax
        return ax

    def style_axis(self, ax, axis, setter) -> None:
        letter = setter.axis_name
        if axis.type == "log":
            getattr(ax, f"set_{letter}scale")("log")
        if axis.title and axis.title.text:
            setter.set_label_text(plain(axis.title.text))
        if axis.range is not None:
            low, high = axis.range
            if axis.type == "log":
                low, high = 10**low, 10**high
            getattr(ax, f"set_{letter}lim")(low, high)
        if axis.autorange == "reversed":
            getattr(ax, f"invert_{letter}axis")()
        if axis.showgrid or (axis.showgrid is None and letter == "y"):
            setter.grid(True, color="#e5e5e5", linewidth=0.6)
            ax.set_axisbelow(True)
        if axis.visible is False or axis.showticklabels is False:
            setter.set_ticklabels([])

    def positions(self, ax, values) -> np.ndarray:
        """Numeric positions; strings become categories 0..n-1 labelled on the axis."""
        values = list(values)
        if values and isinstance(values[0], str):
            known = self.categories.setdefault(id(ax), [])
            for value in values:
                if value not in known:
                    known.append(value)
            return np.array([known.index(v) for v in values], float)
        return np.asarray(values, dtype=float)

    def trace_color(self, index: int, explicit):
        return color(explicit, self.colorway[index % len(self.colorway)])

    # ------------------------------------------------------------------------- traces

    def scatter(self, trace, index: int) -> None:
        ax = self.ax(trace.xaxis, trace.yaxis)
        y = np.asarray(trace.y if trace.y is not None else [], dtype=float)
        x = self.positions(ax, trace.x) if trace.x is not None else np.arange(len(y))
        mode = trace.mode or ("lines+markers" if len(y) < 20 else "lines")
        marker_color = trace.marker.color
        per_point = isinstance(marker_color, (list, tuple, np.ndarray))
        line_color = self.trace_color(
            index, trace.line.color or (None if per_point else marker_color)
        )
        label = plain(trace.name) if trace.showlegend is not False and trace.name else None
        alpha = trace.opacity  # None keeps the alpha of rgba() colors (Plotly's bands)
        opacities = [o for o in (trace.opacity, trace.marker.opacity) if o is not None]
        marker_alpha = float(np.prod(opacities)) if opacities else None
        if trace.fill == "toself":
            ax.fill(x, y, color=color(trace.fillcolor, line_color), linewidth=0, alpha=alpha)
        if "lines" in mode and trace.line.width != 0:
            ax.plot(
                x,
                y,
                color=line_color,
                linewidth=(trace.line.width or 2) * PX,
                linestyle=DASHES.get(trace.line.dash or "solid", "-"),
                label=label,
                alpha=alpha,
            )
            label = None
        if "markers" in mode:
            size = ((trace.marker.size if np.isscalar(trace.marker.size) else 6) or 6) * PX
            if per_point and len(marker_color) and not isinstance(marker_color[0], str):
                points = ax.scatter(
                    x,
                    y,
                    c=np.asarray(marker_color, float),
                    s=size**2,
                    cmap=colormap(trace.marker.colorscale),
                    label=label,
                    alpha=marker_alpha,
                    linewidths=0,
                )
                if trace.marker.showscale:
                    self.figure.colorbar(points, ax=ax)
            else:
                fill = [color(c) for c in marker_color] if per_point else line_color
                ax.scatter(
                    x, y, color=fill, s=size**2, label=label, alpha=marker_alpha, linewidths=0
                )
        if trace.fill in ("tozeroy", "tonexty"):
            ax.fill_between(
                x, y, 0, color=color(trace.fillcolor, line_color), alpha=0.3, linewidth=0
            )

    def bar(self, trace, index: int) -> None:
        ax = self.ax(trace.xaxis, trace.yaxis)
        horizontal = trace.orientation == "h"
        where = self.positions(ax, trace.y if horizontal else trace.x)
        size = np.asarray(trace.x if horizontal else trace.y, dtype=float)
        fill = trace.marker.color
        fill = (
            [color(c) for c in fill]
            if isinstance(fill, (list, tuple))
            else self.trace_color(index, fill)
        )
        group = self.layout.barmode in (None, "group")
        count = (
            sum(
                1
                for t in self.fig.data
                if t.type == "bar" and t.xaxis == trace.xaxis and t.yaxis == trace.yaxis
            )
            if group
            else 1
        )
        slot = self.bars.get(id(ax), 0)
        self.bars[id(ax)] = slot + 1
        thickness = 0.8 / count
        offset = (slot - (count - 1) / 2) * thickness if group else 0.0
        bottom = None
        if self.layout.barmode in ("stack", "relative"):
            bottom = getattr(ax, "_probe_stack", np.zeros(len(size)))
            ax._probe_stack = bottom + size
        label = plain(trace.name) if trace.name else None
        if horizontal:
            ax.barh(where + offset, size, height=thickness, left=bottom, color=fill, label=label)
        else:
            ax.bar(where + offset, size, width=thickness, bottom=bottom, color=fill, label=label)

    def heatmap(self, trace, index: int) -> None:
        ax = self.ax(trace.xaxis, trace.yaxis)
        z = np.asarray(trace.z, dtype=float)
        low = trace.zmin if trace.zmin is not None else np.nanmin(z)
        high = trace.zmax if trace.zmax is not None else np.nanmax(z)
        if trace.zmid is not None:
            half = max(abs(low - trace.zmid), abs(high - trace.zmid))
            low, high = trace.zmid - half, trace.zmid + half
        image = ax.pcolormesh(z, cmap=colormap(trace.colorscale), vmin=low, vmax=high)
        for values, setter in ((trace.x, ax.set_xticks), (trace.y, ax.set_yticks)):
            if values is not None and len(values) <= 40:
                setter(np.arange(len(values)) + 0.5, [plain(v) for v in values])
        if trace.showscale is not False:
            self.figure.colorbar(image, ax=ax)

    def histogram(self, trace, index: int) -> None:
        ax = self.ax(trace.xaxis, trace.yaxis)
        ax.hist(
            np.asarray(trace.x, float),
            bins=trace.nbinsx or "auto",
            alpha=trace.opacity or 1,
            color=self.trace_color(index, trace.marker.color),
            label=plain(trace.name) or None,
        )

    # ------------------------------------------------------------------------- decorations

    def transform(self, xref: str | None, yref: str | None):
        """Matplotlib transform for a shape/annotation's x/y references."""
        left, bottom, right, top = self.area
        paper = BboxTransformTo(
            TransformedBbox(Bbox([[left, bottom], [right, top]]), self.figure.transFigure)
        )
        first = next(iter(self.axes.values()), None) or self.ax("x", "y")

        def pick(ref: str | None, letter: str):
            ref = ref or letter
            if ref == "paper":
                return paper, first
            name = axis_name(ref.split()[0], letter)
            side = 0 if letter == "x" else 1
            ax = next((a for key, a in self.axes.items() if key[side] == name), first)
            return (ax.transAxes if ref.endswith("domain") else ax.transData), ax

        (x_transform, x_ax), (y_transform, _) = pick(xref, "x"), pick(yref, "y")
        return blended_transform_factory(x_transform, y_transform), x_ax

    def shapes(self) -> None:
        for shape in self.layout.shapes:
            transform, ax = self.transform(shape.xref, shape.yref)
            edge = color(shape.line.color, "#444444")
            width = (shape.line.width if shape.line.width is not None else 2) * PX
            style = DASHES.get(shape.line.dash or "solid", "-")
            if shape.type == "line":
                ax.plot(
                    [shape.x0, shape.x1],
                    [shape.y0, shape.y1],
                    transform=transform,
                    color=edge,
                    linewidth=width,
                    linestyle=style,
                    clip_on=False,
                )
            elif shape.type == "rect":
                from matplotlib.patches import Rectangle

                ax.add_artist(
                    Rectangle(
                        (shape.x0, shape.y0),
                        shape.x1 - shape.x0,
                        shape.y1 - shape.y0,
                        transform=transform,
                        facecolor=color(shape.fillcolor, "none"),
                        alpha=shape.opacity,
                        edgecolor=edge,
                        linewidth=width,
                    )
                )

    def annotations(self) -> None:
        for note in self.layout.annotations:
            transform, ax = self.transform(note.xref, note.yref)
            ha = {"left": "left", "right": "right"}.get(note.xanchor, "center")
            va = {"top": "top", "bottom": "bottom"}.get(note.yanchor, "center")
            size = (note.font.size or 12) * PX if note.font else 9
            ax.text(
                note.x or 0,
                note.y or 0,
                plain(note.text),
                transform=transform,
                ha=ha,
                va=va,
                fontsize=size,
                clip_on=False,
            )

    def convert(self) -> Figure:
        draw = {
            "scatter": self.scatter,
            "scattergl": self.scatter,
            "bar": self.bar,
            "heatmap": self.heatmap,
            "histogram": self.histogram,
        }
        for index, trace in enumerate(self.fig.data):
            if trace.type not in draw:
                raise ProbeError(
                    f"cannot export a Plotly {trace.type!r} trace statically "
                    f"(supported: {', '.join(draw)})"
                )
            if trace.visible in (False, "legendonly"):
                continue
            draw[trace.type](trace, index)
        if not self.axes:
            self.ax("x", "y")
        for ax_id, names in self.categories.items():
            ax = next(a for a in self.axes.values() if id(a) == ax_id)
            horizontal = any(t.type == "bar" and t.orientation == "h" for t in self.fig.data)
            setter = ax.set_yticks if horizontal else ax.set_xticks
            setter(range(len(names)), [plain(n) for n in names])
        self.shapes()
        self.annotations()
        title = self.layout.title.text if self.layout.title else None
        if title:
            self.figure.suptitle(plain(title), x=self.area[0], ha="left", fontsize=11)
        named = [t for t in self.fig.data if t.name and t.showlegend is not False]
        if self.layout.showlegend is not False and (len(named) > 1 or self.layout.showlegend):
            handles = [h for ax in self.axes.values() for h in ax.get_legend_handles_labels()[0]]
            labels = [l for ax in self.axes.values() for l in ax.get_legend_handles_labels()[1]]
            if handles:
                first = next(iter(self.axes.values()))
                first.legend(handles, labels, fontsize=8, frameon=False)
        return self.figure


def plotly_to_matplotlib(fig) -> Figure:
    """A matplotlib Figure drawing the same data as a Plotly figure (or its dict form)."""
    import matplotlib

    with matplotlib.rc_context({"font.family": FONT, "font.size": 9}):
        return Converter(fig).convert()
