"""Text in character cells: where each character of a figure sits, and what is drawn there.

Shared by every export format (`probe.draw` draws the cells, `probe.markup` writes them as
HTML or LaTeX), so a figure's columns are the same in each. One box per character: a tab
spans the columns to its tab stop, a newline keeps a box of its own, and a character the
monospace font cannot draw in one column is drawn as a stand-in.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

TAB_MARK, NEWLINE_MARK, CONTROL_MARK = "→", "↵", "·"
# Columns between tab stops, for figures, the `indent` feature and the dashboard's text alike:
# 8, as Python, C compilers, terminals and the Linux kernel's style count a tab.
TAB_STOP = 8
INVISIBLE = ("Cc", "Cf", "Zl", "Zp")  # Unicode categories: control, format, line/para separator
COMBINING = ("Mn", "Me")
MONO_FONT = "DejaVu Sans Mono"  # ships with matplotlib, so every machine draws the same glyphs
LABEL_FONT = "DejaVu Sans"


@dataclass
class Line:
    """One row of a figure: which characters sit in which columns, and what is drawn there."""

    positions: np.ndarray  # index of each box's character in the panel text
    columns: np.ndarray  # first column of each box
    widths: np.ndarray  # columns each box spans (a tab spans several)
    glyphs: list[str]  # the string drawn in each box (as wide as the box)
    note: str = ""  # drawn right of the line (the sheet puts the unit's value there)


@lru_cache(maxsize=4096)
def drawable(char: str) -> bool:
    """Whether the monospace font has a glyph for char (others would break column alignment)."""
    from matplotlib import font_manager, ft2font

    font = ft2font.FT2Font(font_manager.findfont(font_manager.FontProperties(family=MONO_FONT)))
    return font.get_char_index(ord(char)) != 0


def glyph(char: str, show_whitespace: bool) -> str:
    """What one ordinary (not tab, not newline) character is drawn as, one column wide.

    Control and format characters (a byte-order mark, a zero-width space) have no glyph of
    their own and combining marks draw over the character before: none fills its column."""
    if char == " ":
        return " "
    category = unicodedata.category(char)
    if category in INVISIBLE:
        return CONTROL_MARK if show_whitespace else " "
    return char if category not in COMBINING and drawable(char) else "?"


def layout_text(
    text: str,
    width: int,
    show_whitespace: bool = False,
    tab_size: int = TAB_STOP,
    wrap: bool = True,
) -> list[Line]:
    """Place characters in rows of at most `width` columns.

    A newline ends its row (it keeps a box of its own at the row's end, so its value shows);
    tabs expand to the next tab stop; rows longer than `width` wrap. With `wrap=False` (the sheet)
    everything stays on one row and newlines are drawn as a mark.
    """
    lines: list[Line] = []
    row: list[tuple[int, int, int, str]] = []
    column = 0

    def end_row() -> None:
        nonlocal row, column
        positions, columns, widths, glyphs = zip(*row) if row else ((), (), (), ())
        lines.append(
            Line(
                np.array(positions, int),
                np.array(columns, int),
                np.array(widths, int),
                list(glyphs),
            )
        )
        row, column = [], 0

    for position, char in enumerate(text):
        span = 1
        if char == "\t":
            span = tab_size - column % tab_size
            if wrap:
                span = max(1, min(span, width - column))
            shown = (TAB_MARK if show_whitespace else " ") + " " * (span - 1)
        elif char == "\n":
            shown = NEWLINE_MARK if show_whitespace or not wrap else " "
        else:
            shown = glyph(char, show_whitespace)
        if wrap and column + span > width and row and char != "\n":  # a newline may overhang
            end_row()
        row.append((position, column, span, shown))
        column += span
        if wrap and char == "\n":
            end_row()
    if row or not lines:
        end_row()
    return lines
