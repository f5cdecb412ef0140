"""`sharelift demo`: a real migration into the built-in emulator, start to finish.

It starts the emulator in this process (`sharelift.emulator.Emulator`), writes a small
department share with the names that trip migrations up (a colon, a reserved name, an Office
lock file, a case collision, a folder named Forms at the library root, non-ASCII names, an
empty file, a file large enough for an upload session in several fragments, real Office
documents that the library rewrites), scans it, migrates it into a SharePoint library given as
the URL a user would copy from the browser, prints the item report, then runs again to show
that an unchanged share costs no upload. It uses the public library API only. Everything lives
in one folder (default ./sharelift-demo), kept for a look afterwards.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharelift.cli.options import Parser, add_options

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from sharelift.api import MigrationResult

TARGET = "https://contoso.sharepoint.com/sites/Team/Shared%20Documents/Forms/AllItems.aspx?id=%2Fsites%2FTeam%2FShared%20Documents%2FDepartment"
FOLDER = "https://contoso.sharepoint.com/sites/Team/Shared Documents/Department"

SAMPLE: dict[str, int | bytes] = {
    "Budget: 2026.xlsx": 24_000,
    "Minutes 2026-01-12.docx": 18_000,
    "Report.docx": 9_000,
    "report.DOCX": 9_500,  # collides with Report.docx once case is ignored
    "~$Report.docx": b"lock",  # Office's owner file
    "CON": b"reserved device name",
    "Forms/Template.dotx": 6_000,  # a folder named Forms at the library root
    "Projekte/Präsentation é.pptx": 40_000,
    "Projekte/Übersicht .txt": b"trailing space\n",
    "Projekte/2025/Q4 <final>.pdf": 30_000,
    "Projekte/2025/empty.log": b"",
    "Archive/scans/scan-0001.tif": 25 * 1024 * 1024,  # three 10 MiB fragments
    "Archive/_vti_cnf/legacy.htm": b"<html></html>",
}


def make_share(root: Path) -> None:
    """Write the sample share (deterministic bytes, fixed times). The Office documents are
    real Office Open XML packages, so that the library's rewrite of their metadata, and
    sharelift's proof that their content arrived intact, can be seen."""
    from sharelift.emulator.samples import office_file

    rng = random.Random(2026)
    for n, (rel, content) in enumerate(SAMPLE.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        kind = rel.rsplit(".", 1)[-1].lower()
        if isinstance(content, bytes):
            data = content
        elif kind in ("docx", "dotx", "xlsx", "pptx"):
            data = office_file(kind, seed=n, media_bytes=content)
        else:
            data = rng.randbytes(content)
        path.write_bytes(data)
        os.utime(path, (1_767_225_600, 1_767_225_600))  # 2026-01-01


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "demo",
        help="migrate a sample share into the built-in emulator and show the report",
        description="Start the emulator in this process, create a sample share with names "
        "that need fixing, scan it, migrate it, print the report, then run again to show an "
        "incremental round. Everything is kept in --dir.",
    )
    add_options(p, "demo")
    p.set_defaults(run=lambda args: run_demo(Path(args.demo_dir), via=args.via))


def _item_table(result: MigrationResult) -> Table:
    from rich.table import Table

    table = Table(title="ItemReport.csv", show_lines=False)
    for column in ("Source", "Destination", "Status", "Result category", "Message"):
        table.add_column(column, overflow="fold")
    if result.reports is None:
        return table
    with (result.reports / "ItemReport.csv").open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Content type"] != "File":
                continue
            style = {"Migrated": "green", "Failed": "red"}.get(row["Status"], "yellow")
            source = row["Source"].split("/source/", 1)[-1]
            destination = row["Destination"].split("/Department/", 1)[-1]
            table.add_row(
                source,
                destination,
                f"[{style}]{row['Status']}",
                row["Result category"],
                row["Message"],
            )
    return table


def run_demo(folder: Path, console: Console | None = None, *, via: str = "graph") -> int:
    """Run the demo in `folder`; returns the exit code of the first migration round. With
    `via="migration-api"` the files go as Migration API packages (the emulator starts Azurite
    for them, installing it from npm the first time), signed in with the app's certificate."""
    from rich.console import Console

    from sharelift.api import migrate, scan
    from sharelift.cli.migrate import Display, exit_code
    from sharelift.cli.scan import render
    from sharelift.credential import Credential
    from sharelift.emulator import Emulator
    from sharelift.views import choose_renderer

    console = console or Console()
    folder = folder.resolve()
    source = folder / "source"
    if not source.exists():
        make_share(source)
    with Emulator(folder / "emulator") as tenant:
        console.rule("[bold]sharelift demo")
        console.print(f"emulator   {tenant.base_url}  (data in {tenant.data_dir})")
        console.print(f"source     {source}")
        console.print(f"target     {TARGET}")
        console.print(f"via        {via}\n")
        credential = tenant.credential
        api: dict[str, Any] = {"via": via}
        if via == "migration-api":
            # SharePoint's REST calls take app-only tokens from certificates only.
            credential = Credential.from_certificate(emulator=tenant.data_dir)
            api.update(migration_poll=0.5)
        render(scan(source, FOLDER, report=folder / "scan"), console)

        console.rule("[bold]migrating")
        display = Display(choose_renderer(False))
        try:
            first = migrate(
                source,
                TARGET,
                credential=credential,
                workers=8,
                **api,
                state=folder / "state.db",
                report=folder / "reports" / "round-1",
                progress=[display.receive],
            )
        finally:
            display.close()
        console.print(_item_table(first))
        proved = (
            f" ({first.enriched} of them Office documents the library rewrote, proved part by part)"
            if first.enriched
            else ""
        )
        console.print(
            f"[bold]{first.uploaded} files uploaded and verified[/]{proved}, "
            f"{first.skipped} skipped, {first.failed} failed ({via}); "
            f"{first.summary['migrated_bytes'] / 1024**2:.1f} MiB at "
            f"{first.summary['gb_per_hour']:.1f} GB/hour"
        )
        console.print(f"reports    {first.reports or '-'}")

        console.rule("[bold]running again (incremental)")
        tenant.server.reset_stats()
        again = migrate(
            source,
            TARGET,
            credential=credential,
            workers=8,
            **api,
            state=folder / "state.db",
            report=folder / "reports" / "round-2",
        )
        stats = tenant.stats()
        console.print(
            f"{again.uploaded} uploaded, {again.unchanged} unchanged; "
            f"{stats['requests']} Graph requests in all (the target's resolution), "
            f"{stats['bytes_in']} bytes sent"
        )
        console.print(
            f"\nTry it yourself:  sharelift emulator --data {tenant.data_dir}   (in another "
            "terminal), then\n  sharelift migrate YOUR_FOLDER "
            f"'https://contoso.sharepoint.com/sites/Team/Shared Documents/Mine' "
            f"--emulator {tenant.data_dir}"
        )
        return exit_code(first)
