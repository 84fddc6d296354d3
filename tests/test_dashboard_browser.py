"""End to end: serve the dashboard on a real tiny recording and drive it in headless Chromium.

Set PROBE_SCREENSHOT=docs/dashboard.png to refresh the README screenshot from this run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import FOCUS_IN_VIEW, check_colors, check_contexts, wait_for_key

pytestmark = pytest.mark.browser


def test_dashboard_end_to_end(page, server, tiny_recording, tmp_path):
    # Load a bookmarked view: the unit and window come from the URL.
    page.goto(server + "?rec=0&unit=2:cell:3&pos=5000")
    shown = wait_for_key(page, "|2:cell:3|")
    check_colors(shown, tiny_recording, "2:cell:3")
    assert shown["start"] <= 5000 < shown["start"] + len(shown["spans"])
    assert page.evaluate(FOCUS_IN_VIEW)  # the view scrolled to the bookmarked char

    # Hover shows index, value and features.
    focus = page.locator("#text-body span.focus")
    focus.hover()
    title = focus.get_attribute("title")
    value = tiny_recording.unit("2:cell:3", 5000, 5001)[0]
    assert title.startswith("#5000") and f"layer 2 · cell 3 = {value:.3f}" in title

    # Pick a unit: the next-unit key (j) and the index box; the URL follows.
    page.locator("body").press("j")
    check_colors(wait_for_key(page, "|2:cell:4|"), tiny_recording, "2:cell:4")
    page.wait_for_function("() => location.search.includes('unit=2%3Acell%3A4')")  # URL follows
    page.fill("#index-input", "9")
    page.press("#index-input", "Enter")
    check_colors(wait_for_key(page, "|2:cell:9|"), tiny_recording, "2:cell:9")

    # Feature tracks and search: a regex feature, search, click the best unit.
    page.fill("#regex-input", "[{}]")
    page.press("#regex-input", "Enter")
    wait_for_key(page, "re:[{}]")
    assert "re:[{}]" in page.inner_text("#legend")
    page.click("#search-button")
    best = page.locator(".search-table .goto").first
    best.wait_for()
    unit = best.inner_text()
    assert page.inner_text("#search-stale") == ""
    best.click()
    check_colors(wait_for_key(page, f"|{unit}|"), tiny_recording, unit)
    page.fill("#regex-input", "[()]")  # the table shown is for [{}]: it says so
    page.press("#regex-input", "Enter")
    page.wait_for_function("() => document.getElementById('search-stale').innerText !== ''")
    assert "search again" in page.inner_text("#search-stale")

    # Brush: drag across the first block comment's interior, find units, jump to a match.
    page.goto(server + "?rec=0&unit=1:cell:0&pos=0")
    wait_for_key(page, "|1:cell:0|")
    start = tiny_recording.text.index("/*") + 3
    stop = tiny_recording.text.index("*/", start) - 1
    spans = page.locator("#text-body span")
    spans.nth(start).scroll_into_view_if_needed()
    a, b = spans.nth(start).bounding_box(), spans.nth(stop - 1).bounding_box()
    page.mouse.move(a["x"] + 1, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] - 1, b["y"] + b["height"] / 2, steps=5)
    page.mouse.up()
    assert page.input_value("#brush-start") == str(start)
    assert page.input_value("#brush-stop") == str(stop)
    selected = "(s) => getComputedStyle(s, '::selection').backgroundColor"  # the view's, inherited
    assert spans.nth(start).evaluate(selected) == "rgba(255, 215, 0, 0.55)"
    page.mouse.click(5, 5)  # the selection goes; the brushed span stays marked
    page.wait_for_function(
        "(n) => document.querySelectorAll('#text-body span.brushed').length === n",
        arg=stop - start,
    )
    marked = page.evaluate(
        "() => Array.from(document.getElementById('text-body').getElementsByTagName('span'))"
        ".findIndex((s) => s.classList.contains('brushed'))"
    )
    assert marked == start  # the window starts at char 0
    page.fill("#brush-threshold", "0.3")
    page.click("#brush-button")
    match = page.locator(".match-list .goto").first
    match.wait_for()
    target = int(match.inner_text().split("–")[0])
    match.click()
    page.wait_for_function(
        "(p) => document.getElementById('text-body').dataset.key.split('|')[5] === String(p)",
        arg=target,
    )

    # Top contexts are colored (as the view colors them, painted by snippets.js) and clickable.
    assert page.locator(".contexts .goto").count() == 8
    painted = check_contexts(page, tiny_recording, "1:cell:0")
    page.locator("body").press("j")  # a new unit repaints the snippets Dash reuses
    wait_for_key(page, "|1:cell:1|")
    check_contexts(page, tiny_recording, "1:cell:1", before=painted)
    page.locator(".contexts .goto").first.click()
    wait_for_key(page, "|1:cell:1|")

    screenshot = os.environ.get("PROBE_SCREENSHOT") or str(tmp_path / "dashboard.png")
    page.goto(server + "?rec=0&unit=1:cell:0&pos=3000&features=in_comment,brace_depth")
    wait_for_key(page, "in_comment,brace_depth")
    page.locator(".contexts .goto").first.wait_for()
    page.screenshot(path=screenshot, full_page=True)
    assert Path(screenshot).stat().st_size > 10_000


# Click an element in the same frame as the text view shows a unit (its key): well inside
# the 250 ms before a step hands its view over.
CLICK_WHEN_SHOWN = """([key, selector]) => new Promise((resolve) => {
  const poll = () => {
    if ((document.getElementById('text-body').dataset.key || '').includes(key)) {
      document.querySelector(selector).click();
      resolve();
    } else requestAnimationFrame(poll);
  };
  poll();
})"""


def test_a_change_right_after_steps_applies_on_top_of_them(page, server):
    """Steps hand their view to Dash 250 ms late: a control changed meanwhile must start from
    the stepped view, and the late hand-over must not undo it."""
    page.goto(server + "?rec=0&unit=1:cell:3&pos=100")
    wait_for_key(page, "|1:cell:3|")
    for _ in range(3):
        page.locator("body").press("j")
    page.evaluate(CLICK_WHEN_SHOWN, ["|1:cell:6|", "#color-select input[value='loss']"])
    page.wait_for_function("() => location.search.includes('color=loss')")
    page.wait_for_timeout(1000)  # past any late hand-over
    assert "unit=1%3Acell%3A6" in page.evaluate("location.search")
    assert page.input_value("#index-input") == "6"
    assert "loss" in page.inner_text("#legend")
    assert page.locator("#color-select input[value='loss']").is_checked()
    for pause in (300, 100, 400):  # steps while the last one's hand-over redraws the panels
        page.locator("body").press("j")
        page.wait_for_timeout(pause)
    page.wait_for_function("() => location.search.includes('unit=1%3Acell%3A9')")
    page.wait_for_function("() => document.getElementById('index-input').value === '9'")


def test_a_search_says_when_the_recording_shown_is_another(page, server):
    page.goto(server + "?rec=0&unit=1:cell:0&pos=0&features=in_comment")
    wait_for_key(page, "|1:cell:0|")
    page.click("#search-button")
    page.locator(".search-table .goto").first.wait_for()
    assert page.inner_text("#search-stale") == ""
    page.locator("body").press("j")  # a step is no change of recording or features
    wait_for_key(page, "|1:cell:1|")
    assert page.inner_text("#search-stale") == ""
    page.click("#rec-select")
    page.get_by_text("1: crlf", exact=True).click()
    page.wait_for_function("() => location.search.includes('rec=1')")
    assert "recording shown changed" in page.inner_text("#search-stale")


def test_bad_url_shows_message_not_blank(page, server, tiny_recording):
    page.goto(server + "?rec=3&unit=7:bogus:1&pos=99999999&regex=(oops")
    shown = wait_for_key(page, "|1:cell:0|")
    banner = page.inner_text("#banner")
    assert "no recording 3" in banner and "invalid regex" in banner
    assert page.input_value("#regex-input") == "(oops"  # kept, to be fixed
    assert len(shown["spans"]) > 0 and shown["start"] + len(shown["spans"]) == tiny_recording.chars


# Blocks of lines of the text view: how many are in view, and how many of all are empty.
BLOCKS = """() => {
  const body = document.getElementById('text-body');
  const box = body.getBoundingClientRect();
  const blocks = Array.from(body.children);
  const inView = blocks.filter((b) => {
    const r = b.getBoundingClientRect();
    return r.bottom > box.top && r.top < box.bottom;
  });
  return {inView: inView.length, emptyInView: inView.filter((b) => !b.children.length).length,
          empty: blocks.filter((b) => !b.children.length).length};
}"""


def test_lines_in_view_are_drawn_first(page, server, tiny_recording):
    """A new window shows every line in view at once; the rest waits for the browser to idle."""
    page.goto(server + "?rec=0&unit=1:cell:0&pos=5000")
    old = wait_for_key(page, "|1:cell:0|")["key"]
    page.evaluate("() => { window.heldIdle = window.requestIdleCallback; }")
    page.evaluate("() => { window.requestIdleCallback = () => 0; }")  # hold the rest back
    page.click("#next-window")
    page.wait_for_function(
        "(old) => document.getElementById('text-body').dataset.key !== old", arg=old
    )
    blocks = page.evaluate(BLOCKS)
    assert blocks["inView"] > 0 and blocks["emptyInView"] == 0 and blocks["empty"] > 0
    assert page.evaluate(FOCUS_IN_VIEW)

    page.evaluate("() => { window.requestIdleCallback = window.heldIdle; }")
    page.locator("body").press("j")  # the next coloring draws everything once idle
    check_colors(wait_for_key(page, "|1:cell:1|"), tiny_recording, "1:cell:1")
    assert page.evaluate(BLOCKS)["empty"] == 0


def test_gates_are_colored_from_0_to_1(page, server, tiny_recording):
    page.goto(server + "?rec=0&unit=2:forget_gate:4&pos=3000")
    check_colors(wait_for_key(page, "|2:forget_gate:4|"), tiny_recording, "2:forget_gate:4")
    ticks = page.locator("#legend .legend-tick").all_inner_texts()
    assert ticks == ["0.000", "1.000"]


def test_saturation_tab_draws_in_every_page_and_its_units_show_the_text(page, server):
    for _ in range(2):  # a reload is a new page: it draws the tab again
        page.goto(server + "?rec=0&unit=1:cell:0&pos=0")
        wait_for_key(page, "|1:cell:0|")
        page.locator(".contexts .goto").first.wait_for()
        assert page.evaluate("() => window.Plotly === undefined")  # loaded with a graph only
        page.click("text=Gate saturation")
        page.wait_for_function(
            "() => document.querySelectorAll('#saturation-holder .scatterlayer .point').length > 0"
        )
    key = "document.getElementById('text-body').dataset.key"
    shown = page.evaluate(key)
    page.locator("body").press("j")  # the text view is hidden: its keys do nothing here
    page.wait_for_timeout(600)
    assert page.evaluate(key) == shown
    button = page.locator("#saturation-list .goto").first
    unit = button.inner_text().split()[0]
    button.click()
    wait_for_key(page, f"|{unit}|")
    assert (
        page.locator("#tab-text").is_visible() and not page.locator("#tab-saturation").is_visible()
    )


def test_every_search_row_is_clickable(page, server, tiny_recording):
    # in_comment and a block-comment regex are topped by the same units: two rows each.
    regex = "(?s)/%5C*.*?%5C*/"
    page.goto(server + f"?rec=0&unit=1:cell:0&pos=0&features=in_comment&regex={regex}")
    wait_for_key(page, "|1:cell:0|")
    page.click("#search-button")
    rows = page.locator(".search-table .goto")
    rows.first.wait_for()
    units = rows.all_inner_texts()
    unit = next(u for i, u in enumerate(units) if u in units[:i] and u != "1:cell:0")
    for row in (i for i, u in enumerate(units) if u == unit):
        rows.nth(row).click()
        check_colors(wait_for_key(page, f"|{unit}|"), tiny_recording, unit)
        page.locator("body").press("j")  # away, so the next click has something to do
        page.wait_for_function(  # and handed to Dash (the URL follows a step once it pauses)
            "(u) => !location.search.includes(encodeURIComponent(u))", arg=unit
        )


def test_what_a_step_or_index_cannot_do_is_said(page, server, tiny_recording):
    last = tiny_recording.chars - 1
    page.goto(server + f"?rec=0&unit=2:cell:3&pos={last}")
    wait_for_key(page, "|2:cell:3|")
    page.locator("body").press("n")  # nothing strong after the last char
    page.wait_for_function("() => document.getElementById('step-note').textContent !== ''")
    assert page.inner_text("#step-note") == f"no strong activation of 2:cell:3 after char {last}"
    page.fill("#index-input", "500")
    page.press("#index-input", "Enter")
    wait_for_key(page, "|2:cell:31|")
    page.wait_for_function("() => document.getElementById('index-input').value === '31'")
    assert "has units 0..31" in page.inner_text("#banner")
    assert page.inner_text("#step-note") == ""  # the next drawing clears the note
