"""`sharelift demo`: a real migration into the built-in emulator, start to finish.

It starts the emulator in this process, writes a small department share with the names that
trip migrations up (a colon, a reserved name, an Office lock file, a case collision, a folder
named Forms at the library root, non-ASCII names, an empty file, a file large enough for an
upload session in several fragments), scans it, migrates it into a SharePoint library given as
the URL a user would copy from the browser, prints the item report, then runs again to show
that an unchanged share costs no upload. Everything lives in one folder (default
./sharelift-demo), kept for a look afterwards.
"""

from __future__ import annotations

import asyncio
import csv
import os
import random
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sharelift.auth import AuthSettings, build_credential
from sharelift.clouds import emulator_cloud
from sharelift.migrate import Endpoints, MigrateOutcome, MigrateRequest, run_job
from sharelift.progress import choose_renderer
from sharelift.scan import render_summary, run_scan
from sharelift.source import ScanOptions, TargetPrefix
from sharelift.target import parse_target
from sharelift.transfer import EngineConfig

TARGET = "https://contoso.sharepoint.com/sites/Team/Shared%20Documents/Forms/AllItems.aspx?id=%2Fsites%2FTeam%2FShared%20Documents%2FDepartment"

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
    """Write the sample share (deterministic bytes, fixed times)."""
    rng = random.Random(2026)
    for rel, content in SAMPLE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content if isinstance(content, bytes) else rng.randbytes(content)
        path.write_bytes(data)
        os.utime(path, (1_767_225_600, 1_767_225_600))  # 2026-01-01


def _item_table(outcome: MigrateOutcome) -> Table:
    table = Table(title="ItemReport.csv", show_lines=False)
    for column in ("Source", "Destination", "Status", "Result category", "Message"):
        table.add_column(column, overflow="fold")
    if outcome.reports is None:
        return table
    with outcome.reports.items.open(encoding="utf-8-sig", newline="") as fh:
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


def run_demo(folder: Path, console: Console | None = None) -> int:
    """Run the demo in `folder`; returns the exit code of the first migration round."""
    from sharelift.emulator.server import EmulatorServer
    from sharelift.emulator.settings import EmulatorSettings

    console = console or Console()
    folder = folder.resolve()
    source = folder / "source"
    if not source.exists():
        make_share(source)
    with EmulatorServer(EmulatorSettings(data_dir=folder / "emulator")) as server:
        cloud = emulator_cloud(server.data_dir)
        console.rule("[bold]sharelift demo")
        console.print(f"emulator   {server.info['base_url']}  (data in {server.data_dir})")
        console.print(f"source     {source}")
        console.print(f"target     {TARGET}\n")

        target = parse_target(TARGET)
        prefix = TargetPrefix("/sites/Team/Shared Documents/Department", at_library_root=False)
        summary = run_scan(source, ScanOptions(target=prefix), report_dir=folder / "scan")
        render_summary(summary, console)

        credential = build_credential(
            AuthSettings(
                method="secret",
                authority=str(server.info["authority"]),
                client_id=str(server.info["client_id"]),
                secret=str(server.info["client_secret"]),
                ca_file=cloud.ca_file,
                instance_discovery=False,
            )
        )
        request = MigrateRequest(
            source=str(source),
            target=target,
            endpoints=Endpoints(cloud.graph_url, cloud.graph_scope, cloud.ca_file),
            engine=EngineConfig(workers=8),
            state_path=folder / "state.db",
            report_dir=folder / "reports" / "round-1",
        )
        console.rule("[bold]migrating")
        first = asyncio.run(run_job(request, credential, renderer=choose_renderer(False)))
        console.print(_item_table(first))
        assert first.summary is not None and first.result is not None
        r = first.result
        console.print(
            f"[bold]{r.uploaded} files uploaded and verified by quickXorHash[/], "
            f"{r.skipped} skipped, {r.failed} failed; "
            f"{first.summary.migrated_bytes / 1024**2:.1f} MiB at "
            f"{first.summary.gb_per_hour:.1f} GB/hour"
        )
        console.print(f"reports    {first.reports.folder if first.reports else '-'}")

        console.rule("[bold]running again (incremental)")
        server.reset_stats()
        again_request = MigrateRequest(
            **{**request.__dict__, "report_dir": folder / "reports" / "round-2"}
        )
        again = asyncio.run(run_job(again_request, credential))
        assert again.result is not None
        stats = server.stats()
        console.print(
            f"{again.result.uploaded} uploaded, {again.result.unchanged} unchanged; "
            f"{stats['requests']} Graph requests in all (the target's resolution), "
            f"{stats['bytes_in']} bytes sent"
        )
        console.print(
            f"\nTry it yourself:  sharelift emulator --data {server.data_dir}   (in another "
            "terminal), then\n  sharelift migrate YOUR_FOLDER "
            f"'https://contoso.sharepoint.com/sites/Team/Shared Documents/Mine' "
            f"--emulator {server.data_dir}"
        )
        return first.exit_code
