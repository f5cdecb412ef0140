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


def _add_scan(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "scan",
        help="check a source tree against OneDrive/SharePoint rules (no network)",
        description="Walk SOURCE read-only and report what will not migrate as it is, and why.",
    )
    p.add_argument("source", metavar="SOURCE", help="folder to scan")
    p.add_argument(
        "target",
        metavar="TARGET",
        nargs="?",
        help="target library or folder URL, onedrive:UPN or /server/relative/path; "
        "its path counts toward the 400-character limit",
    )
    p.add_argument(
        "--report",
        metavar="DIR",
        help="write ScanSummary.csv, ScanReport.csv, "
        "summary.json into DIR (created; must not be inside SOURCE)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--rename",
        metavar="POLICY",
        default="underscore",
        help="underscore (default), a single CHAR, fullwidth (look-alikes) or off (skip)",
    )
    p.add_argument("--follow-symlinks", action="store_true", help="follow symbolic links")
    p.add_argument("--skip-hidden", action="store_true", help="leave out dotfiles and hidden items")
    p.add_argument(
        "--include",
        metavar="GLOB",
        action="append",
        default=[],
        help="keep only files matching GLOB (repeatable)",
    )
    p.add_argument(
        "--exclude",
        metavar="GLOB",
        action="append",
        default=[],
        help="leave out files and folders matching GLOB (repeatable)",
    )
    p.add_argument(
        "--skip-extensions",
        metavar="LIST",
        help="leave out files whose last extension is listed (txt:mp3 or txt,mp3)",
    )
    p.add_argument("--modified-after", metavar="DATE", help="keep files modified after DATE")
    p.add_argument(
        "--created-after",
        metavar="DATE",
        help="keep files created after DATE (where the filesystem records it)",
    )
    p.add_argument(
        "--fail-on-findings",
        action="store_true",
        help="exit 1 when any item has a finding (for CI)",
    )
    p.set_defaults(run=_run_scan)


def _run_scan(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from sharelift.errors import EXIT_FINDINGS, EXIT_OK
    from sharelift.scan import render_summary, run_scan
    from sharelift.source import RenamePolicy, ScanOptions, TargetPrefix

    options = ScanOptions(
        follow_symlinks=args.follow_symlinks,
        skip_hidden=args.skip_hidden,
        include=tuple(args.include),
        exclude=tuple(args.exclude),
        skip_extensions=(
            ScanOptions.parse_extensions(args.skip_extensions)
            if args.skip_extensions is not None
            else frozenset()
        ),
        modified_after=(
            ScanOptions.parse_date("--modified-after", args.modified_after)
            if args.modified_after
            else None
        ),
        created_after=(
            ScanOptions.parse_date("--created-after", args.created_after)
            if args.created_after
            else None
        ),
        rename=RenamePolicy.parse(args.rename),
        target=TargetPrefix.parse(args.target) if args.target else None,
    )
    summary = run_scan(args.source, options, report_dir=args.report, target_text=args.target or "")
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        render_summary(summary, Console())
    return EXIT_FINDINGS if args.fail_on_findings and summary.has_findings else EXIT_OK


_COMMANDS.append(_add_scan)


# --- emulator --------------------------------------------------------------------------------


def _add_emulator(sub: argparse._SubParsersAction[_Parser]) -> None:
    from pathlib import Path

    p = sub.add_parser(
        "emulator",
        help="serve a local Microsoft 365 tenant (Graph, sign-in, SharePoint REST) over HTTPS",
        description="Serve a local Microsoft 365 tenant over HTTPS. On first start it creates "
        "its CA, server certificate, app registration and users in DIR; DIR/emulator.json "
        "tells clients (and `--emulator DIR`) where and how to connect.",
    )
    p.add_argument("--data", required=True, metavar="DIR", type=Path, help="data folder")
    p.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--tenant", default="contoso", help="tenant name (default: contoso)")
    p.add_argument(
        "--users",
        metavar="FILE",
        type=Path,
        help="CSV (upn,display_name,licensed,onedrive) or JSON list of users to create",
    )
    f = p.add_argument_group("faults")
    f.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    f.add_argument(
        "--bandwidth", type=int, default=0, metavar="BYTES_PER_S", help="tenant-wide body cap"
    )
    f.add_argument("--ru-per-minute", type=int, default=0, help="resource units per app per minute")
    f.add_argument("--error-rate", type=float, default=0.0, help="probability of a 500/503")
    f.add_argument(
        "--drop-rate", type=float, default=0.0, help="probability of a dropped connection"
    )
    f.add_argument(
        "--session-lifetime",
        type=float,
        default=15 * 60,
        metavar="SECONDS",
        help="upload-session lifetime after its last fragment (default 900)",
    )
    f.add_argument(
        "--provisioning-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="time before a requested OneDrive exists (default 0)",
    )
    p.set_defaults(run=_run_emulator)


def _run_emulator(args: argparse.Namespace) -> int:
    import signal

    from sharelift.emulator.server import EmulatorServer
    from sharelift.emulator.settings import EmulatorSettings, Faults
    from sharelift.errors import UsageError

    try:
        faults = Faults()
        faults.update(
            {
                "latency_ms": args.latency_ms,
                "bandwidth_bps": args.bandwidth,
                "ru_per_minute": args.ru_per_minute,
                "error_rate": args.error_rate,
                "drop_rate": args.drop_rate,
            }
        )
    except ValueError as exc:
        raise UsageError(str(exc).replace("_", "-")) from None
    if args.session_lifetime <= 0 or args.provisioning_delay < 0:
        raise UsageError("--session-lifetime must be positive, --provisioning-delay not negative")
    settings = EmulatorSettings(
        data_dir=args.data,
        host=args.host,
        port=args.port,
        tenant=args.tenant,
        users_file=args.users,
        upload_session_lifetime_s=args.session_lifetime,
        provisioning_delay_s=args.provisioning_delay,
        faults=faults,
    )
    server = EmulatorServer(settings)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        server.start()
        info = server.info
        print(f"sharelift emulator for tenant {info['tenant']} ({info['tenant_id']})")
        print(f"  base URL        {info['base_url']}")
        print(f"  Graph           {info['graph_url']}")
        print(f"  CA certificate  {info['ca_file']}")
        print(f"  emulator.json   {server.data_dir / 'emulator.json'}")
        print(f"  use it with     sharelift ... --emulator {server.data_dir}")
        print("Press Ctrl-C to stop.", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("sharelift emulator: stopped", file=sys.stderr)
        return 0
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


_COMMANDS.append(_add_emulator)


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
