"""Draw a `TextHeatmap` with matplotlib: one rectangle per character, real text on top.

Coordinates are points (1/72 inch) from the top-left, so the page is exactly as large as the
text needs. Each character's rectangle gets the SVG id `char-PANEL-POSITION` and text is drawn
as runs of one foreground color, so PDF and SVG keep words selectable and searchable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba_array
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from probe.colors import range_labels, text_color, to_hex
from probe.export import LABEL_FONT, MONO_FONT, Line, Panel, TextHeatmap, track_color

ADVANCE = 0.60205  # DejaVu Sans Mono advance width in em (1233/2048): one column
MARGIN = 3.0
COLORBAR_WIDTH = 64.0
COLORBAR_STEPS = 33


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


def label_width(heatmap: TextHeatmap, font: float) -> float:
    """Rough width of the widest label row (label text, plus the colorbar when shown)."""
    longest = max(len(panel.label) for panel in heatmap.panels)
    colorbar = COLORBAR_WIDTH + 8 * 0.55 * font * 0.8 * 2 + 12 if heatmap.colorbar else 0.0
    return longest * 0.58 * font * 0.95 + colorbar


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
            draw_label_row(ax, heatmap, panel, y, width, font)
            y += geometry.label
        draw_panel(ax, heatmap, panel, index, y, geometry)
        y += len(panel.lines) * geometry.pitch + geometry.gap
    if geometry.tracks:
        draw_track_legend(ax, heatmap.track_names, height - MARGIN - legend_height, font)
    return figure


def draw_label_row(ax, heatmap: TextHeatmap, panel: Panel, y: float, width: float, font: float):
    """The panel's label at the left and, at the right, its colorbar with the value range."""
    middle = y + 0.8 * font
    ax.text(
        MARGIN,
        middle,
        panel.label,
        fontsize=0.95 * font,
        family=LABEL_FONT,
        color="#222222",
        va="center",
        parse_math=False,
    )
    if not heatmap.colorbar:
        return
    small = 0.8 * font
    right = width - MARGIN
    bottom_label, top_label = range_labels(panel.low, panel.limit)
    ax.text(
        right,
        middle,
        top_label,
        fontsize=small,
        family=LABEL_FONT,
        color="#444444",
        ha="right",
        va="center",
    )
    bar_right = right - 4.2 * small
    bar_left = bar_right - COLORBAR_WIDTH
    ax.text(
        bar_left - 0.4 * small,
        middle,
        bottom_label,
        fontsize=small,
        family=LABEL_FONT,
        color="#444444",
        ha="right",
        va="center",
    )
    steps = panel.colorbar_values(COLORBAR_STEPS)
    step = COLORBAR_WIDTH / COLORBAR_STEPS
    rectangles = [
        (bar_left + i * step, middle - 0.35 * font, step, 0.7 * font) for i in range(COLORBAR_STEPS)
    ]
    colors = to_hex(steps, panel.limit, heatmap.colormap_of(panel), panel.low)
    ax.add_collection(boxes(rectangles, colors, "colorbar", 0.2), autolim=False)
    ax.add_artist(
        Rectangle(
            (bar_left, middle - 0.35 * font),
            COLORBAR_WIDTH,
            0.7 * font,
            facecolor="none",
            edgecolor="#888888",
            linewidth=0.4,
        )
    )


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
    for row, line in enumerate(panel.lines):
        y = top + row * g.pitch
        draw_text_runs(ax, line, inks, y, g)
        for track, name in enumerate(heatmap.track_names):
            if name in panel.tracks:
                draw_track(ax, line, panel.tracks[name], track, y + g.line + 1.0, g)
        if line.note:
            ax.text(
                MARGIN + (g.columns + 1) * g.cell,
                y + 0.92 * g.font,
                line.note,
                fontsize=0.9 * g.font,
                family=MONO_FONT,
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
                family=MONO_FONT,
                color=inks[line.positions[start]],
                va="baseline",
                ha="left",
                parse_math=False,
            )
        start = end


def draw_track(ax, line: Line, values: np.ndarray, track: int, top: float, g: Geometry) -> None:
    """Underline the characters where a feature is non-zero (opacity follows its size)."""
    shown = np.asarray(values[line.positions], float)
    peak = float(np.abs(values).max()) or 1.0
    color = track_color(track)
    y = top + 2.0 * track
    start = 0
    for end in range(1, len(shown) + 1):
        if end < len(shown) and shown[end] == shown[start]:
            continue
        if shown[start] != 0:
            x = MARGIN + line.columns[start] * g.cell
            stop = MARGIN + (line.columns[end - 1] + line.widths[end - 1]) * g.cell
            alpha = float(np.clip(abs(shown[start]) / peak, 0.2, 1.0))
            ax.add_artist(
                Rectangle(
                    (x, y),
                    stop - x,
                    1.4,
                    facecolor=color,
                    edgecolor="none",
                    alpha=alpha,
                    gid=f"track-{track}",
                )
            )
        start = end


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
        x += 2.6 * font + (len(name) + 12) * 0.55 * 0.85 * font + font
