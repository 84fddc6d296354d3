"""Save a screenshot of the dashboard for the README: `python -m dashboards.screenshot`.

    python -m dashboards.screenshot --recording recordings/stdlib-demo \
        --query "unit=2:cell:49&pos=5200&features=in_string,in_comment" --out docs/dashboard.png

Serves the recording on a free localhost port, opens the view in headless Chromium (Debian's
`chromium`), waits for the colored text, and writes the PNG.
"""

from __future__ import annotations

import argparse
import shutil
import threading

from werkzeug.serving import make_server

from dashboards import build_app
from probe.recording import Recording

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def screenshot(recording: str, query: str, out: str, width: int = 1440, height: int = 1000) -> None:
    from playwright.sync_api import sync_playwright

    app = build_app([Recording.open(recording)])
    http = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{http.server_port}/?{query}")
            page.wait_for_selector("#text-body span", state="attached")
            if page.is_visible("#search-button"):  # the Text tab: search the URL's features
                page.click("#search-button")
                page.wait_for_selector("#search-results table")
            page.wait_for_timeout(2000)  # let the top contexts (or a tab's plot) fill in
            page.screenshot(path=out)
            browser.close()
    finally:
        http.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recording", required=True)
    parser.add_argument(
        "--query", default="", help="the view's URL query, e.g. unit=2:cell:49&pos=5200"
    )
    parser.add_argument("--out", default="docs/dashboard.png")
    args = parser.parse_args()
    screenshot(args.recording, args.query, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
