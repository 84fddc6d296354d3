"""A `TextHeatmap` as markup: self-contained HTML (Jupyter, web pages) and LaTeX for \\input{}.

Both walk the same layout as the matplotlib drawing (rows, columns, glyphs) and take colors from
`probe.colors`, so every format shows the same figure.
"""

from __future__ import annotations

import html

import numpy as np

from probe.colors import range_labels, text_color, to_hex, to_rgb
from probe.export import TextHeatmap, track_color
from probe.layout import CONTROL_MARK, NEWLINE_MARK, TAB_MARK, Line

MONO_CSS = "'DejaVu Sans Mono', Menlo, Consolas, monospace"
SANS_CSS = "'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif"


def runs(line: Line, keys: list) -> list[tuple[int, int]]:
    """[start, end) box ranges of a row over which keys[position] stays the same."""
    out, start = [], 0
    for end in range(1, len(line.glyphs) + 1):
        if end == len(line.glyphs) or keys[line.positions[end]] != keys[line.positions[start]]:
            out.append((start, end))
            start = end
    return out


# ----------------------------------------------------------------------------- HTML


def colorbar_html(panel, colormap: str) -> str:
    stops = ", ".join(to_hex(panel.colorbar_values(9), panel.limit, colormap, panel.low))
    bottom, top = range_labels(panel.low, panel.limit)
    bar = (
        f'<span style="display:inline-block;width:80px;height:9px;margin:0 4px;'
        f'border:1px solid #888;background:linear-gradient(to right, {stops})"></span>'
    )
    return f'<span style="font-size:11px;color:#444">{bottom}{bar}{top}</span>'


def to_html(heatmap: TextHeatmap, standalone: bool = True) -> str:
    """Inline-styled HTML (no external assets); hovering a character shows its value."""
    names = heatmap.track_names
    out = [
        f'<div class="probe-heatmap" style="font-family:{SANS_CSS};color:#222;'
        f'background:#fff;padding:4px">'
    ]
    if heatmap.title:
        out.append(
            f'<div style="font-weight:bold;margin:2px 0 6px">{html.escape(heatmap.title)}</div>'
        )
    for panel in heatmap.panels:
        colorbar = colorbar_html(panel, heatmap.colormap_of(panel)) if heatmap.colorbar else ""
        out.append(
            f'<div style="font-size:13px;margin:8px 0 3px;display:flex;gap:16px;'
            f'align-items:center"><span>{html.escape(panel.label)}</span>{colorbar}</div>'
        )
        rgb = heatmap.rgb(panel)
        fills = ["#%02x%02x%02x" % tuple(color) for color in rgb]
        inks = text_color(rgb)
        out.append(f'<div style="font-family:{MONO_CSS};font-size:13px;line-height:1.3">')
        highlights = set(panel.highlights)
        for line in panel.lines:
            cells = []
            for position, shown in zip(line.positions, line.glyphs):
                style = f"background:{fills[position]};color:{inks[position]}"
                shadows = [
                    f"inset 0 -{2 * (t + 1)}px 0 {track_color(t)}"
                    for t in track_indices(heatmap, panel, position)
                ]
                if shadows:
                    style += ";box-shadow:" + ", ".join(shadows)
                if position in highlights:
                    style += ";outline:1px solid #000"
                title = f"{panel.values[position]:+.3f}"
                cells.append(f'<span style="{style}" title="{title}">{html.escape(shown)}</span>')
            if line.note:
                cells.append(f'<span style="color:#444"> {html.escape(line.note)}</span>')
            # pre per line, not on the panel: the newlines between the lines' divs would show
            out.append('<div style="white-space:pre">' + "".join(cells) + "</div>")
        out.append("</div>")
    if names:
        legend = " ".join(
            f'<span style="border-bottom:2px solid {track_color(t)};'
            f'margin-right:12px">underline: {html.escape(name)}</span>'
            for t, name in enumerate(names)
        )
        out.append(f'<div style="font-size:12px;margin-top:6px">{legend}</div>')
    out.append("</div>")
    body = "\n".join(out)
    if not standalone:
        return body
    title = html.escape(heatmap.title or heatmap.panels[0].label)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
        f"<body>\n{body}\n</body></html>\n"
    )


# ----------------------------------------------------------------------------- LaTeX

# Inside \ttfamily every printable ASCII symbol is its own slot in the font (cmtt and T1 alike),
# so {\charN} prints it literally whatever its meaning to TeX: no special character can leak.
TEXT_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "_": r"\_",
    "^": r"\^{}",
    "~": r"\~{}",
    "<": r"$<$",
    ">": r"$>$",
    "|": r"$|$",
    "·": r"$\cdot$",
    "−": "-",
}
# A cell must be exactly one typewriter column wide whatever the font encoding (OT1 by default,
# T1 with fontenc). Raw Latin-1 works in both: OT1 builds accented letters and takes symbols
# from TS1, whose typewriter glyphs are one column. OT1 has no «, », Ð, ð, Þ, þ: see LETTERS.
SAFE_EXTRA = {chr(c) for c in range(0xA1, 0x100)} - set("«»ÐðÞþ")
# Symbols the kernel's TS1 (textcomp) gives one column wide in typewriter type.
TEXT_SYMBOLS = {
    "•": r"\textbullet",
    "€": r"\texteuro",
    "†": r"\textdagger",
    "‡": r"\textdaggerdbl",
    "™": r"\texttrademark",
    "←": r"\textleftarrow",
    "↑": r"\textuparrow",
    "↓": r"\textdownarrow",
    "−": r"\textminus",
    "‰": r"\textperthousand",
}
TEXT_SAFE = SAFE_EXTRA | set("‘’“”–—")  # roman and sans type has these in OT1 and T1
# OT1 typewriter has no curly quotes (“ is slot 92, a backslash): the roman ones fit a column.
ROMAN_QUOTES = {
    "‘": r"\textquoteleft",
    "’": r"\textquoteright",
    "“": r"\textquotedblleft",
    "”": r"\textquotedblright",
}

# Marks, dashes and symbols no font gives at one column in every encoding ($\hookleftarrow$ is
# two, OT1 typewriter prints an en dash as "{", math symbols keep their own size,
# not the column's): drawn as rules, which need no package and scale with the type. A bar is
# (x, y, width, height) in column widths from the cell's left edge and the baseline.
Bar = tuple[float, float, float, float]
AXIS, STROKE = 0.42, 0.09  # the height of a typewriter hyphen's middle, and its thickness


def shaft(start: float, end: float, height: float = AXIS) -> Bar:
    """A horizontal stroke, at the hyphen's height unless told."""
    return (start, height - STROKE / 2, end - start, STROKE)


def slices(start: float, end: float, count: int = 10):
    """(x, width, fraction of the way at its start) of vertical slices from start to end
    (either way): slanted and tapering shapes drawn with upright rules."""
    step = (end - start) / count
    for i in range(count):
        yield min(start + i * step, start + (i + 1) * step), abs(step), i / count


def arrow_head(base: float, tip: float, half: float = 0.28) -> list[Bar]:
    """A triangle from base to tip (either way) as vertical slices, each a little shorter."""
    bars = []
    for x, width, along in slices(base, tip):
        height = max(STROKE, 2 * half * (1 - along))
        bars.append((x, AXIS - height / 2, width, height))
    return bars


def chevron(tip: float, end: float, half: float = 0.26) -> list[Bar]:
    """An open angle (< when tip is left of end) as slices of its two arms: half a guillemet."""
    thick = 1.5 * STROKE  # a slanted arm's vertical thickness
    return [
        (x, AXIS + sign * half * along - thick / 2, width, thick)
        for x, width, along in slices(tip, end)
        for sign in (1, -1)
    ]


def slash(left: float, right: float, bottom: float, top: float) -> list[Bar]:
    """A stroke rising from (left, bottom) to (right, top)."""
    count = 10
    return [
        (x, bottom + (top - bottom) * along, width, (top - bottom) / count + 2 * STROKE)
        for x, width, along in slices(left, right, count)
    ]


def box(left: float, right: float, top: float) -> list[Bar]:
    """The outline of a rectangle standing on the baseline."""
    return [
        (left, 0, STROKE, top),
        (right - STROKE, 0, STROKE, top),
        (left, 0, right - left, STROKE),
        (left, top - STROKE, right - left, STROKE),
    ]


DRAWN: dict[str, list[Bar]] = {
    TAB_MARK: [shaft(0.08, 0.6), *arrow_head(0.52, 0.94)],
    NEWLINE_MARK: [
        (0.8, AXIS - STROKE / 2, STROKE, 1.15 - AXIS),  # the stem, up to about cap height
        shaft(0.3, 0.8 + STROKE),
        *arrow_head(0.4, 0.06),
    ],
    "–": [shaft(0.12, 0.88)],
    "—": [shaft(0.0, 1.0)],
    "«": [*chevron(0.1, 0.45), *chevron(0.45, 0.8)],
    "»": [*chevron(0.9, 0.55), *chevron(0.55, 0.2)],
    "‹": chevron(0.3, 0.65),
    "›": chevron(0.7, 0.35),
    "…": [(x, 0, 0.16, 0.16) for x in (0.04, 0.42, 0.8)],
    "≤": [*chevron(0.15, 0.85, half=0.3), shaft(0.15, 0.85, STROKE / 2)],
    "≥": [*chevron(0.85, 0.15, half=0.3), shaft(0.15, 0.85, STROKE / 2)],
    "≠": [shaft(0.1, 0.9, AXIS - 0.13), shaft(0.1, 0.9, AXIS + 0.13), *slash(0.3, 0.7, 0, 0.8)],
}
# What any other character prints as: an empty box (as a font shows a glyph it lacks), never
# "?", which the text may hold itself.
MISSING = box(0.15, 0.85, 1.1)


def drawn(bars: list[Bar]) -> str:
    return r"\probedraw{%s}" % "".join(r"\probebar{%.3f}{%.3f}{%.3f}{%.3f}" % bar for bar in bars)


def overdrawn(bars: list[Bar], letter: str) -> str:
    """A typewriter letter with bars drawn over it."""
    return drawn(bars)[:-1] + letter + "}"


# Letters OT1 lacks, made of ones it has: Ð and ð a D and d with a bar through their stems;
# þ a b over a p (one stem from ascender to descender, the bowl between); Þ a b raised a
# quarter column, its bowl at mid-height as in Þ, and its stem drawn down to the baseline.
LETTERS = {
    "Ð": overdrawn([(0.0, 0.5, 0.45, STROKE)], "D"),
    "ð": overdrawn([(0.45, 0.95, 0.5, STROKE)], "d"),
    "þ": r"\probecell{\rlap{b}p}",
    "Þ": overdrawn([(0.165, 0, 0.14, 0.3)], r"\raise0.25\fontcharwd\font`x\hbox{b}"),
}

# Every non-ASCII character TeX cannot take raw in a column, as what prints in its place.
TT_CHARS = {
    **{char: drawn(bars) for char, bars in DRAWN.items()},
    **LETTERS,
    CONTROL_MARK: r"\probecell{$\cdot$}",
    **{char: r"\probecell{\rmfamily%s}" % command for char, command in ROMAN_QUOTES.items()},
    **{char: "{%s}" % command for char, command in TEXT_SYMBOLS.items()},
    "\xad": "-",  # a soft hyphen, drawn as a hyphen
}


def tt_char(char: str) -> str:
    """One character for \\ttfamily, safe in any context and exactly one column wide."""
    if char.isascii() and char.isalnum():
        return char
    if char in " \xa0":
        return "~"
    if char.isascii() and char.isprintable():
        return "{\\char%d}" % ord(char)
    if char in TT_CHARS:
        return TT_CHARS[char]
    return char if char in SAFE_EXTRA else drawn(MISSING)


def text_escape(text: str) -> str:
    """Escape a label for ordinary (roman or sans) text."""
    return "".join(
        TEXT_ESCAPES.get(c, c if c.isascii() or c in TEXT_SAFE else tt_char(c)) for c in text
    )


def rgb_spec(color: np.ndarray) -> str:
    return "%d,%d,%d" % tuple(int(c) for c in color)


def colorbar_tex(panel, colormap: str) -> str:
    boxes = "".join(
        r"\colorbox[RGB]{%s}{\rule{2.5pt}{0pt}\rule{0pt}{1.2ex}}" % rgb_spec(color)
        for color in to_rgb(panel.colorbar_values(17), panel.limit, colormap, panel.low)
    )
    bottom, top = (label.replace("−", "$-$") for label in range_labels(panel.low, panel.limit))
    return r"\quad{\scriptsize %s\,}%s{\scriptsize \,%s}" % (bottom, boxes, top)


def track_indices(heatmap: TextHeatmap, panel, position: int) -> tuple[int, ...]:
    """Indices of the feature tracks that are on at a position of a panel."""
    return tuple(
        t
        for t, name in enumerate(heatmap.track_names)
        if name in panel.tracks and panel.tracks[name][position] != 0
    )


def track_hex(track: int) -> str:
    return track_color(track).lstrip("#").upper()


def underlines(tracks: tuple[int, ...], columns: int) -> str:
    """One colored rule per feature on, stacked from the box's bottom (2pt apart, as in HTML)."""
    return "".join(
        r"\probeunder{%s}{%d}{%.1fpt}" % (track_hex(t), columns, 1.5 * t) for t in tracks
    )


# The commands every .tex file defines (\providecommand: the first \input's stay).
LATEX_COMMANDS = [
    r"\providecommand{\probeheatmapfont}{\footnotesize}",
    r"\providecommand{\probecell}[1]{\makebox[\fontcharwd\font`x][c]{#1}}",
    # A drawn cell: rules \probebar{x}{y}{width}{height}, in column widths (see DRAWN).
    r"\providecommand{\probedraw}[1]{\makebox[\fontcharwd\font`x][l]{#1}}",
    r"\providecommand{\probebar}[4]{\rlap{\kern#1\fontcharwd\font`x"
    r"\rule[#2\fontcharwd\font`x]{#3\fontcharwd\font`x}{#4\fontcharwd\font`x}}}",
    # Feature k's underline: a rule inside the bottom of the last #2 columns (as in HTML).
    r"\providecommand{\probeunder}[3]{\llap{\textcolor[HTML]{#1}{\rule[\dimexpr"
    r"-\dp\strutbox+#3\relax]{#2\fontcharwd\font`x}{0.6pt}}}}",
]


def to_latex(heatmap: TextHeatmap) -> str:
    """LaTeX for \\input{}: one \\colorbox per run of equal color, every character escaped.

    The preamble needs \\usepackage{xcolor}; set \\probeheatmapfont before \\input to resize.
    """
    names = ", ".join(panel.label for panel in heatmap.panels)
    out = [
        f"% probe text heatmap: {text_escape(names)}",
        f"% colormap {heatmap.colormap}; each unit's colors span the range labelled.",
        "% Preamble needs: \\usepackage{xcolor} (either font encoding, the default OT1 or T1).",
        "% Use: \\input{this-file} (inside a figure environment if you like).",
        "% Resize: \\renewcommand{\\probeheatmapfont}{\\scriptsize} before \\input.",
        *LATEX_COMMANDS,
        r"\begingroup\setlength{\fboxsep}{0pt}\setlength{\fboxrule}{0.4pt}%",
        r"\setlength{\parindent}{0pt}\setlength{\parskip}{0pt}\probeheatmapfont",
    ]
    if heatmap.title:
        out.append(r"\strut\textbf{%s}\par" % text_escape(heatmap.title))
    for panel in heatmap.panels:
        colorbar = colorbar_tex(panel, heatmap.colormap_of(panel)) if heatmap.colorbar else ""
        out.append(
            r"\vspace{0.4ex}\strut{\sffamily %s}%s\par" % (text_escape(panel.label), colorbar)
        )
        out.append(r"{\offinterlineskip\ttfamily")
        rgb = heatmap.rgb(panel)
        inks = text_color(rgb)
        highlights = set(panel.highlights)
        on = [track_indices(heatmap, panel, position) for position in range(len(rgb))]
        keys = [(tuple(rgb[p]), p in highlights, on[p]) for p in range(len(rgb))]
        for line in panel.lines:
            pieces = []
            for start, end in runs(line, keys):
                position = line.positions[start]
                chars = "".join(tt_char(c) for g in line.glyphs[start:end] for c in g)
                if inks[position] == "#ffffff":
                    chars = r"\textcolor{white}{%s}" % chars
                box = r"\colorbox[RGB]{%s}{\strut %s}" % (rgb_spec(rgb[position]), chars)
                if position in highlights:
                    box = r"\kern-0.4pt\fcolorbox{black}[RGB]{%s}{\strut %s}\kern-0.4pt" % (
                        rgb_spec(rgb[position]),
                        chars,
                    )
                columns = int(line.widths[start:end].sum())  # a tab spans several
                pieces.append(box + underlines(on[position], columns))
            note = "~~" + "".join(tt_char(c) for c in line.note) if line.note else ""
            out.append("".join(pieces) + note + r"\par")
        out.append("}")
    if heatmap.track_names:
        legend = r"\quad ".join(
            r"\textcolor[HTML]{%s}{\rule[-0.3ex]{1.5em}{0.8pt}}~%s"
            % (track_hex(t), text_escape(name))
            for t, name in enumerate(heatmap.track_names)
        )
        out.append(r"\vspace{0.4ex}\strut{\sffamily underline: %s}\par" % legend)
    out.append(r"\endgroup")
    return "\n".join(out) + "\n"
