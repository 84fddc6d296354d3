"""The analysis tabs in headless Chromium: which tab a URL opens (fixtures in tests/browser.py)."""

from __future__ import annotations

from tests.browser import wait_for_key

VISIBLE_TAB = """() => ['text', 'gradients', 'saturation']
    .filter((t) => document.getElementById('tab-' + t).offsetParent !== null)"""


def test_a_reload_or_bookmark_opens_the_tab_it_was_taken_on(page, server):
    page.goto(server + "?rec=0&unit=1:cell:0&pos=0&tab=saturation")
    page.wait_for_function(
        "() => document.querySelectorAll('#saturation-holder .scatterlayer .point').length > 0"
    )
    assert page.evaluate(VISIBLE_TAB) == ["saturation"]
    page.click("text=Gradient decay")
    page.wait_for_function("() => location.search.includes('tab=gradients')")
    page.reload()
    page.locator("#gradients-run").wait_for()
    page.wait_for_function(f"() => ({VISIBLE_TAB})().join() === 'gradients'")
    assert "tab=gradients" in page.url
    page.click("#tabs >> text='Text'")  # the text view is the default: the URL need not say it
    page.wait_for_function("() => !location.search.includes('tab=')")
    assert "unit=1%3Acell%3A0" in page.url

    page.goto(server + "?rec=0&unit=1:cell:0&pos=0&tab=nope")
    wait_for_key(page, "|1:cell:0|")
    assert page.evaluate(VISIBLE_TAB) == ["text"]
    page.wait_for_function("() => document.getElementById('banner').textContent !== ''")
    assert "unknown tab 'nope'" in page.inner_text("#banner")


def export(page, tab: str, fmt: str) -> tuple[str, bytes]:
    """Export the plot of a tab in a format: (file name, content)."""
    page.click(f"#{tab}-export-format")
    page.click(f"#{tab}-export >> text='{fmt}'")
    with page.expect_download() as download:
        page.click(f"#{tab}-export-button")
    path = download.value.path()
    return download.value.suggested_filename, open(path, "rb").read()


def test_the_plot_tabs_export_their_plot(page, server):
    page.goto(server + "?rec=0&unit=1:cell:0&pos=0&tab=gradients")
    page.locator("#gradients-run").wait_for()
    assert not page.locator("#gradients-export-button").is_visible()  # nothing drawn yet
    page.fill("#gradients-lag", "10")
    page.click("#gradients-run")
    page.wait_for_selector("#gradients-holder .js-plotly-plot")
    name, content = export(page, "gradients", "svg")
    assert name == "gradient-decay_K10.svg" and b"Gradient-norm decay" in content
    name, content = export(page, "gradients", "pdf")
    assert name == "gradient-decay_K10.pdf" and content.startswith(b"%PDF")

    page.click("text=Gate saturation")
    page.wait_for_selector("#saturation-holder .js-plotly-plot")
    name, content = export(page, "saturation", "svg")
    assert name == "tiny_saturation.svg" and b"forget gate" in content
    page.click("#rec-select")  # the CRLF recording stores no gates: nothing to export
    page.click("text=1: crlf")
    page.wait_for_function(
        "() => document.getElementById('rec-select').textContent.includes('crlf')"
    )
    page.locator("#saturation-list").get_by_text("stores no gates").wait_for()
    assert not page.locator("#saturation-export-button").is_visible()


def test_the_gradients_tab_draws_cached_curves_when_it_opens(page, server):
    """Computed once, the curves are cached beside the recording: a reload or a bookmark of
    the tab draws them at once, with no second press of Compute."""
    page.goto(server + "?rec=0&unit=1:cell:0&pos=0&tab=gradients")
    page.locator("#gradients-run").wait_for()
    page.click("#gradients-run")  # the default max lag, as a reload shows it
    page.wait_for_selector("#gradients-holder .js-plotly-plot")
    page.reload()
    page.wait_for_selector("#gradients-holder .js-plotly-plot", timeout=20_000)
    assert page.locator("#gradients-export-button").is_visible()
