"""Run every benchmark, print ratios against targets, and write docs/performance.md.

    python -m bench.run            # the full run (`make bench`), < 15 min on an idle 2-core box
    python -m bench.run --quick    # a smoke run on small inputs (a minute or two)
    python -m bench.run --scale 0.1 --rounds 2   # fewer characters, e.g. on a loaded machine

Each benchmark times ours and its reference interleaved in one process and reports ratios:
on shared machines absolute times alone mean nothing.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import shlex
import sys
from pathlib import Path

from bench import common, recorder, search, trainer
from bench.method import GPU_METHOD, METHOD
from probe.errors import ProbeError
from probe.model import check_device

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "performance.md"
GPU_REPORT = ROOT / "docs" / "performance-gpu.md"
CPU_ONLY = ("search", "dashboard")  # out-of-core numpy and a browser: nothing runs on a GPU
FLOP_TARGET_SHAPES = ("lstm 2x256", "lstm 3x512")


def recorder_rows(results: list[dict]) -> list[tuple]:
    rows = []
    for r in results:
        name = f"recorder {r['shape']} ({r['chars']:,} chars, {r['bytes_per_char']:,} B/char)"
        bound_target = recorder.TARGETS["flop_bound"] if r["shape"] in FLOP_TARGET_SHAPES else None
        rows += [
            (name, "chars/s recorded (all kinds, fp16 on disk)", r["ours_chars_s"], None, ""),
            (name, "fraction of FLOP bound", r["flop_bound"], bound_target, ">="),
            (name, "x per-char loop (batch 1)", r["vs_loop"], recorder.TARGETS["vs_loop"], ">="),
            (name, "x layer-major loop, projections hoisted", r["vs_trace"], None, ""),
            (name, "x fused layer, h only", r["vs_fused"], recorder.TARGETS["vs_fused"], ">="),
            (
                name,
                "ceiling: fused layer's fraction of FLOP bound",
                r["fused_flop_bound"],
                None,
                "",
            ),
            (name, "ceiling: fused layer x per-char loop", r["fused_vs_loop"], None, ""),
            (name, "GB/s written", r["written_gbs"], None, ""),
            (
                name,
                "written / disk's write + fsync rate",
                r["written_gbs"] / r["disk_write_gbs"],
                None,
                "",
            ),
        ]
    rows.append(("disk write + fsync (measured)", "GB/s", results[0]["disk_write_gbs"], None, ""))
    size = results[0]["gemm_size"]
    for path in results[0]["gemm_gflops"]:
        best = max(r["gemm_gflops"][path] for r in results)
        rows.append((f"fp32 {path} {size}^3 (measured)", "GFLOP/s", best, None, ""))
    return rows


def trainer_rows(r: dict) -> list[tuple]:
    name = f"trainer {r['shape']}"
    return [
        (name, "chars/s", r["ours_chars_s"], None, ""),
        (name, "x bare nn.LSTM + Adam loop", r["vs_bare"], trainer.TARGET, ">="),
    ]


def search_rows(r: dict) -> list[tuple]:
    name = f"search {r['units']:,} units x {r['features']} features x {r['chars']:,} chars"
    target = search.TARGET_S * r["chars"] / 1_000_000  # the target is for 1M chars
    return [
        (name, "seconds (features cached)", r["seconds"], target, "<="),
        (name, "seconds (cold: features computed)", r["cold_seconds"], None, ""),
        (name, "seconds with the shift null (5 shifted copies each)", r["null_seconds"], None, ""),
        (name, "GB/s read", r["read_gbs"], None, ""),
        (
            name,
            "fraction of measured memory bandwidth",
            r["read_gbs"] / r["bandwidth_gbs"],
            None,
            "",
        ),
    ]


def dashboard_rows(r: dict) -> list[tuple]:
    name = f"dashboard ({r.get('window_chars', '?')} chars per window)"
    rows = []
    for action in ("unit change", "window move"):
        rows.append((name, f"{action} p50 ms", r[action]["p50_ms"], None, ""))
        rows.append((name, f"{action} p95 ms", r[action]["p95_ms"], 150, "<="))
        if "whole_drawn" in r[action]:
            drawn = "share of tries with the whole window drawn when timed"
            rows.append((name, f"{action}: {drawn}", r[action]["whole_drawn"], None, ""))
    rows.append((name, "server peak RSS MB", r["server_peak_rss_mb"], 1024, "<="))
    return rows


def verdict(value: float, target: float | None, direction: str) -> str:
    if target is None:
        return ""
    met = value >= target if direction == ">=" else value <= target
    return "met" if met else "MISSED"


def fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def table(rows: list[tuple]) -> list[str]:
    lines = ["| benchmark | measure | value | target | |", "|---|---|---:|---:|---|"]
    for name, measure, value, target, direction in rows:
        goal = f"{direction} {fmt(target)}" if target is not None else ""
        shown = fmt(value)
        if target is not None and shown == fmt(target) and value != target:
            shown = f"{value:.4f}"  # rounding hid which side of the target it is
        lines.append(
            f"| {name} | {measure} | {shown} | {goal} | {verdict(value, target, direction)} |"
        )
    return lines


def write_report(
    rows: list[tuple], machine: dict, command: str, notes: list[str], gpu: bool = False
) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    described = ", ".join(f"{k} {v}" for k, v in machine.items())
    text = [
        "# Performance on a GPU" if gpu else "# Performance",
        "",
        f"Last run: {now}, `{command}`.",
        "",
        f"Machine: {described}.",
        "",
        *[f"- {note}" for note in notes],
        "",
        *table(rows),
    ]
    report = report_path(gpu)
    report.parent.mkdir(exist_ok=True)
    report.write_text(
        HEADER_NOTE + "\n".join(text).rstrip() + "\n" + (GPU_METHOD if gpu else METHOD)
    )


def report_path(gpu: bool) -> Path:
    return GPU_REPORT if gpu else REPORT


HEADER_NOTE = "<!-- written by `python -m bench.run`; edit bench/run.py and bench/method.py, not this file -->\n"


def run_dashboard(tries: int) -> dict | None:
    """bench.dashboard.main, if that benchmark (and Playwright) is installed."""
    if importlib.util.find_spec("bench.dashboard") is None:
        print("  dashboard: bench/dashboard.py not found; skipped")
        return None
    from bench import dashboard

    return dashboard.main(["--tries", str(tries)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, one round")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of characters")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--threads", type=int, default=common.THREADS, help="torch threads (1 on a busy machine)"
    )
    parser.add_argument("--skip", nargs="*", default=[], help="recorder trainer search dashboard")
    parser.add_argument(
        "--device",
        default="cpu",
        help="cuda: recorder and trainer on the GPU (writes docs/performance-gpu.md)",
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="do not write the docs page (partial runs never do)",
    )
    args = parser.parse_args(argv)
    scale, rounds = (0.02, 1) if args.quick else (args.scale, args.rounds)
    common.setup(args.threads)
    try:
        device = check_device(args.device)
    except ProbeError as error:
        parser.error(str(error))
    gpu = device.startswith("cuda")
    skip = [*args.skip, *(CPU_ONLY if gpu else ())]
    machine = common.machine(device)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
    if gpu:
        print(f"  {' and '.join(CPU_ONLY)}: CPU only, not run with --device {device}")
    rows: list[tuple] = []
    if "recorder" not in skip:
        rows += recorder_rows(recorder.main(scale, rounds, device))
    if "trainer" not in skip:
        steps = max(2, round(10 * min(scale, 1.0) ** 0.5))
        rows += trainer_rows(trainer.main(steps=steps, rounds=max(4, rounds), device=device))
    if "search" not in skip:
        rows += search_rows(search.main(max(20_000, int(1_000_000 * scale)), max(2, rounds)))
    if "dashboard" not in skip:
        try:
            result = run_dashboard(tries=5 if args.quick else 30)
        except Exception as error:  # a browser problem must not lose the other results
            print(f"  dashboard failed: {error}")
            result = None
        if result:
            rows += dashboard_rows(result)
    print()
    print("\n".join(table(rows)))
    machine["load_1min_end"] = common.machine()["load_1min"]
    command = "python -m bench.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    notes = []
    if scale != 1.0:
        notes.append(
            f"Scaled run: {scale:g} of the characters of the full benchmark. Shorter texts "
            "mean shorter streams, so warm-up takes a larger share; ratios at scale 1 are higher."
        )
    busiest = max(machine["load_1min"], machine["load_1min_end"])
    if busiest > machine["cores"]:
        notes.append(
            f"The machine was shared: 1-minute load up to {busiest:g} on {machine['cores']} "
            "cores during the run, so absolute rates are far below an idle machine's and "
            "ratios are noisy (small per-step ops suffer most from lost time slices)."
        )
    report = report_path(gpu).relative_to(ROOT)
    if args.no_report or args.quick or args.skip:
        print(f"{report} not written (a quick, partial or --no-report run)")
    else:
        write_report(rows, machine, command.strip(), notes, gpu)
        print(f"\nwrote {report}")


if __name__ == "__main__":
    main()
