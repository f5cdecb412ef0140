"""`sharelift scan SOURCE [TARGET]`: check a tree against OneDrive / SharePoint's rules."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from sharelift.cli.options import Parser, add_options, api_options
from sharelift.errors import EXIT_FINDINGS, EXIT_OK

if TYPE_CHECKING:
    from rich.console import Console

    from sharelift.api import ScanResult


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "scan",
        help="check a source tree against OneDrive/SharePoint rules",
        description="Walk SOURCE read-only and report what will not migrate as it is, and why. "
        "No network is used, unless TARGET is to be resolved through Graph (a connection "
        "option such as --emulator or --tenant is given, or TARGET is drive:ID).",
    )
    p.add_argument("source", metavar="SOURCE", help="folder to scan")
    p.add_argument(
        "target",
        metavar="TARGET",
        nargs="?",
        help="target library or folder URL, onedrive:UPN[/folder], /server/relative/path, or "
        "(with --emulator or --tenant, resolved through Graph) any TARGET migrate takes; its "
        "path counts toward the 400-character limit",
    )
    add_options(p, "scan")
    p.set_defaults(run=run)


def needs_connection(args: argparse.Namespace) -> bool:
    """Whether TARGET is resolved through Graph: a connection flag (or its variable) was
    given, or TARGET is a drive id, which only Graph can turn into a path."""
    if not args.target:
        return False
    settings = args.settings
    given = any(settings[k].origin in ("flag", "environment") for k in ("emulator", "tenant"))
    drive = args.target.strip().lower().startswith(("drive:", "b!"))
    return given or drive


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sharelift.api import scan

    credential = None
    if needs_connection(args):
        from sharelift.cli.connect import connect

        credential = connect(args)
    result = scan(args.source, args.target, credential=credential, **api_options(args, "scan"))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        render(result, Console())
    return EXIT_FINDINGS if args.fail_on_findings and result.has_findings else EXIT_OK


def _display(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TiB"


def render(result: ScanResult, console: Console) -> None:
    """The terminal summary: totals, counts by finding and filter, largest files, longest
    target paths."""
    from rich.markup import escape
    from rich.table import Table

    totals = Table(title=f"Scan of {escape(result.source)}", show_header=False, box=None)
    totals.add_column(style="bold")
    totals.add_column(justify="right")
    rows = [
        ("Scanned items", f"{result.scanned_items:,}"),
        ("Folders", f"{result.folders:,}"),
        ("Files", f"{result.files:,}"),
        ("Bytes", f"{result.bytes:,} ({_size(result.bytes)})"),
        ("Filtered out", f"{result.filtered_out:,}"),
        ("Items with issues", f"{result.items_with_issues:,}"),
        ("  renamed", f"{result.renamed:,}"),
        ("  skipped", f"{result.skipped:,}"),
        ("  blocked", f"{result.blocked:,}"),
        (
            "To be migrated",
            f"{result.to_be_migrated:,} ({_size(result.bytes_to_be_migrated)})",
        ),
        ("Duration", f"{result.duration_seconds:.2f} s"),
    ]
    for label, value in rows:
        totals.add_row(label, value)
    console.print(totals)
    counted = [("Findings", "Code", result.findings), ("Filtered out", "Filter", result.filters)]
    for title, column, counts in counted:
        if counts:
            table = Table(title=title)
            table.add_column(column)
            table.add_column("Count", justify="right")
            for name, count in sorted(counts.items(), key=lambda x: (-x[1], x[0])):
                table.add_row(name, f"{count:,}")
            console.print(table)
    largest = [(path, size) for path, size in result.largest_files if size > 0]
    listed = [
        ("Largest files", "Size", [(_size(s), p) for p, s in largest]),
        ("Longest target paths", "Length", [(str(n), p) for p, n in result.longest_paths]),
    ]
    for title, column, entries in listed:
        if entries:
            table = Table(title=title)
            table.add_column(column, justify="right")
            table.add_column("Path", overflow="fold")
            for figure, path in entries:
                table.add_row(figure, escape(_display(path)))
            console.print(table)
