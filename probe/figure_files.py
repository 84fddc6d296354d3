"""Figure files: the export formats, matplotlib figures as bytes, atomic writes.

Shared by `probe.export` (text heatmaps) and `export_plot` (any Plotly figure of the
dashboard, redrawn with matplotlib so no browser is needed).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from probe.errors import ProbeError, argument, option

FORMATS = ("pdf", "svg", "png", "tex", "html")
MAX_PNG_PIXELS = 2**28  # 1 GiB of RGBA pixels to draw into
# Text figures past these are unreadable, and past ~200 inches a side PDF viewers give up.
MAX_CHARS = 20_000  # a range to draw: the dashboard scrolls through longer ones
MAX_COLUMNS = 400  # a line: ~30 inches at 9 pt
MAX_CONTEXTS = 500  # lines of a --top sheet: ~80 inches tall at 9 pt


def check_format(fmt: str) -> str:
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ProbeError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    return fmt


def format_of(path: Path) -> str:
    """The export format named by a file's extension."""
    if not path.suffix:
        raise ProbeError(f"{path} has no extension; end it with one of .{', .'.join(FORMATS)}")
    return check_format(path.suffix)


def figure_bytes(figure, fmt: str, dpi: int = 300, tight: bool = False) -> bytes:
    """A matplotlib figure as pdf/svg/png bytes, with fonts embedded and text kept as text.

    `tight` crops to the drawn content (plots, whose tick labels vary); heatmaps are laid out
    to the point and keep their exact size, so a PNG is exactly size x dpi pixels.
    """
    import matplotlib

    if fmt not in ("pdf", "svg", "png"):
        raise ProbeError(f"unknown format {fmt!r} for a plot; choose from pdf, svg, png")
    if dpi < 1:
        raise ProbeError(f"{argument('dpi')} must be positive, got {dpi}")
    width, height = (round(inches * dpi) for inches in figure.get_size_inches())
    if fmt == "png" and width * height > MAX_PNG_PIXELS:  # Agg would die allocating it
        raise ProbeError(
            f"a PNG of {width:,} x {height:,} pixels is too large; lower {argument('dpi')} or "
            f"{argument('font_size')}, "
            "show fewer chars, or export .pdf or .svg"
        )
    # TrueType (42) embeds the font so PDF text is selectable; "none" keeps SVG text as <text>.
    # No hinting: hinted glyphs snap to whole pixels and come out wider than the column grid
    # in a PNG (at 100 dpi an 80-char line lost its last 6 chars off the figure's edge).
    style = {
        "pdf.fonttype": 42,
        "svg.fonttype": "none",
        "svg.hashsalt": "probe",
        "text.hinting": "none",
    }
    buffer = io.BytesIO()
    with matplotlib.rc_context(style):
        figure.savefig(
            buffer,
            format=fmt,
            dpi=dpi,
            metadata=METADATA.get(fmt),
            bbox_inches="tight" if tight else None,
            pad_inches=0.05,
        )
    data = buffer.getvalue()
    if fmt == "svg":  # keep runs of spaces inside <text>, or columns of code would shift
        data = data.replace(b"<svg ", b'<svg xml:space="preserve" ', 1)
    return data


METADATA = {"pdf": {"Creator": "probe", "CreationDate": None}, "svg": {"Date": None}, "png": {}}


def save_bytes(data: bytes, path: str | Path, force: bool = False) -> Path:
    """Write data to path atomically; an existing file is replaced only with force."""
    path = Path(path)
    if path.is_dir():
        raise ProbeError(f"{path} is a folder; give a file name like {path / 'figure.pdf'}")
    if path.exists() and not force:
        raise ProbeError(f"{path} already exists (pass {option('force')} to overwrite it)")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as error:
        raise ProbeError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def export_plot(fig, out: str | Path, dpi: int = 300, force: bool = False) -> bytes:
    """A Plotly figure as static pdf/svg/png bytes, redrawn with matplotlib (no browser needed).

    `out` is a format name ("pdf") or a file path (written, refusing to overwrite unless force).
    """
    import plotly.graph_objects as go

    from probe.plotly_static import plotly_to_matplotlib

    if not isinstance(fig, go.Figure):  # e.g. a TextHeatmap, which writes itself
        what = type(fig).__name__
        save = "; a TextHeatmap writes itself: figure.save(path)" if what == "TextHeatmap" else ""
        raise ProbeError(f"export_plot takes a Plotly figure, not a {what}{save}")
    is_format = str(out).lower().lstrip(".") in FORMATS
    fmt = str(out).lower().lstrip(".") if is_format else format_of(Path(out))
    data = figure_bytes(plotly_to_matplotlib(fig), fmt, dpi, tight=True)
    if not is_format:
        save_bytes(data, out, force)
    return data
