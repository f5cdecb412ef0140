"""The `sharelift` command line: parse, call the library, render, map errors to exit codes.

Nothing here does real work. Options come from the table in sharelift.config (flags,
environment, config file; sharelift.cli.options); each command's module declares its
arguments, calls the public library API and prints what it got back:

    scan            sharelift scan SOURCE [TARGET]
    migrate         sharelift migrate SOURCE TARGET (one job)
    jobs            sharelift migrate --jobs FILE, sharelift provision
    cluster         sharelift worker, sharelift migrate --broker (jobs handed to workers)
    status          sharelift status, sharelift report
    versions        sharelift versions prune TARGET
    dashboard       sharelift dashboard (and the dashboard beside a run: migrate --dashboard)
    login           sharelift login, sharelift logout
    emulator        sharelift emulator --data DIR
    demo            sharelift demo
    config_command  sharelift config show | docs
    examples        the Examples section of every --help page
    signals         Ctrl-C / SIGTERM: the first stops gracefully, the second at once

Exit codes (also in the README):
    0   the command completed
    1   the command completed with failures (or findings, with --fail-on-findings)
    2   bad arguments, option values, job file, config file or source
    3   authentication failed (or would need a prompt without a terminal), access denied
    4   the target could not be resolved
    75  try again later: the job is running already, OneDrives are still being created, or
        Microsoft 365 kept throttling or could not be reached
    70  a defect in sharelift itself (never a Python traceback: one line, and the traceback
        saved in a private file it names)
    130 interrupted (Ctrl-C / SIGTERM); the next run resumes
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from sharelift import __version__
from sharelift.cli import (
    cluster,
    config_command,
    dashboard,
    demo,
    emulator,
    jobs,
    login,
    migrate,
    scan,
    status,
    versions,
)
from sharelift.cli.examples import add_examples
from sharelift.cli.options import Parser, Settings, error_text, resolve
from sharelift.errors import EXIT_INTERRUPTED, EXIT_SOFTWARE, OptionError, ShareliftError

Runner = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every command."""
    parser = Parser(
        prog="sharelift",
        description="Migrate file shares into OneDrive for Business and SharePoint Online.",
    )
    parser.add_argument("--version", action="version", version=f"sharelift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    scan.register(sub)
    migrate.register(sub)
    jobs.register_provision(sub)
    versions.register(sub)
    status.register(sub)
    cluster.register_worker(sub)
    dashboard.register(sub)
    login.register(sub)
    emulator.register(sub)
    demo.register(sub)
    config_command.register(sub, build_parser)
    add_examples(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    runner: Runner = args.run
    settings: Settings | None = None
    try:
        settings = resolve(args.command, args)
        with _logging(args, settings):
            return runner(args)
    except ShareliftError as exc:
        print(f"sharelift: error: {error_text(exc, settings)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sharelift: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a defect: one line for the user, the traceback in a file
        print(
            f"sharelift: internal error: {type(exc).__name__}: {exc} (a defect in sharelift; "
            f"{_keep_traceback()})",
            file=sys.stderr,
        )
        return EXIT_SOFTWARE


def run() -> NoReturn:
    """The `sharelift` program: `main()` as a process.

    Once the command has ended, Ctrl-C and SIGTERM are ignored: a second Ctrl-C that arrives
    just after a first one's graceful stop has finished (its round already closed as
    interrupted) must not turn the command's exit code into a death by signal."""
    try:
        code = main()
    except KeyboardInterrupt:  # after the command's own handling, before its return
        code = EXIT_INTERRUPTED
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(code)


def _keep_traceback() -> str:
    """Write the traceback being handled to a private file; say where (or that it could not)."""
    import tempfile

    import platformdirs

    try:
        folder = platformdirs.user_state_path("sharelift")
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="defect-", suffix=".txt", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            traceback.print_exc(file=fh)
    except OSError:
        return "its details could not be saved"
    return f"details for a report in {name}"


@contextlib.contextmanager
def _logging(args: argparse.Namespace, settings: Settings) -> Iterator[Path | None]:
    """The run's log (`--log-file`, `-v`), for the commands that take it; the secrets the
    command was given are registered first, so that no line can carry them."""
    from sharelift import logs

    if "verbose" not in settings:
        yield None
        return
    for setting in settings.values():
        if setting.option.secret and isinstance(setting.value, str):
            logs.add_secret(setting.value)
    log = logging.getLogger("sharelift")
    with contextlib.ExitStack() as stack:
        try:
            path = stack.enter_context(logs.log_to(args.log_file, args.verbose))
        except OSError as exc:
            where = args.log_file
            raise OptionError("log_file", f"cannot write {where}: {exc.strerror}") from None
        log.info("sharelift %s %s: started", __version__, args.command)
        try:
            yield path
        except ShareliftError as exc:
            log.error("%s", exc)
            raise
