"""`sharelift demo`, the README's first command: a real migration into the built-in emulator,
then a re-run that sends nothing; through Graph, and as Migration API packages (`--via
migration-api`, with Azurite), whose Office files the library rewrites on import too."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from rich.console import Console

from sharelift.cli.demo import SAMPLE, run_demo


@pytest.mark.slow
@pytest.mark.parametrize("via", ["graph", "migration-api"])
def test_the_demo_migrates_the_sample_share_and_its_rerun_sends_nothing(
    tmp_path: Path, via: str
) -> None:
    out = io.StringIO()
    code = run_demo(tmp_path / "demo", Console(file=out, width=200), via=via)
    text = out.getvalue()
    assert code == 0, text
    files = sum(1 for rel in SAMPLE)
    office = sum(1 for rel in SAMPLE if rel.lower().endswith(("docx", "dotx", "xlsx", "pptx")))
    office -= 1  # ~$Report.docx is Office's lock file, not a document
    assert f"{files} files uploaded and verified ({office} of them Office documents" in text
    assert f"0 uploaded, {files} unchanged" in text and "0 bytes sent" in text

    report = tmp_path / "demo" / "reports" / "round-1" / "ItemReport.csv"
    with report.open(encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Content type"] == "File"]
    assert len(rows) == files and {r["Status"] for r in rows} == {"Migrated"}
    checks = {r["Source"].rsplit("/", 1)[-1]: r["Verified by"] for r in rows}
    assert checks["Report.docx"] == "package parts"
    assert checks["scan-0001.tif"] == "hash"
    assert "CON" not in {r["Destination"].rsplit("/", 1)[-1] for r in rows}
