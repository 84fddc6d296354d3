"""Drawn figures (PDF/SVG/PNG): what is laid out fits the page, and every character one column."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from probe.draw import MAX_PAGE, text_width
from probe.errors import ProbeError
from probe.export import text_heatmap, top_contexts_sheet
from probe.layout import layout_text
from tests.test_export import SVG, pdf_pages

# Tabs before every line's code, and a byte-order mark, a zero-width space and a combining
# accent, as text from Windows editors and the web has.
TABBED = "\ufeff" + "".join(
    "\t" * (i % 4) + f"x{i} = {i};" + "\t" * (i % 3) + '/* cafe\u0301 */ puts("a\u200bb");\n'
    for i in range(300)
)


@pytest.fixture(scope="module")
def tabbed_recording(tmp_path_factory, tiny_checkpoint):
    from probe.record import record

    out = tmp_path_factory.mktemp("tabbed") / "rec"
    return record(tiny_checkpoint, TABBED, out, progress=False, twin=False)


def test_invisible_and_combining_characters_keep_one_column_each():
    (line,) = layout_text("\ufeffa\u200bb e\u0301", width=20)
    assert line.glyphs == [" ", "a", " ", "b", " ", "e", "?"]
    (marked,) = layout_text("\ufeffa", width=20, show_whitespace=True)
    assert marked.glyphs == ["·", "a"]


def test_text_with_a_byte_order_mark_draws_in_every_format(tabbed_recording):
    figure = text_heatmap(tabbed_recording, ["1:cell:0"], 0, 200, width=40)
    for fmt in ("pdf", "svg", "png"):
        assert figure.to_bytes(fmt, dpi=50)  # the PDF backend failed on U+FEFF
    (page,) = pdf_pages(figure.to_bytes("pdf"))
    assert "x1 = 1;" in page.extract_text()


def test_sheet_aligns_peaks_by_column_when_tabs_come_before_them(tabbed_recording):
    sheet = top_contexts_sheet(tabbed_recording, "1:cell:0", k=12, width=24)
    (panel,) = sheet.panels
    peaks = [
        int(line.columns[list(line.positions).index(peak)])
        for line, peak in zip(panel.lines, panel.highlights, strict=True)
    ]
    tabs = [panel.text[line.positions[0] : peak].count("\t") for line, peak in
            zip(panel.lines, panel.highlights, strict=True)]  # fmt: skip
    assert len(set(tabs)) > 1  # contexts with different tabs before their peak: the case
    assert len(set(peaks)) == 1


def test_long_titles_and_labels_fit_the_page(tiny_recording):
    """The page is as wide as its widest label row, title and legend, measured in the font."""
    title = "A title much longer than the twenty columns of text below it, " * 2
    figure = text_heatmap(
        tiny_recording, ["1:cell:0"], 0, 100, width=20, title=title,
        features=["in_comment", "re:[a-z]+_[a-z]+", "brace_depth"],
    )  # fmt: skip
    drawn = figure.figure()
    drawn.canvas.draw()
    page = drawn.bbox.width  # pixels at the figure's dpi
    for text in drawn.axes[0].texts:
        box = text.get_window_extent()
        assert box.x0 >= 0 and box.x1 <= page, text.get_text()
    label_row = [t for t in drawn.axes[0].texts if t.get_text().startswith("layer 1")]
    colorbar_label = [t for t in drawn.axes[0].texts if t.get_text().startswith("−")]
    assert label_row[0].get_window_extent().x1 < colorbar_label[0].get_window_extent().x0


def test_text_width_is_measured():
    assert text_width("iiii", 9) < text_width("MMMM", 9) < text_width("MMMM", 18)


def test_a_page_past_what_viewers_draw_is_refused(tiny_recording):
    rows = 2 * int(MAX_PAGE / (1.3 * 4))  # a char or two a row at 4 pt: over the limit
    figure = text_heatmap(tiny_recording, ["1:cell:0"], 0, rows, width=1, font_size=4)
    with pytest.raises(ProbeError, match="inches: PDF viewers draw no more than 200"):
        figure.to_bytes("pdf")
    assert figure.to_bytes("html")  # a web page may be long


def test_svg_ids_are_unique_and_text_falls_back_to_any_monospace(tiny_recording):
    figure = text_heatmap(
        tiny_recording, ["1:cell:0", "2:cell:1"], 0, 400, features=["in_comment", "brace_depth"]
    )
    svg = figure.to_bytes("svg").decode()
    ids = Counter(re.findall(r'id="([^"]*)"', svg))
    assert [name for name, count in ids.items() if count > 1] == []
    root = ET.fromstring(svg)
    assert root.find(f".//{SVG}g[@id='track-1-1']") is not None
    fonts = {t.get("style") for t in root.iter(f"{SVG}text") if "Mono" in (t.get("style") or "")}
    assert fonts and all(style.rstrip("; ").split("font-family: ")[1].count("monospace") for
                         style in fonts)  # fmt: skip
