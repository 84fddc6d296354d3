"""Dashboard responsiveness on a 1,000,000-character recording, measured in headless Chromium.

Starts `probe dashboard` in its own process (so its memory is measured alone), then clicks
"next unit" and "next window" repeatedly (--pause seconds apart) and times, inside the page,
from the click to the moment the new coloring is in the DOM and painted. Prints p50/p95 per action and the server's
peak resident memory (VmHWM).

    python -m bench.dashboard [--recording REC] [--tries 30]

Without --recording it records 1M chars of War and Peace (or of repeated local text) with a
random-init 2x32 LSTM into the temp folder once and reuses it (latency does not depend on
the weights).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHARS = 1_000_000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

# Time from a click to the text view showing a new key, plus one frame so it is painted, and
# whether the whole window was drawn by then (the lines in view are drawn first, the rest
# when the browser is idle).
TIME_CLICK = """async (button) => {
  const body = document.getElementById('text-body');
  const old = body.dataset.key;
  const changed = new Promise((resolve) => {
    const observer = new MutationObserver(() => {
      if (body.dataset.key !== old) { observer.disconnect(); resolve(); }
    });
    observer.observe(body, {attributes: true});
  });
  const t0 = performance.now();
  document.getElementById(button).click();
  await changed;
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  return [performance.now() - t0, body.dataset.drawn === body.dataset.key];
}"""
WHOLE_WINDOW = """() => {
  const body = document.getElementById('text-body');
  return body && body.dataset.drawn && body.dataset.drawn === body.dataset.key;
}"""


def bench_recording(chars: int = CHARS) -> Path:
    """A cached 1M-char recording of a random-init 2x32 LSTM (cell and hidden only)."""
    from probe.checkpoint import Checkpoint
    from probe.corpus import Vocab
    from probe.model import CharRNN, ModelConfig
    from probe.record import record

    out = Path(tempfile.gettempdir()) / f"probe-bench-dashboard-{chars}"
    if (out / "manifest.json").is_file():
        return out
    source = ROOT.parent / "shared" / "data" / "warpeace.txt"
    if source.is_file():
        text = source.read_text(encoding="utf-8")[:chars]
    else:
        text = "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "probe").glob("*.py")))
    text = (text * (chars // len(text) + 1))[:chars]
    vocab = Vocab.build(text)
    model = CharRNN(ModelConfig("lstm", 2, 32, 0.0, len(vocab))).eval()
    checkpoint = Checkpoint(
        model, vocab, {"corpus": "random init (benchmark)"}, Path("random-init")
    )
    record(checkpoint, text, out, kinds=["cell", "hidden"], twin=False, overwrite=True)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    from urllib.request import urlopen

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dashboard exited with status {process.returncode}")
        try:
            urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"dashboard did not answer at {url}")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(page, button: str, tries: int, pause: float) -> tuple[np.ndarray, np.ndarray]:
    """Click `tries` times, `pause` seconds apart (a user reading): (ms, whole window drawn)."""
    page.evaluate(TIME_CLICK, button)  # warm-up: first use of a unit fills caches
    times, drawn = [], []
    for _ in range(tries):
        time.sleep(pause)  # lets the debounced URL/panel sync of the last step finish
        milliseconds, whole = page.evaluate(TIME_CLICK, button)
        times.append(milliseconds)
        drawn.append(whole)
    return np.array(times), np.array(drawn)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recording", help="recording folder (default: a cached 1M-char one)")
    parser.add_argument("--tries", type=int, default=30)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between clicks")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    recording = Path(args.recording) if args.recording else bench_recording()
    port = free_port()
    url = f"http://127.0.0.1:{port}/?unit=1:cell:0&pos=0"
    server = subprocess.Popen(
        [sys.executable, "-m", "probe.cli", "dashboard", "--recording", str(recording), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_server(url, server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.wait_for_function(
                "document.getElementById('text-body')?.dataset.key", timeout=60_000
            )
            results = {
                "unit change": measure(page, "next-unit", args.tries, args.pause),
                "window move": measure(page, "next-window", args.tries, args.pause),
            }
            page.wait_for_function(WHOLE_WINDOW)
            chars = page.evaluate("document.querySelectorAll('#text-body span').length")
            browser.close()
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
    report = {"recording": str(recording), "window_chars": chars, "server_peak_rss_mb": round(rss)}
    print(f"dashboard on {recording} ({chars} chars per window, {args.tries} tries)")
    for name, (times, drawn) in results.items():
        p50, p95 = np.percentile(times, [50, 95])
        report[name] = {
            "p50_ms": round(float(p50), 1),
            "p95_ms": round(float(p95), 1),
            "whole_drawn": float(np.mean(drawn)),
        }
        print(
            f"  {name:12s} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   max {times.max():6.1f} ms   "
            f"whole window drawn by then in {np.mean(drawn):.0%} of tries"
        )
    print(f"  server peak RSS {rss:.0f} MB")
    return report


if __name__ == "__main__":
    main()
