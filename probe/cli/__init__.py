"""The `probe` command. Only this package prints; every library function returns data.

Each subcommand is a pair: `add_NAME(subparsers)` declares its flags and `cmd_NAME(args)`
does the work (`pipeline.py`: train, sample, record, features, dashboard, demo;
`analysis.py`: search, contexts, export, gradients, saturation). A ProbeError, a bad flag
or a file the OS refuses anywhere becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings

import probe
from probe.cli import analysis, dynamics, pipeline
from probe.cli.args import show_defaults
from probe.errors import ProbeError
from probe.stopping import restore, stop_on_signals

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
    dynamics.add_gradients,
    dynamics.add_saturation,
]


def usage_error(prog: str, message: str) -> str:
    return f"{prog}: error: {message} (see {prog} --help)\n"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the message and where to look, not the whole usage."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # `--range -500:` or `--unit -1:cell:3` is a value (checked by its type), not an
        # unknown flag: argparse takes only numbers like -5 or -.5 so. No flag of ours
        # starts with a digit.
        self._negative_number_matcher = re.compile(r"^-\d")

    def error(self, message: str):
        self.exit(2, usage_error(self.prog, message))


def build_parser(defaults: bool = True) -> argparse.ArgumentParser:
    """The whole command line; with `defaults=False`, a parse holds only the flags typed."""
    parser = Parser(
        prog="probe",
        description="Look inside character-level recurrent networks.",
        epilog="Run `probe COMMAND --help` for a command's flags and examples.",
    )
    parser.add_argument("--version", action="version", version=f"probe {probe.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(subparsers)
    for command_parser in subparsers.choices.values():
        show_defaults(command_parser)
        for action in command_parser._actions if not defaults else ():
            action.default = argparse.SUPPRESS
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named after the command, not the top-level parser argparse would blame
        message = f"unrecognized arguments: {' '.join(unknown)}"
        parser.exit(2, usage_error(f"probe {args.command}", message))
    # What was typed, not defaulted: `train --resume` keeps the run's value of every flag left out.
    args.typed_flags = set(vars(build_parser(defaults=False).parse_known_args(argv)[0]))
    # A library warning (e.g. a recording that could not be made exact) is one line too.
    warnings.showwarning = lambda message, *_: print(
        f"probe {args.command}: warning: {message}", file=sys.stderr
    )
    handlers = stop_on_signals()
    try:
        code = args.func(args) or 0  # a command returns a status only where it is not 0
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
    except ProbeError as error:
        print(f"probe {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"probe {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `probe features | head -1`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:  # a folder that is a file, a read-only disk, /proc, ...
        where = f": {error.filename}" if error.filename else ""
        print(f"probe {args.command}: error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    finally:
        restore(handlers)
    return code


if __name__ == "__main__":
    sys.exit(main())
