"""The text view in headless Chromium on awkward text (Windows line ends, a form feed, a
byte-order mark, emoji), the loss coloring and the brush's kinds."""

from __future__ import annotations

import numpy as np
import pytest

from probe.colors import percentile_limit, symmetric_limit, to_rgb
from probe.layout import layout_text
from tests.browser import CRLF_TEXT, wait_for_key

pytestmark = pytest.mark.browser


def test_crlf_text_is_single_spaced(page, server):
    # A CR in the text view's pre-formatted spans would break the line: it shows as a mark.
    page.goto(server + "?rec=1&unit=1:cell:0&pos=0")
    wait_for_key(page, "1|unit|")
    tops = page.evaluate(
        """() => Array.from(document.querySelectorAll('#text-body span'))
            .slice(0, 60).map((s) => Math.round(s.getBoundingClientRect().top))"""
    )
    text = "\ufeff" + CRLF_TEXT * 3
    lines = [text[:i].count("\n") for i in range(60)]  # each char's line
    line_height = tops[lines.index(1)] - tops[0]
    assert line_height > 0
    expected = [tops[0] + line * line_height for line in lines]
    assert all(abs(top - want) <= 1 for top, want in zip(tops, expected, strict=True)), tops


def test_each_char_is_one_span_in_its_color_whatever_its_utf16_length(page, server, crlf_recording):
    page.goto(server + "?rec=1&unit=1:cell:0&pos=0")
    shown = wait_for_key(page, "1|unit|")
    text, spans = crlf_recording.text, shown["spans"]
    assert shown["start"] == 0 and len(spans) == len(text)  # all of it fits one window
    invisible = {"\ufeff", "\r", "\x0c"}  # drawn as a mark, from CSS
    assert [t for t, _ in spans] == ["" if c in invisible else c for c in text]
    limit = symmetric_limit(crlf_recording.unit("1:cell:0"))
    expected = to_rgb(crlf_recording.unit("1:cell:0"), limit, "rdbu")
    got = np.array([[int(x) for x in color[4:-1].split(",")[:3]] for _, color in spans])
    assert np.abs(got - expected.astype(int)).max() <= 1  # after the emojis too


def test_loss_is_colored_white_up(page, server, tiny_recording):
    # The per-char loss takes the map's upper half: no surprise (and char 0, unpredicted)
    # white, the 99th percentile the map's top; as the exports color it.
    page.goto(server + "?rec=0&unit=1:cell:0&pos=0&color=loss")
    shown = wait_for_key(page, "0|loss|")
    start, spans = shown["start"], shown["spans"]
    whole = tiny_recording.loss_bits()
    expected = to_rgb(whole[start : start + len(spans)], percentile_limit(whole), "rdbu:upper", 0.0)
    got = np.array([[int(x) for x in color[4:-1].split(",")[:3]] for _, color in spans])
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert tuple(got[0]) == (0xF7, 0xF7, 0xF7)  # char 0 has no loss: white


def test_brush_offers_only_the_kinds_of_the_recording_shown(page, server):
    enabled = """() => Array.from(document.querySelectorAll('#brush-kinds input'))
        .filter((box) => !box.disabled).map((box) => box.value).sort().join(',')"""
    page.goto(server + "?rec=1&unit=1:cell:0&pos=0")
    wait_for_key(page, "1|unit|")
    page.wait_for_function(f"() => ({enabled})() === 'cell,hidden'")
    page.goto(server + "?rec=0&unit=1:cell:0&pos=0")
    wait_for_key(page, "0|unit|")
    page.wait_for_function(f"() => ({enabled})().split(',').length === 6")


def test_tabs_reach_the_columns_figures_put_them_at(page, server, tiny_recording):
    # Kernel code, indented with tabs: the text view and the figures must agree on columns.
    page.goto(server + "?rec=0&unit=1:cell:0&pos=0")
    shown = wait_for_key(page, "|1:cell:0|")
    lefts = page.evaluate(
        """() => Array.from(document.querySelectorAll('#text-body span'))
            .map((s) => s.getBoundingClientRect().left)"""
    )
    start = shown["start"]
    text = tiny_recording.text[start : start + len(lefts)]
    rows = [row for row in layout_text(text, width=10_000) if "\t" in text[row.positions[0]]]
    assert len(rows) > 20
    column = np.median(np.diff(lefts)[[text[i] not in "\t\n" for i in range(len(text) - 1)]])
    for row in rows:
        drawn = np.array(lefts)[row.positions] - lefts[row.positions[0]]
        assert np.allclose(drawn, row.columns * column, atol=1), (row.columns, drawn / column)
