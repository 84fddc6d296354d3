"""Ship trained models and regenerate their cards and the reproduction report from data.

    python -m probe.report ship --runs runs --checkpoints checkpoints
    python -m probe.report report --checkpoints checkpoints --out docs/reproduction.md

`ship` copies each run's best checkpoint (weights, config, vocab; no optimizer state) and a
few training snapshots into `checkpoints/`. `report` records each shipped model on its
held-out test split, searches the paper's cells, writes `card.md` beside every checkpoint
and the report with its figures. Every number printed comes from that run.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from probe.checkpoint import load_checkpoint, save_checkpoint
from probe.corpus import load_corpus
from probe.errors import ProbeError
from probe.model import evaluate
from probe.record import record_or_reuse
from probe.recording import Recording
from probe.search import search

BITS = 1 / math.log(2)
SHIPPED = ["stdlib-lstm", "warpeace-lstm", "linux-lstm", "linux-gru", "linux-rnn"]
SNAPSHOT_RUNS = ["linux-lstm", "linux-rnn"]
# The cells Karpathy et al. (2015) describe, as our features, per corpus.
PAPER_CELLS = {
    "warpeace": ["in_quote", "pos_in_line", "line_length"],
    "linux": ["in_string", "in_comment", "in_if_condition", "brace_depth", "indent", "pos_in_line"],
    "stdlib": ["in_string", "in_comment", "in_if_condition", "indent", "pos_in_line"],
}
# Issue targets: (minimum score, measure); binary features are judged by AUROC, others by |r|.
TARGETS = {
    "in_quote": 0.8,
    "pos_in_line": 0.8,
    "in_if_condition": 0.95,
    "in_comment": 0.95,
    "in_string": 0.95,
}
# Test cross-entropy (nats/char) reported by the paper: best LSTM, and the 20-gram baseline.
PAPER_LOSS = {"warpeace": (1.077, 1.195), "linux": (0.84, 0.889)}
RECORD_CHARS = 200_000


@dataclass
class Analysis:
    name: str
    path: Path
    info: dict
    recording: Recording
    cells: pd.DataFrame  # search results: top units per paper feature


def ship(runs: Path, checkpoints: Path, names: list[str] = SHIPPED) -> list[Path]:
    """Copy each run's best checkpoint (and init/early/final snapshots) into `checkpoints/`."""
    shipped = []
    for name in names:
        best = runs / name / "best"
        if not best.is_dir():
            print(f"skip {name}: {best} not found")
            continue
        target = checkpoints / name
        ship_with_test_loss(best, target)
        shipped.append(target)
        snapshots = sorted((runs / name / "snapshots").glob("step-*"))
        if name in SNAPSHOT_RUNS and len(snapshots) >= 2:
            early = snapshots[max(1, len(snapshots) // 10)]
            for snapshot, label in ((snapshots[0], "init"), (early, "early")):
                ship_with_test_loss(snapshot, checkpoints / f"{name}-snapshots" / label)
    return shipped


def ship_with_test_loss(source: Path, target: Path) -> None:
    """Save the weights to `target` with their test loss measured now (no optimizer state)."""
    checkpoint = load_checkpoint(source)
    args = checkpoint.info["train_args"]
    corpus = load_corpus(args["corpus"], tuple(args["split"]))
    loss = evaluate(
        checkpoint.model, checkpoint.vocab.encode(corpus.split("test")[: args["eval_chars"]])
    )
    info = {**checkpoint.info, "test_loss": loss, "test_bits_per_char": loss * BITS}
    info["corpus"] = {**info["corpus"], "source": corpus.description}  # no paths of this machine
    save_checkpoint(target, checkpoint.model, checkpoint.vocab, info)


def corpus_of(info: dict) -> str:
    return info["train_args"]["corpus"]


def analyse(path: Path, recordings: Path, chars: int = RECORD_CHARS) -> Analysis:
    """Record the model's test split (reused while unchanged) and search the paper's cells."""
    checkpoint = load_checkpoint(path)
    corpus_name = corpus_of(checkpoint.info)
    text = load_corpus(corpus_name, tuple(checkpoint.info["corpus"]["split"])).split("test")[:chars]
    recording = record_or_reuse(
        checkpoint, text, recordings / path.name, source=f"{corpus_name} test split"
    )
    cells = search(
        recording, PAPER_CELLS.get(corpus_name, PAPER_CELLS["stdlib"]), top=3, progress=True
    )
    return Analysis(path.name, path, checkpoint.info, recording, cells)


def train_command(info: dict) -> str:
    """The exact `probe train` command that reproduces a checkpoint (fixed step count)."""
    args = info["train_args"]
    flags = [f"--corpus {args['corpus']}", f"--cell {args['cell']}"]
    for key in (
        "layers",
        "hidden",
        "dropout",
        "seq_len",
        "batch",
        "lr",
        "lr_decay",
        "lr_decay_every",
        "grad_clip",
        "optimizer",
        "val_every",
        "min_char_count",
        "seed",
    ):
        flags.append(f"--{key.replace('_', '-')} {args[key]}")
    if list(args["split"]) != [0.9, 0.05, 0.05]:
        flags.append("--split " + "/".join(f"{100 * f:g}" for f in args["split"]))
    if args.get("snapshot_every"):
        flags.append(f"--snapshot-every {args['snapshot_every']}")
    return f"OMP_NUM_THREADS=1 probe train --out runs/NAME {' '.join(flags)} --max-steps {info['step']}"


def best_cells(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[cells["rank"] == 1].reset_index(drop=True)


def cells_table(cells: pd.DataFrame) -> str:
    rows = [
        "| feature | unit | measure | score | r | AUROC | random-init null | shift null |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in best_cells(cells).itertuples():
        rows.append(
            f"| `{row.feature}` | `{row.unit}` | {row.measure} | {row.score:.3f} | {row.r:+.3f} | "
            f"{fmt(row.auroc)} | {fmt(row.null_init)} | {fmt(row.null_shift)} |"
        )
    return "\n".join(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (floats to 3 decimals), without extra dependencies."""
    cells = [
        [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        for row in frame.itertuples(index=False)
    ]
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    return "\n".join(
        [header, "|" + " --- |" * len(frame.columns), *("| " + " | ".join(r) + " |" for r in cells)]
    )


def fmt(value: float) -> str:
    return (
        "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
    )


def write_card(analysis: Analysis) -> Path:
    """`card.md` beside the checkpoint: data, model, training, losses, cells, reproduction."""
    info, model, corpus = analysis.info, analysis.info["model"], analysis.info["corpus"]
    args = info["train_args"]
    test, val = info.get("test_loss"), info.get("val_loss")
    lines = [
        f"# {analysis.name}",
        "",
        f"A character-level {model['cell'].upper()} ({model['layers']} layers × {model['hidden']} units, "
        f"{info['parameters']:,} parameters) trained on `{corpus['name']}`.",
        "",
        "| | |",
        "| --- | --- |",
        f"| corpus | `{args['corpus']}` ({corpus['source']}) |",
        f"| corpus sha256 | `{corpus['sha256']}` |",
        f"| split (train/val/test) | {' / '.join(f'{100 * f:g} %' for f in corpus['split'])} |",
        f"| vocabulary | {model['vocab_size']} characters (id 0 = unknown) |",
        f"| hyperparameters | batch {args['batch']} × seq {args['seq_len']}, {args['optimizer']} lr {args['lr']} "
        f"(×{args['lr_decay']} every {args['lr_decay_every']} steps), clip {args['grad_clip']}, dropout {model['dropout']} |",
        f"| training | {info['step']:,} steps ({info['step'] * args['batch'] * args['seq_len'] / 1e6:.1f} M chars), "
        f"{info['train_minutes']:.0f} min on {info.get('hardware', 'unknown hardware')} |",
        f"| validation loss | {val:.4f} nats/char ({val * BITS:.4f} bits/char) |",
        f"| test loss | {test:.4f} nats/char ({test * BITS:.4f} bits/char) |",
        "",
        f"## Cells found on {analysis.recording.chars:,} held-out test characters",
        "",
        "Best unit per feature (`probe search`): binary features are scored by max(AUROC, 1 − AUROC),",
        "continuous ones by |r|; nulls are the best score of a random-init twin and of the feature",
        "circularly shifted.",
        "",
        cells_table(analysis.cells),
        "",
        "## Reproduce",
        "",
        "```",
        train_command(info).replace("NAME", analysis.name),
        "```",
        "",
    ]
    path = analysis.path / "card.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m probe.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True)
    ship_parser = sub.add_parser("ship", help="copy best checkpoints from runs/ into checkpoints/")
    ship_parser.add_argument("--runs", type=Path, default=Path("runs"))
    ship_parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    report_parser = sub.add_parser("report", help="write cards and docs/reproduction.md")
    report_parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    report_parser.add_argument("--recordings", type=Path, default=Path("recordings"))
    report_parser.add_argument("--out", type=Path, default=Path("docs/reproduction.md"))
    report_parser.add_argument("--chars", type=int, default=RECORD_CHARS)
    args = parser.parse_args(argv)
    try:
        if args.action == "ship":
            for path in ship(args.runs, args.checkpoints):
                print(f"shipped {path}")
            return 0
        from probe.reproduction import write_report

        analyses = []
        for name in SHIPPED:
            if (args.checkpoints / name).is_dir():
                analysis = analyse(args.checkpoints / name, args.recordings, args.chars)
                print(f"card: {write_card(analysis)}")
                analyses.append(analysis)
        print(f"report: {write_report(analyses, args.checkpoints, args.out)}")
    except ProbeError as error:
        print(f"error: {error}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
