"""The `probe` command. Only this package prints; every library function returns data.

Each subcommand is a pair: `add_NAME(subparsers)` declares its flags and `cmd_NAME(args)`
does the work (`pipeline.py`: train, sample, record, features, dashboard, demo;
`analysis.py`: search, contexts, export, gradients, saturation). A ProbeError anywhere
becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

import probe
from probe.cli import analysis, pipeline
from probe.errors import ProbeError

COMMANDS = [
    pipeline.add_demo,
    pipeline.add_train,
    pipeline.add_sample,
    pipeline.add_record,
    pipeline.add_features,
    pipeline.add_dashboard,
    analysis.add_search,
    analysis.add_contexts,
    analysis.add_export,
    analysis.add_gradients,
    analysis.add_saturation,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probe",
        description="Look inside character-level recurrent networks.",
        epilog="Run `probe COMMAND --help` for a command's flags and examples.",
    )
    parser.add_argument("--version", action="version", version=f"probe {probe.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ProbeError as error:
        print(f"probe {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"probe {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
