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
