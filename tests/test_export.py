"""Export: open every written file and check it as a reader (or a reviewer's tools) would."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from probe.colors import to_hex
from probe.errors import ProbeError
from probe.export import export_plot, text_heatmap, top_contexts_sheet
from probe.features import compute
from probe.layout import TAB_STOP, layout_text
from tests.test_export_tex import compile_tex

SVG = "{http://www.w3.org/2000/svg}"
NASTY = 'if (a[i] & 0x1f) {\\n\tx = y % 2; // $cost_^2 ~ #3\n\t\tputs("{}\\\\");  /* <é> */\n'


def squeeze(text: str) -> str:
    return "".join(text.split())


def pdf_pages(data: bytes):
    from pypdf import PdfReader

    return PdfReader(io.BytesIO(data)).pages


@pytest.fixture(scope="module")
def heatmap(tiny_recording):
    return text_heatmap(
        tiny_recording, ["2:cell:3", "1:hidden:7"], 1000, 1600, width=60, features=["in_comment"]
    )


@pytest.fixture(scope="module")
def nasty_recording(tmp_path_factory, tiny_checkpoint):
    """A recording of text full of TeX, HTML and regex specials, tabs and non-ASCII."""
    from probe.record import record

    out = tmp_path_factory.mktemp("nasty") / "rec"
    return record(tiny_checkpoint, NASTY * 6, out, progress=False, twin=False)


def test_layout_wraps_keeps_newlines_and_expands_tabs():
    lines = layout_text("ab\tc\n" + "x" * 12 + "\n", width=5, tab_size=4)
    assert lines[0].glyphs == ["a", "b", "  ", "c", " "]  # the newline keeps a (blank) box
    assert list(lines[0].columns) == [0, 1, 2, 4, 5]  # the tab runs to the next stop
    assert [len(line.positions) for line in lines] == [5, 5, 5, 3]  # 12 x's wrap at 5
    assert all(int(l.columns[-1] + l.widths[-1]) <= 5 for l in lines[1:3])
    every = np.concatenate([line.positions for line in lines])
    assert list(every) == list(range(len("ab\tc\n" + "x" * 12 + "\n")))  # each char once
    marked = layout_text("\ta\n", width=10, show_whitespace=True)
    assert marked[0].glyphs == ["→" + " " * (TAB_STOP - 1), "a", "↵"]


def test_figures_put_each_line_at_the_column_the_indent_feature_counts(tiny_recording):
    # Kernel code is indented with tabs: a cell tracking `indent` must match the figure's columns.
    text = tiny_recording.text[:8000]
    indent = compute("indent", text)
    tabbed = 0
    for line in layout_text(text, width=10_000):  # one row per line of text
        chars = [text[p] for p in line.positions]
        first = next((i for i, char in enumerate(chars) if char not in " \t\n"), None)
        if first is not None:
            tabbed += "\t" in chars[:first]
            assert line.columns[first] == indent[line.positions[first]], chars
    assert tabbed > 50


def test_pdf_is_one_page_of_real_text_with_embedded_fonts(heatmap, tiny_recording):
    data = heatmap.to_bytes("pdf")
    pages = pdf_pages(data)
    assert len(pages) == 1
    extracted = squeeze(pages[0].extract_text())
    source = squeeze(tiny_recording.text[1000:1600])
    assert source[:200] in extracted and source[-100:] in extracted
    assert "layer2·cell3·r=" in extracted and "within_comment" in extracted
    fonts = pages[0]["/Resources"]["/Font"]
    for font in fonts.values():
        descendant = font.get_object()["/DescendantFonts"][0].get_object()
        assert "/FontFile2" in descendant["/FontDescriptor"]  # TrueType embedded, not referenced


def test_svg_has_one_box_per_character_with_the_dashboard_color(heatmap, tiny_recording):
    root = ET.fromstring(heatmap.to_bytes("svg"))
    assert root.find(f".//{SVG}image") is None  # vector, never a raster
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert squeeze(tiny_recording.text[1000:1100]) in squeeze(texts)
    for index, unit in enumerate(["2:cell:3", "1:hidden:7"]):
        group = root.find(f".//{SVG}g[@id='chars-{index}']")
        boxes = group.findall(f"{SVG}path")
        assert len(boxes) == 600
        values = tiny_recording.unit(unit, 1000, 1600)
        limit = float(np.abs(tiny_recording.unit(unit)).max())
        expected = to_hex(values, limit, "rdbu")
        for position in (0, 1, 137, 301, 599):
            fill = boxes[position].get("style").split("fill: ")[1][:7]
            assert fill == expected[position]
    assert root.find(f".//{SVG}g[@id='track-0']") is not None or "in_comment" in texts


def test_loss_panel_is_the_per_char_loss_in_bits(tiny_recording):
    figure = text_heatmap(tiny_recording, ["loss", "1:cell:0"], 0, 300)
    loss = -np.asarray(tiny_recording.logprob[:299], np.float64) / np.log(2)
    panel = figure.panels[0]
    assert panel.label == "per-char loss (bits)" and np.isnan(panel.values[0])
    assert np.allclose(panel.values[1:], loss, atol=1e-5)
    whole = tiny_recording.loss_bits()
    assert panel.limit == pytest.approx(np.percentile(whole[1:], 99))
    assert figure.panels[1].label.startswith("layer 1")
    with pytest.raises(ProbeError, match="bad unit 'los'"):
        text_heatmap(tiny_recording, ["los"], 0, 300)


def test_gates_and_loss_span_0_to_their_top_and_states_are_symmetric(tiny_recording):
    rdbu = [to_hex(value, 1.0, "rdbu")[0] for value in (-1.0, 0.0, 1.0)]  # bottom, centre, top
    assert to_hex([0.0, 0.5, 1.0], 1.0, "rdbu", low=0.0) == rdbu
    assert to_hex([np.nan], 1.0, "rdbu", low=0.0) == rdbu[1:2]  # no value: the centre
    figure = text_heatmap(tiny_recording, ["1:forget_gate:0", "1:cell:0", "loss"], 0, 200)
    gate, cell, loss = figure.panels
    assert (gate.low, gate.limit) == (0.0, 1.0) and cell.low is None and loss.low == 0.0
    # The loss runs from white (no surprise) up: the map's upper half, also in its colorbar.
    assert np.array_equal(figure.rgb(loss)[0], [0xF7, 0xF7, 0xF7])  # char 0: no loss to color
    assert to_hex([0.0, loss.limit], loss.limit, "rdbu:upper", 0.0) == rdbu[1:]
    tex = figure.to_bytes("tex").decode()
    assert "{\\scriptsize 0\\,}" in tex and "{\\scriptsize $-$" in tex  # gate's and cell's bars


def test_png_has_the_requested_size(heatmap):
    from PIL import Image

    width, height = heatmap.figure().get_size_inches() * 72  # laid out in whole points
    assert width == round(width) and height == round(height)
    for dpi in (72, 144):
        image = Image.open(io.BytesIO(heatmap.to_bytes("png", dpi=dpi)))
        assert image.size == (round(width * dpi / 72), round(height * dpi / 72))


def test_html_is_self_contained_and_notebook_friendly(heatmap):
    page = heatmap.to_bytes("html").decode("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "src=" not in page and "<link" not in page and "<script" not in page
    assert page.count('title="') == 2 * 600  # one hoverable span per character per panel
    # Only each line keeps its spaces (pre): a newline between lines' divs would show as a gap.
    lines = re.findall(r'<div style="white-space:pre">(.*?)</div>', page, re.S)
    assert page.count("white-space:pre") == len(lines) == sum(len(p.lines) for p in heatmap.panels)
    assert not any("\n" in line for line in lines)
    assert "<html" not in heatmap._repr_html_()


def test_a_notebook_computes_and_stores_one_small_rendering(heatmap):
    """Jupyter calls every _repr_*_ a result has and stores all their outputs in the notebook:
    an SVG beside the HTML cost seconds and megabytes a figure, and the dataclass's own repr
    (its text/plain) held every panel's text, layout and values."""
    rich = [name for name in dir(heatmap) if name.startswith("_repr_") and name != "_repr_html_"]
    assert rich == []
    labels = "; ".join(panel.label for panel in heatmap.panels)
    assert repr(heatmap) == f"<TextHeatmap of 600 chars: {labels}>"


def test_tex_with_every_special_character_compiles(nasty_recording, tmp_path):
    figure = text_heatmap(
        nasty_recording,
        ["1:cell:0", "2:hidden:5"],
        0,
        len(NASTY) * 2,
        width=40,
        show_whitespace=True,
        features=["re:[$%&#_^~]"],
    )
    figure.save(tmp_path / "heat.tex")
    top_contexts_sheet(nasty_recording, "1:cell:0", k=3, width=30).save(tmp_path / "sheet.tex")
    tex = (tmp_path / "heat.tex").read_text(encoding="utf-8")
    assert "\\documentclass" not in tex and "\\usepackage{xcolor}" in tex  # documented, not used
    assert "\\probeunder{E69F00}" in tex and "~re:[" in tex  # the feature's underlines, legend
    paper = compile_tex(tmp_path, "\\input{heat.tex}\n\\input{sheet.tex}", t1=True)
    pages = pdf_pages(paper.read_bytes())
    assert len(pages) == 1
    text = squeeze(pages[0].extract_text())
    assert "if(a[i]&0x1f)" in text and 'puts("{}' in text  # specials printed, not interpreted


def test_top_contexts_sheet_lines_are_the_strongest_contexts(tiny_recording):
    from probe.search import top_contexts

    sheet = top_contexts_sheet(tiny_recording, "2:cell:3", k=5, width=30)
    table = top_contexts(tiny_recording, "2:cell:3", 5, 30)
    (panel,) = sheet.panels
    assert len(panel.lines) == 5 and "top 5 contexts" in panel.label
    assert [line.note for line in panel.lines] == [f"{v:+.2f}" for v in table["value"]]
    peaks = [panel.values[p] for p in panel.highlights]
    np.testing.assert_allclose(peaks, table["value"], rtol=1e-3)
    peak_columns = {
        int(l.columns[list(l.positions).index(p)])
        for l, p in zip(panel.lines, panel.highlights, strict=True)
    }
    assert len(peak_columns) == 1  # every context aligned on its peak
    assert len(pdf_pages(sheet.to_bytes("pdf"))) == 1


def test_bad_input_gives_clear_errors(tiny_recording, tmp_path):
    with pytest.raises(ProbeError, match="index out of range"):
        text_heatmap(tiny_recording, "2:cell:999", 0, 100)
    with pytest.raises(ProbeError, match="bad unit"):
        text_heatmap(tiny_recording, "cell 3", 0, 100)
    with pytest.raises(ProbeError, match="outside the text"):
        text_heatmap(tiny_recording, "2:cell:3", 19_900, 20_100)
    with pytest.raises(ProbeError, match="range 25000:20000 is outside the text"):
        text_heatmap(tiny_recording, "2:cell:3", 25_000)  # `--range 25000:`, not 'empty'
    with pytest.raises(ProbeError, match="unknown colormap"):
        text_heatmap(tiny_recording, "2:cell:3", 0, 100, colormap="jet")
    with pytest.raises(ProbeError, match=r"--width \(width in Python\) must be in 1\.\.400"):
        text_heatmap(tiny_recording, "2:cell:3", 0, 100, width=20_000)
    with pytest.raises(ProbeError, match=r"--top \(k in Python\) must be in 1\.\.500"):
        top_contexts_sheet(tiny_recording, "2:cell:3", 100_000)
    with pytest.raises(ProbeError, match="a TextHeatmap writes itself: figure.save"):
        export_plot(text_heatmap(tiny_recording, "2:cell:3", 0, 100), "pdf")
    with pytest.raises(ProbeError, match="takes a Plotly figure, not a NoneType"):
        export_plot(None, tmp_path / "none.pdf")
    huge = text_heatmap(tiny_recording, "2:cell:3", 0, 2000, font_size=72)
    lower = r"lower --dpi \(dpi in Python\) or --font-size \(font_size in Python\)"
    with pytest.raises(ProbeError, match="pixels is too large; " + lower):  # not a bad_alloc
        huge.to_bytes("png", dpi=1200)
    figure = text_heatmap(tiny_recording, "2:cell:3", 0, 100)
    with pytest.raises(ProbeError, match="unknown export format 'docx'"):
        figure.save(tmp_path / "fig.docx")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(ProbeError, match="cannot write"):
        figure.save(tmp_path / "blocker" / "fig.pdf")
    out = figure.save(tmp_path / "fig.svg")
    with pytest.raises(ProbeError, match="--force"):
        figure.save(out)
    out.write_text("old")
    figure.save(out, force=True)
    assert out.read_text().startswith("<?xml")


def test_cli_writes_and_refuses_to_overwrite(tiny_recording, tmp_path, capsys):
    from probe.cli import main

    out = tmp_path / "fig.pdf"
    argv = [
        "export",
        "--recording",
        str(tiny_recording.path),
        "--unit",
        "2:cell:3",
        "--unit",
        "1:cell:5",
        "--range",
        "100:500",
        "--feature",
        "in_string",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert len(pdf_pages(out.read_bytes())) == 1
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "already exists" in error
    assert main(argv + ["--force"]) == 0
    sheet = tmp_path / "sheet.png"
    assert (
        main(
            [
                "export",
                "--recording",
                str(tiny_recording.path),
                "--unit",
                "2:cell:3",
                "--top",
                "4",
                "--out",
                str(sheet),
            ]
        )
        == 0
    )
    assert sheet.read_bytes().startswith(b"\x89PNG")
    assert main(argv[:-1] + [str(tmp_path / "fig.bmp")]) == 2
    capsys.readouterr()
    chars = tiny_recording.chars
    open_end = argv[:7] + ["--range", f"{chars - 300}:", "--out", str(tmp_path / "end.pdf")]
    assert main(open_end) == 0  # START: runs to the end of the text
    past_end = argv[:7] + ["--range", f"0:{chars + 10}", "--out", str(tmp_path / "past.pdf")]
    assert main(past_end) == 2
    error = capsys.readouterr().err  # refused before anything is drawn or said
    assert error.count("\n") == 1 and "outside the text" in error and "drawing" not in error


def test_plotly_figures_export_without_a_browser(tmp_path):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    lags = np.arange(1, 60)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("gradient decay", "search results"))
    fig.add_trace(go.Scatter(x=lags, y=np.exp(-lags / 9.0), name="trained"), 1, 1)
    fig.add_trace(
        go.Scatter(x=lags, y=np.exp(-lags / 3.0), name="random init", line={"dash": "dash"}), 1, 1
    )
    fig.update_yaxes(type="log", title_text="gradient norm", row=1, col=1)
    fig.add_trace(go.Bar(x=["2:cell:3", "1:cell:5"], y=[0.9, 0.4], name="score"), 1, 2)
    fig.add_hline(y=0.5, line_dash="dot", row=1, col=2)
    fig.update_layout(title="decay and search")
    text = pdf_pages(export_plot(fig, "pdf"))[0].extract_text()
    for words in ("gradient decay", "gradient norm", "random init", "2:cell:3", "decay and search"):
        assert words in text
    root = ET.fromstring(export_plot(fig, "svg"))
    assert root.find(f".//{SVG}image") is None
    out = tmp_path / "plot.png"
    assert export_plot(fig, out, dpi=50) == out.read_bytes()
    with pytest.raises(ProbeError, match="--force"):
        export_plot(fig, out)
    with pytest.raises(ProbeError, match="cannot export a Plotly 'pie' trace"):
        export_plot(go.Figure(go.Pie(values=[1, 2])), "pdf")


def test_probe_plots_export_with_their_titles_and_legends(tiny_recording, tiny_checkpoint):
    from probe.gradients import gradient_decay
    from probe.plots import decay_figure, saturation_figure, search_figure
    from probe.saturation import gate_saturation
    from probe.search import search

    text = tiny_recording.text[:3000]
    decay = gradient_decay(
        tiny_checkpoint, text, max_lag=20, positions=16, warmup=20, batch=16, label="tiny lstm"
    )
    figures = {
        "Gradient-norm decay": decay_figure(decay),
        "Gate saturation": saturation_figure(gate_saturation(tiny_recording)),
        "Best units per feature": search_figure(
            search(tiny_recording, ["in_comment"], kinds=["cell"], top=5)
        ),
    }
    for title, figure in figures.items():
        extracted = pdf_pages(export_plot(figure, "pdf"))[0].extract_text()
        assert title in extracted
        root = ET.fromstring(export_plot(figure, "svg"))
        assert root.find(f".//{SVG}image") is None
    assert (
        "tiny lstm · layer 2 cell"
        in pdf_pages(export_plot(figures["Gradient-norm decay"], "pdf"))[0].extract_text()
    )
