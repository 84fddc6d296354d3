"""The .tex export under the default OT1 font encoding and T1: one column per character, the
right glyphs, underlines as long as the text they underline."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from probe.export import text_heatmap, top_contexts_sheet
from probe.layout import CONTROL_MARK, NEWLINE_MARK, TAB_MARK
from probe.markup import LATEX_COMMANDS, TEXT_SYMBOLS, tt_char

PROSE = "He said “x² ± ½ × 3” — fine – ‘yes’; £5 © µ°\n\tx = “a”;\n"
OT1_LACKS = "«»‹›ÐðÞþ…≤≥≠"  # drawn or built from letters OT1 has
TEXT = PROSE + "«Það» ‹Ð› þ… λ ≤ ≥ ≠\n"
ELSEWHERE = "λ"  # a character no construction covers: an empty box
CELLS = [TAB_MARK, NEWLINE_MARK, CONTROL_MARK, *"“”‘’–—²±½×£µ°é|@W", *TEXT_SYMBOLS, *OT1_LACKS]
CELLS += [ELSEWHERE]
BIG = "©"  # TS1's typewriter © overhangs its one-column advance by under a point each side
DPI = 722.7  # 10 pixels per TeX point


def compile_tex(folder: Path, body: str, t1: bool) -> Path:
    """Compile a document around body with only xcolor (and T1 if asked); return its PDF."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-base)")
    encoding = "\\usepackage[T1]{fontenc}\n" if t1 else ""
    (folder / "doc.tex").write_text(
        f"\\documentclass{{article}}\n{encoding}\\usepackage{{xcolor}}\n\\pagestyle{{empty}}\n"
        f"\\begin{{document}}\n{body}\n\\end{{document}}\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    assert "Missing character" not in (folder / "doc.log").read_text(errors="replace")
    return folder / "doc.pdf"


def ink_columns(pdf: Path) -> np.ndarray:
    """x positions (points from the page's left edge) of dark pixels in the page's first 60pt."""
    from PIL import Image

    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm not installed (apt-get install poppler-utils)")
    png = subprocess.run(
        ["pdftoppm", "-r", str(DPI), "-W", "600", "-png", "-singlefile", str(pdf)],
        capture_output=True,
        check=True,
    ).stdout
    dark = np.asarray(Image.open(io.BytesIO(png)).convert("L")) < 160
    return np.flatnonzero(dark.any(axis=0)) / (DPI / 72.27)


@pytest.mark.parametrize("t1", [False, True], ids=["OT1", "T1"])
def test_every_cell_keeps_its_ink_inside_one_column(tmp_path, t1):
    # Each character alone on a line, its cell from 20pt to 20pt + one cmtt10 column (5.25pt),
    # the big one's from 40pt: ink anywhere else would overprint a neighbour in the figure.
    lines = [r"\hbox{\kern20pt %s}" % tt_char(char) for char in CELLS]
    lines += [r"\hbox{\kern40pt %s}" % tt_char(char) for char in BIG]
    body = "\n".join([*LATEX_COMMANDS, r"\hoffset=-1in \oddsidemargin=0pt \ttfamily", *lines])
    ink = ink_columns(compile_tex(tmp_path, body, t1))
    small, big = ink[ink < 30], ink[ink >= 30]
    assert small.min() >= 20 - 0.3 and small.max() <= 25.25 + 0.3, (small.min(), small.max())
    assert big.min() >= 40 - 1 and big.max() <= 45.25 + 1, (big.min(), big.max())


@pytest.fixture(scope="module")
def prose_recording(tmp_path_factory, tiny_checkpoint):
    from probe.record import record

    out = tmp_path_factory.mktemp("prose") / "rec"
    return record(tiny_checkpoint, TEXT * 4, out, progress=False, twin=False)


def test_quotes_dashes_and_latin1_print_right_with_only_xcolor(prose_recording, tmp_path):
    from pypdf import PdfReader

    text_heatmap(prose_recording, ["1:cell:0"], 0, len(TEXT) * 2, width=40).save(
        tmp_path / "heat.tex"
    )
    top_contexts_sheet(prose_recording, "1:cell:0", k=2, width=30).save(tmp_path / "sheet.tex")
    source = (tmp_path / "heat.tex").read_text(encoding="utf-8")
    assert "?" not in source  # ², ±, ½, ×, £, ©, µ, °, «, Þ, ð, ≤ ... are all printed
    assert "fontenc" not in source  # the default encoding is enough
    pdf = compile_tex(tmp_path, "\\input{heat.tex}\n\\input{sheet.tex}", t1=False)
    printed = PdfReader(pdf).pages[0].extract_text()
    for glyph in "“”‘’²±½£©µ°":  # (× comes out of the bitmap TS1 font as another letter)
        assert glyph in printed
    assert not set("\\|{") & set(printed)  # OT1 typewriter's slots for “, — and –


def test_characters_ot1_lacks_print_as_themselves_and_others_as_a_box():
    shown = [tt_char(char) for char in OT1_LACKS]
    assert len(set(shown)) == len(shown)  # each its own shape
    assert tt_char("?") not in [*shown, tt_char(ELSEWHERE)]  # a "?" in the text stays the one
    assert tt_char(ELSEWHERE) == tt_char("\u2603") not in shown  # any other: the same box


def underline_columns(row: str) -> int:
    return sum(int(n) for n in re.findall(r"\\probeunder\{[0-9A-F]{6}\}\{(\d+)\}", row))


def test_underlines_span_the_columns_of_tabs(prose_recording):
    heatmap = text_heatmap(
        prose_recording, ["1:cell:0"], 0, len(PROSE), width=60, features=["re:[^\\n]"]
    )
    (panel,) = heatmap.panels
    on = panel.tracks["re:[^\\n]"] != 0
    rows = [
        row
        for row in heatmap.to_bytes("tex").decode().splitlines()
        if row.startswith("\\colorbox[RGB]")
    ]
    assert len(rows) == len(panel.lines) == 2, rows
    for row, line in zip(rows, panel.lines, strict=True):
        expected = int(line.widths[on[line.positions]].sum())
        assert underline_columns(row) == expected
    assert expected > len(line.positions) - 1  # the second row starts with a tab of 8 columns
