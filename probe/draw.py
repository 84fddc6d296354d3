"""Draw a `TextHeatmap` with matplotlib: one rectangle per character, real text on top.

Coordinates are points (1/72 inch) from the top-left, so the page is exactly as large as the
text and its labels need. A panel's character rectangles are one SVG group `chars-PANEL` (its
underlines `track-PANEL-TRACK`, its colorbar `colorbar-PANEL`), and text is drawn as runs of
one foreground color, so PDF and SVG keep words selectable and searchable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba_array
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.textpath import TextToPath

from probe.colors import range_labels, text_color, to_hex
from probe.errors import ProbeError, argument
from probe.export import Panel, TextHeatmap, track_color
from probe.layout import LABEL_FONT, MONO_FONT, Line

ADVANCE = 0.60205  # DejaVu Sans Mono advance width in em (1233/2048): one column
MARGIN = 3.0
COLORBAR_WIDTH = 64.0
COLORBAR_STEPS = 33
MAX_PAGE = 14_400  # points a side (200 inches): PDF viewers (Acrobat's limit) draw no more
# SVG names its fonts (PDF embeds them): where DejaVu is missing, any monospace keeps columns
MONO_FAMILY = [MONO_FONT, "monospace"]


@dataclass
class Geometry:
    """Sizes in points, all derived from the font size."""

    font: float
    columns: int
    tracks: int
    note_columns: int
    labels: bool
    title: bool

    @property
    def cell(self) -> float:
        return ADVANCE * self.font

    @property
    def line(self) -> float:
        return 1.3 * self.font

    @property
    def pitch(self) -> float:
        """Top of one row to the next: the colored line plus a band for feature underlines."""
        return self.line + (2.0 * self.tracks + 1.0 if self.tracks else 0.0)

    @property
    def label(self) -> float:
        return 1.8 * self.font if self.labels else 0.0

    @property
    def gap(self) -> float:
        return 0.8 * self.font

    @property
    def text_width(self) -> float:
        notes = (self.note_columns + 1) * self.cell if self.note_columns else 0.0
        return self.columns * self.cell + notes


def text_extent(lines: list[Line]) -> int:
    return max((int(l.columns[-1] + l.widths[-1]) for l in lines if len(l.columns)), default=1)


@lru_cache(maxsize=1024)
def text_width(text: str, size: float, weight: str = "normal") -> float:
    """The width in points of text in the label font (measured, as matplotlib will draw it)."""
    font = FontProperties(family=LABEL_FONT, size=size, weight=weight)
    return TextToPath().get_text_width_height_descent(text, font, ismath=False)[0]


def colorbar_width(panel: Panel, font: float) -> float:
    """Width of a label row's colorbar with its two value labels, as `draw_label_row` places it."""
    small = 0.8 * font
    bottom, top = range_labels(panel.low, panel.limit)
    return text_width(bottom, small) + COLORBAR_WIDTH + text_width(top, small) + 0.8 * small


def legend_width(names: list[str], font: float) -> float:
    return sum(legend_item(name, font) for name in names)


def legend_item(name: str, font: float) -> float:
    """Width of one underline legend entry: its swatch, its text and the gap after it."""
    return 2.6 * font + text_width(f"underline: {name}", 0.85 * font) + font


def label_width(heatmap: TextHeatmap, font: float) -> float:
    """Width of the widest label row: the label, a gap, then the colorbar when shown."""
    rows = [
        text_width(panel.label, 0.95 * font)
        + (2 * font + colorbar_width(panel, font) if heatmap.colorbar else 0.0)
        for panel in heatmap.panels
    ]
    title = text_width(heatmap.title, 1.15 * font, "bold") if heatmap.title else 0.0
    return max(*rows, title, legend_width(heatmap.track_names, font))


def draw_heatmap(heatmap: TextHeatmap) -> Figure:
    font = heatmap.font_size
    geometry = Geometry(
        font=font,
        columns=max(text_extent(panel.lines) for panel in heatmap.panels),
        tracks=len(heatmap.track_names),
        note_columns=max((len(l.note) for p in heatmap.panels for l in p.lines), default=0),
        labels=any(panel.label for panel in heatmap.panels) or heatmap.colorbar,
        title=bool(heatmap.title),
    )
    legend_height = 1.8 * font if geometry.tracks else 0.0
    title_height = 2.2 * font if heatmap.title else 0.0
    width = 2 * MARGIN + max(geometry.text_width, label_width(heatmap, font))
    height = (
        2 * MARGIN
        + title_height
        + legend_height
        + sum(geometry.label + len(panel.lines) * geometry.pitch for panel in heatmap.panels)
        + geometry.gap * (len(heatmap.panels) - 1)
    )

    width, height = math.ceil(width), math.ceil(height)  # whole points: exact PNG sizes
    if max(width, height) > MAX_PAGE:
        raise ProbeError(
            f"the figure would be {width / 72:.0f} x {height / 72:.0f} inches: PDF viewers draw "
            f"no more than {MAX_PAGE // 72} a side; show fewer chars or units, a larger "
            f"{argument('width')}, "
            "or export .html"
        )
    figure = Figure(figsize=(width / 72, height / 72))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    y = MARGIN
    if heatmap.title:
        ax.text(
            MARGIN,
            y + 1.2 * font,
            heatmap.title,
            fontsize=1.15 * font,
            family=LABEL_FONT,
            weight="bold",
            va="baseline",
            parse_math=False,
        )
        y += title_height
    for index, panel in enumerate(heatmap.panels):
        if geometry.label:
            draw_label_row(ax, heatmap, panel, index, y, width)
            y += geometry.label
        draw_panel(ax, heatmap, panel, index, y, geometry)
        y += len(panel.lines) * geometry.pitch + geometry.gap
    if geometry.tracks:
        draw_track_legend(ax, heatmap.track_names, height - MARGIN - legend_height, font)
    return figure


def draw_label_row(ax, heatmap: TextHeatmap, panel: Panel, index: int, y: float, width: float):
    """The panel's label at the left and, at the right, its colorbar with the value range."""
    font = heatmap.font_size
    middle = y + 0.8 * font
    label = dict(family=LABEL_FONT, va="center", parse_math=False)
    ax.text(MARGIN, middle, panel.label, fontsize=0.95 * font, color="#222222", **label)
    if not heatmap.colorbar:
        return
    small = 0.8 * font
    bottom_label, top_label = range_labels(panel.low, panel.limit)
    right = width - MARGIN
    ax.text(right, middle, top_label, fontsize=small, color="#444444", ha="right", **label)
    bar_left = right - text_width(top_label, small) - 0.4 * small - COLORBAR_WIDTH
    ax.text(
        bar_left - 0.4 * small, middle, bottom_label, fontsize=small, color="#444444", ha="right",
        **label,
    )  # fmt: skip
    steps = panel.colorbar_values(COLORBAR_STEPS)
    step = COLORBAR_WIDTH / COLORBAR_STEPS
    top = middle - 0.35 * font
    rectangles = [(bar_left + i * step, top, step, 0.7 * font) for i in range(COLORBAR_STEPS)]
    colors = to_hex(steps, panel.limit, heatmap.colormap_of(panel), panel.low)
    ax.add_collection(boxes(rectangles, colors, f"colorbar-{index}", 0.2), autolim=False)
    outline = Rectangle((bar_left, top), COLORBAR_WIDTH, 0.7 * font, facecolor="none")
    outline.set(edgecolor="#888888", linewidth=0.4)
    ax.add_artist(outline)


def boxes(rectangles: list[tuple], colors: list[str], gid: str, line_width: float = 0.3):
    """Many rectangles (x, y, width, height) as one collection: built from one array (20k
    patches took 5 s, this 0.1 s) and fast to draw; SVG keeps one element per rectangle.

    A hairline edge of the same color hides seams between neighbours in PDF viewers.
    """
    x, y, width, height = np.asarray(rectangles, dtype=float).reshape(-1, 4).T
    corners = [(x, y), (x + width, y), (x + width, y + height), (x, y + height)]
    vertices = np.stack([np.stack(corner, axis=1) for corner in corners], axis=1)
    colors = to_rgba_array(colors)  # parsed once here, not once a face and an edge per draw
    return PolyCollection(
        vertices, facecolors=colors, edgecolors=colors, linewidths=line_width, gid=gid
    )


def draw_panel(ax, heatmap: TextHeatmap, panel: Panel, index: int, top: float, g: Geometry):
    rgb = heatmap.rgb(panel)
    fills = ["#%02x%02x%02x" % tuple(color) for color in rgb]
    inks = text_color(rgb)
    where: dict[int, tuple[float, float, float]] = {}
    for row, line in enumerate(panel.lines):
        y = top + row * g.pitch
        for position, column, span in zip(line.positions, line.columns, line.widths):
            where[int(position)] = (MARGIN + column * g.cell, y, span * g.cell)
    positions = list(where)  # layout order: row by row, left to right
    rectangles = [(x, y, w, g.line) for x, y, w in where.values()]
    ax.add_collection(
        boxes(rectangles, [fills[p] for p in positions], f"chars-{index}"), autolim=False
    )
    for track, name in enumerate(heatmap.track_names):
        if name in panel.tracks:
            underlines = track_boxes(panel.lines, panel.tracks[name], track, top + g.line + 1.0, g)
            ax.add_collection(boxes(*underlines, f"track-{index}-{track}", 0.0), autolim=False)
    for row, line in enumerate(panel.lines):
        y = top + row * g.pitch
        draw_text_runs(ax, line, inks, y, g)
        if line.note:
            ax.text(
                MARGIN + (g.columns + 1) * g.cell,
                y + 0.92 * g.font,
                line.note,
                fontsize=0.9 * g.font,
                family=MONO_FAMILY,
                color="#333333",
                va="baseline",
            )
    for position in panel.highlights:
        x, y, span = where[position]
        ax.add_artist(
            Rectangle(
                (x, y),
                span,
                g.line,
                facecolor="none",
                edgecolor="#000000",
                linewidth=1.0,
                gid=f"peak-{index}-{position}",
            )
        )


def draw_text_runs(ax, line: Line, inks: np.ndarray, y: float, g: Geometry) -> None:
    """Draw a row's glyphs as few text objects as possible: one per run of one ink color."""
    start = 0
    for end in range(1, len(line.glyphs) + 1):
        if end < len(line.glyphs) and inks[line.positions[end]] == inks[line.positions[start]]:
            continue
        run = "".join(line.glyphs[start:end])
        if run.strip():
            ax.text(
                MARGIN + line.columns[start] * g.cell,
                y + 0.92 * g.font,
                run,
                fontsize=g.font,
                family=MONO_FAMILY,
                color=inks[line.positions[start]],
                va="baseline",
                ha="left",
                parse_math=False,
            )
        start = end


def track_boxes(lines: list[Line], values: np.ndarray, track: int, top: float, g: Geometry):
    """The underlines of one feature under a panel's rows, where it is non-zero (opacity
    follows its size): (rectangles, RGBA colors), for one collection."""
    peak = float(np.abs(values).max()) or 1.0
    red, green, blue, _ = to_rgba_array(track_color(track))[0]
    rectangles, colors = [], []
    for row, line in enumerate(lines):
        shown = np.asarray(values[line.positions], float)
        y = top + row * g.pitch + 2.0 * track
        start = 0
        for end in range(1, len(shown) + 1):
            if end < len(shown) and shown[end] == shown[start]:
                continue
            if shown[start] != 0:
                x = MARGIN + line.columns[start] * g.cell
                stop = MARGIN + (line.columns[end - 1] + line.widths[end - 1]) * g.cell
                rectangles.append((x, y, stop - x, 1.4))
                colors.append((red, green, blue, np.clip(abs(shown[start]) / peak, 0.2, 1.0)))
            start = end
    return rectangles, colors


def draw_track_legend(ax, names: list[str], top: float, font: float) -> None:
    x = MARGIN
    middle = top + 1.0 * font
    for track, name in enumerate(names):
        color = track_color(track)
        ax.add_artist(
            Rectangle((x, middle + 0.35 * font), 2.2 * font, 1.4, facecolor=color, edgecolor="none")
        )
        ax.text(
            x + 2.6 * font,
            middle,
            f"underline: {name}",
            fontsize=0.85 * font,
            family=LABEL_FONT,
            color="#333333",
            va="center",
            parse_math=False,
        )
        x += legend_item(name, font)
