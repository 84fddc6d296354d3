"""Figures for papers: text colored by one or more units, written as PDF, SVG, PNG, TeX or HTML.

`text_heatmap` builds the paper's Figure 2 for any recording: one stacked panel per unit, each
character's background colored by the unit's value. `top_contexts_sheet` lays out a unit's
strongest contexts one per line. Both return a `TextHeatmap` that renders inline in Jupyter and
saves to any format; the dashboard's export buttons call the same `to_bytes`, so a figure from
the browser and from `probe export` are identical.

Layout is computed once in character cells (wrap at `width`, newlines respected, tabs expanded)
and then drawn by matplotlib (PDF/SVG/PNG: text stays text, fonts embedded) or written as markup
(HTML, LaTeX). Colors always come from `probe.colors`, so they match the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from probe.colors import (
    DEFAULT_COLORMAP,
    anchors,
    kind_low,
    percentile_limit,
    symmetric_limit,
    to_rgb,
    upper,
)
from probe.errors import ProbeError, argument, whole_number
from probe.figure_files import (  # noqa: F401 (export_plot is public here)
    MAX_CHARS,
    MAX_COLUMNS,
    MAX_CONTEXTS,
    check_format,
    export_plot,
    figure_bytes,
    format_of,
    save_bytes,
)
from probe.layout import Line, layout_text
from probe.recording import Recording
from probe.units import Unit, name_list

LOSS = "loss"  # a panel of the model's per-char loss in bits, as the dashboard colors by loss
# Feature tracks under the text: distinct, colorblind-safe (Okabe-Ito), the same everywhere.
TRACK_COLORS = ["#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#0072b2", "#000000"]


def track_color(track: int) -> str:
    """The color of feature track `track` (0-based) in the dashboard and every export."""
    return TRACK_COLORS[track % len(TRACK_COLORS)]


@dataclass
class Panel:
    """One unit over one text: its label, per-character values and the value range of its colors."""

    label: str
    text: str
    values: np.ndarray  # float32, one per character of text
    limit: float  # colors span [low, limit]
    lines: list[Line]
    tracks: dict[str, np.ndarray] = field(default_factory=dict)  # feature -> value per char
    highlights: list[int] = field(default_factory=list)  # positions outlined (sheet: the peak)
    low: float | None = None  # None: -limit (states); 0 for gates and the loss
    colormap: str | None = None  # None: the figure's; the loss takes its upper half

    def colorbar_values(self, count: int) -> np.ndarray:
        """Values evenly spaced over the color range, bottom to top (for colorbars)."""
        return np.linspace(-self.limit if self.low is None else self.low, self.limit, count)


@dataclass
class TextHeatmap:
    """A figure of colored text. Renders inline in Jupyter; `save(path)` writes any format."""

    panels: list[Panel]
    colormap: str = DEFAULT_COLORMAP
    colorbar: bool = True
    font_size: float = 9.0
    title: str | None = None

    def rgb(self, panel: Panel) -> np.ndarray:
        """uint8 RGB per character of a panel, exactly as the dashboard colors it."""
        return to_rgb(panel.values, panel.limit, self.colormap_of(panel), panel.low)

    def colormap_of(self, panel: Panel) -> str:
        return panel.colormap or self.colormap

    @property
    def track_names(self) -> list[str]:
        return list(dict.fromkeys(name for panel in self.panels for name in panel.tracks))

    def figure(self):
        """The matplotlib Figure (vector: one rectangle and real text per character run)."""
        from probe.draw import draw_heatmap

        return draw_heatmap(self)

    def to_bytes(self, fmt: str, dpi: int = 300) -> bytes:
        """The figure encoded as pdf, svg, png, tex or html."""
        fmt = check_format(fmt)
        if fmt == "html":
            from probe.markup import to_html

            return to_html(self, standalone=True).encode("utf-8")
        if fmt == "tex":
            from probe.markup import to_latex

            return to_latex(self).encode("utf-8")
        return figure_bytes(self.figure(), fmt, dpi)

    def save(self, path: str | Path, dpi: int = 300, force: bool = False) -> Path:
        """Write the figure; the format comes from the extension. Refuses to overwrite unless force."""
        path = Path(path)
        fmt = format_of(path)
        return save_bytes(self.to_bytes(fmt, dpi), path, force)

    def __repr__(self) -> str:
        """Short: the dataclass's own repr holds every panel's text, layout and values."""
        chars = len(self.panels[0].text) if self.panels else 0
        labels = "; ".join(panel.label for panel in self.panels)
        return f"<TextHeatmap of {chars:,} chars: {labels}>"

    def _repr_html_(self) -> str:
        """What Jupyter shows. The only rich repr: Jupyter computes and stores every one it
        finds, and an SVG too would cost seconds and megabytes a figure, never shown."""
        from probe.markup import to_html

        return to_html(self, standalone=False)


# ----------------------------------------------------------------------------- building figures


def check_range(recording: Recording, start: int, stop: int | None) -> tuple[int, int]:
    start = whole_number(start, "start", None)
    stop = recording.chars if stop is None else whole_number(stop, "stop", None)
    if not 0 <= start < recording.chars or stop > recording.chars:  # `--range 200000:` too
        raise ProbeError(
            f"range {start}:{stop} is outside the text (the recording has chars 0:{recording.chars})"
        )
    if start >= stop:
        raise ProbeError(f"range {start}:{stop} is empty: START must be less than STOP")
    if stop - start > MAX_CHARS:
        raise ProbeError(
            f"range {start}:{stop} is {stop - start:,} chars; a figure takes at most "
            f"{MAX_CHARS:,} (pick a shorter --range, or start and stop in Python)"
        )
    return start, stop


def parse_units(units) -> list[Unit | str]:
    """Units, and LOSS where asked for."""
    units = name_list(units)
    if not units:
        raise ProbeError("no unit given; name one like 2:cell:137")
    return [LOSS if unit == LOSS else Unit.parse(unit) for unit in units]


def checked(recording: Recording | str | Path, colormap: str, width: int, limit) -> Recording:
    """The recording, opened, once the settings both figures share are checked: a bad one
    fails before any work."""
    anchors(colormap)
    if not 1 <= width <= MAX_COLUMNS:
        raise ProbeError(f"{argument('width')} must be in 1..{MAX_COLUMNS}, got {width}")
    if limit is not None and not limit > 0:
        raise ProbeError(f"{argument('limit')} must be positive, got {limit}")
    return Recording.of(recording)


def unit_range(
    recording: Recording, unit: Unit, limit: float | None, tanh: bool = False
) -> tuple[float | None, float]:
    """The fixed color range (low, top), as the dashboard colors it: a gate's is 0 to 1, any
    other unit's is symmetric, ±(max |value| over the whole recording); tanh puts it on ±1;
    `limit` sets the top."""
    low = None if tanh else kind_low(unit.kind)
    if limit is not None:
        return low, float(limit)
    return low, 1.0 if tanh or low is not None else symmetric_limit(recording.unit(unit))


def squashed(values: np.ndarray, tanh: bool) -> np.ndarray:
    """tanh(values) when asked: the paper colors cells by tanh(c), whose range is (-1, 1)."""
    return np.tanh(values) if tanh else values


def feature_columns(recording: Recording, features: list[str] | None) -> dict[str, np.ndarray]:
    """Each feature over the whole recording text (context before the range matters)."""
    from probe.profiles import feature_values

    return {name: feature_values(recording, name) for name in name_list(features) or []}


def correlation(values: np.ndarray, feature: np.ndarray) -> float:
    """Pearson r over the whole recording (NaN when either side is constant)."""
    values = np.asarray(values, np.float64)
    feature = np.asarray(feature, np.float64)
    if values.std() == 0 or feature.std() == 0:
        return float("nan")
    return float(np.corrcoef(values, feature)[0, 1])


def unit_label(
    recording: Recording, unit: Unit, features: dict[str, np.ndarray], tanh: bool = False
) -> str:
    """'layer 2 · cell 137 · r=0.93 with in_quote' (r over the whole recording, of raw values)."""
    name = unit.kind.replace("_", " ")
    parts = [f"layer {unit.layer} · tanh({name} {unit.index})" if tanh else unit.label]
    whole = recording.unit(unit) if features else None
    for name, column in features.items():
        r = correlation(whole, column)
        shown = f"{round(r, 2) + 0.0:.2f}".replace("-", "−") if np.isfinite(r) else "n/a"
        parts.append(f"r={shown} with {name}")  # + 0.0: no "−0.00"
    return " · ".join(parts)


def text_heatmap(
    recording: Recording | str | Path,
    units,
    start: int = 0,
    stop: int | None = None,
    width: int = 80,
    colormap: str = DEFAULT_COLORMAP,
    limit: float | None = None,
    labels: list[str] | None = None,
    features: list[str] | None = None,
    colorbar: bool = True,
    show_whitespace: bool = False,
    font_size: float = 9.0,
    title: str | None = None,
    tanh: bool = False,
) -> TextHeatmap:
    """The paper's Figure 2 for any units: text[start:stop] colored by each unit, stacked.

    A unit may also be LOSS ("loss"): the model's per-char loss in bits, on 0 to its 99th
    percentile over the recording (as the dashboard colors by loss).
    Colors span each unit's symmetric range over the whole recording (or `limit` for all), so
    panels are comparable across figures. `features` add r to each label and underline tracks.
    `tanh` colors tanh(value) on a fixed (-1, 1) range, as the paper's Figure 2 does for cells.
    """
    recording, units = checked(recording, colormap, width, limit), parse_units(units)
    if labels is not None and len(labels) != len(units):
        raise ProbeError(f"got {len(labels)} labels for {len(units)} units")
    start, stop = check_range(recording, start, stop)
    text = recording.text[start:stop]
    lines = layout_text(text, width, show_whitespace)
    columns = feature_columns(recording, features)
    tracks = {name: column[start:stop] for name, column in columns.items()}
    panels = []
    for i, unit in enumerate(units):
        panel_colormap = None
        if unit == LOSS:  # as the dashboard: 0 to the 99th percentile, white up
            whole = recording.loss_bits()
            values, label = whole[start:stop], "per-char loss (bits)"
            low, top = 0.0, percentile_limit(whole) if limit is None else float(limit)
            panel_colormap = upper(colormap)
        else:
            values = squashed(recording.unit(unit, start, stop), tanh)
            label = unit_label(recording, unit, columns, tanh)
            low, top = unit_range(recording, unit, limit, tanh)
        label = labels[i] if labels else label
        panels.append(
            Panel(label, text, values, top, lines, tracks, low=low, colormap=panel_colormap)
        )
    return TextHeatmap(panels, colormap, colorbar, font_size, title)


def top_contexts_sheet(
    recording: Recording | str | Path,
    unit: str | Unit,
    k: int = 8,
    width: int = 40,
    sign: str = "positive",
    colormap: str = DEFAULT_COLORMAP,
    limit: float | None = None,
    features: list[str] | None = None,
    colorbar: bool = True,
    font_size: float = 9.0,
    title: str | None = None,
    tanh: bool = False,
) -> TextHeatmap:
    """A unit's k strongest contexts, one colored line each, aligned on the peak character.

    Contexts are `probe.search.top_contexts` (the dashboard's): `width` chars ending a quarter
    width after the peak; sign is positive, negative or absolute. Newlines inside a context are
    drawn as ↵ so every context stays one line; the peak is outlined, its value at the right.
    """
    from probe.search import top_contexts

    recording, (unit,) = checked(recording, colormap, width, limit), parse_units([unit])
    if not 1 <= k <= MAX_CONTEXTS:
        raise ProbeError(f"--top (k in Python) must be in 1..{MAX_CONTEXTS}, got {k}")
    contexts = top_contexts(recording, unit, k, width, sign)
    if len(contexts) == 0:
        raise ProbeError(f"unit {unit} is never {sign} on this text: no contexts to show")
    columns = feature_columns(recording, features)
    pieces, lines, highlights, offset = [], [], [], 0
    for row in contexts.itertuples():
        piece = recording.text[row.start : row.stop]
        (line,) = layout_text(piece, len(piece) + 1, show_whitespace=True, wrap=False)
        line.positions += offset
        line.note = f"{squashed(row.value, tanh):+.2f}"
        lines.append(line)
        highlights.append(offset + row.position - row.start)
        pieces.append((row.start, row.stop))
        offset += len(piece)
    peaks = [int(line.columns[h - line.positions[0]]) for line, h in zip(lines, highlights)]
    for line, peak in zip(lines, peaks):  # aligned on the peak's column (a tab spans several)
        line.columns += max(peaks) - peak
    gather = np.concatenate([np.arange(a, b) for a, b in pieces])
    low, top = unit_range(recording, unit, limit, tanh)
    panel = Panel(
        label=f"{unit_label(recording, unit, columns, tanh)} · top {len(lines)} contexts",
        text="".join(recording.text[a:b] for a, b in pieces),
        values=squashed(recording.unit(unit)[gather], tanh),
        limit=top,
        lines=lines,
        tracks={name: column[gather] for name, column in columns.items()},
        highlights=highlights,
        low=low,
    )
    return TextHeatmap([panel], colormap, colorbar, font_size, title)
