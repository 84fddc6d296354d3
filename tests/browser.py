"""Serving the dashboard on real tiny recordings and driving it in headless Chromium: the
fixtures and checks the browser tests share (not a test module itself)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from probe.colors import kind_low, symmetric_limit, to_rgb
from probe.units import Unit

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
TIMEOUT = 30_000  # ms for one step; the machine may be busy

# The spans on screen: start, and per char its text and computed colors.
READ_SPANS = """() => {
  const body = document.getElementById('text-body');
  return {start: Number(body.dataset.start), key: body.dataset.key,
          spans: Array.from(body.getElementsByTagName('span')).map((s) => [s.textContent, getComputedStyle(s).backgroundColor])};
}"""


CRLF_TEXT = "int x = 1;\r\n\x0c/* two 😀 */\r\n"


@pytest.fixture(scope="module")
def crlf_recording(tiny_checkpoint, tmp_path_factory):
    """A short recording of text with Windows line ends (as War and Peace has), a form feed, a
    byte-order mark and an emoji (two UTF-16 code units), of states only (no gates)."""
    from probe.record import record

    text = "\ufeff" + CRLF_TEXT * 100
    out = tmp_path_factory.mktemp("rec") / "crlf"
    return record(tiny_checkpoint, text, out, kinds=["cell", "hidden"], twin=False, progress=False)


@pytest.fixture(scope="module")
def server(tiny_recording, crlf_recording):
    """The dashboard served from a background thread on a free localhost port."""
    from werkzeug.serving import make_server

    from dashboards import build_app

    app = build_app([tiny_recording, crlf_recording])
    http = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}/"
    http.shutdown()


@pytest.fixture(scope="module")
def page(server):
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (make browser installs Debian's chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(TIMEOUT)
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("request", lambda r: errors.append(f"external request {r.url}")
                if not r.url.startswith(server) else None)  # fmt: skip
        page.probe_errors = errors
        yield page
        browser.close()
    assert not errors, errors


def wait_for_key(page, contains: str) -> dict:
    page.wait_for_function(
        "(s) => (document.getElementById('text-body')?.dataset.drawn || '').includes(s)",
        arg=contains,
    )
    return page.evaluate(READ_SPANS)


FOCUS_IN_VIEW = """() => {
  const body = document.getElementById('text-body');
  const box = body.getBoundingClientRect();
  const focus = body.querySelector('.focus').getBoundingClientRect();
  return body.scrollHeight > body.clientHeight && focus.top >= box.top && focus.bottom <= box.bottom;
}"""


def check_colors(shown: dict, recording, unit: str) -> None:
    """Every span shows its char with the recording's value through the shared colormap."""
    start, spans = shown["start"], shown["spans"]
    assert "".join(text for text, _ in spans) == recording.text[start : start + len(spans)]
    values = recording.unit(unit, start, start + len(spans))
    low = kind_low(Unit.parse(unit).kind)  # gates: 0 to 1
    top = 1.0 if low is not None else symmetric_limit(recording.unit(unit))
    expected = to_rgb(values, top, "rdbu", low)
    got = np.array([[int(x) for x in color[4:-1].split(",")[:3]] for _, color in spans])
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


# Each top context: its position, the snippet's chars, colors and which char is outlined.
READ_CONTEXTS = """() => Array.from(document.querySelectorAll('.contexts .goto')).map((b) => ({
  position: Number(b.querySelector('.ctx-label').textContent.split(' ')[0].slice(1)),
  text: Array.from(b.querySelectorAll('.ctx-text span')).map((s) => s.textContent).join(''),
  colors: Array.from(b.querySelectorAll('.ctx-text span')).map((s) => getComputedStyle(s).backgroundColor),
  peak: Array.from(b.querySelectorAll('.ctx-text span')).findIndex((s) => s.classList.contains('ctx-peak')),
}))"""


def check_contexts(page, recording, unit: str, before: str = "") -> str:
    """The snippets show the unit's strongest chars in the text view's colors (once they are
    no longer those painted `before`); returns what is painted now."""
    painted = page.wait_for_function(
        """(before) => {
          const spans = Array.from(document.querySelectorAll('.contexts .ctx-text'));
          const painted = spans.map((s) => s.dataset.painted || '').join(';');
          return spans.length && spans.every((s) => s.dataset.painted) && painted !== before
            && painted;
        }""",
        arg=before,
    ).json_value()
    limit = symmetric_limit(recording.unit(unit))
    for shown in page.evaluate(READ_CONTEXTS):
        start = shown["position"] - shown["peak"]
        stop = start + len(shown["text"])
        assert shown["text"].replace("↵", "\n") == recording.text[start:stop]
        expected = to_rgb(recording.unit(unit, start, stop), limit, "rdbu")
        got = np.array([[int(x) for x in c[4:-1].split(",")[:3]] for c in shown["colors"]])
        assert np.abs(got - expected.astype(int)).max() <= 1
    return painted
