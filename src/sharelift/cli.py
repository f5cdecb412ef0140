"""The `sharelift` command line: parse arguments, call the library, map errors to exit codes.

Nothing here does real work. Each subcommand is registered by an `_add_<name>` function that
declares its flags and names a `_run_<name>` function; the library does the rest.

Exit codes (also in the README):
    0   the command completed
    1   the command completed with failures (or findings, with --fail-on-findings)
    2   bad arguments, job file or source
    3   authentication failed
    4   the target could not be resolved
    130 interrupted (Ctrl-C / SIGTERM); the next run resumes
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sharelift import __version__
from sharelift.errors import EXIT_INTERRUPTED, EXIT_USAGE, ShareliftError

Runner = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that exits with our usage code and a one-line message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every subcommand."""
    parser = _Parser(
        prog="sharelift",
        description="Migrate file shares into OneDrive for Business and SharePoint Online.",
    )
    parser.add_argument("--version", action="version", version=f"sharelift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in _COMMANDS:
        add(sub)
    return parser


# --- subcommands -------------------------------------------------------------------------------


_COMMANDS: list[Callable[[argparse._SubParsersAction[_Parser]], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    runner: Runner = args.run
    try:
        return runner(args)
    except ShareliftError as exc:
        print(f"sharelift: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sharelift: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
