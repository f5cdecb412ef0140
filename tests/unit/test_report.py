"""Reports from the state store: SPMT columns, Excel-friendly CSV, consistent summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from sharelift.report import ITEM_COLUMNS, SUMMARY_COLUMNS, write_round_reports
from sharelift.state import open_state


def _read(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    assert b"\r\n" in raw
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_round_reports(tmp_path: Path) -> None:
    with open_state(tmp_path / "s.db") as store:
        job = store.ensure_job("k", "/srv/share", "https://contoso.sharepoint.com/sites/T/Docs")
        r1 = store.start_round(job.id)
        old = store.upsert_item(
            job.id, b"old.txt", "file", status="pending", round_id=r1.id, size=7
        )
        store.record_done(
            old, round_id=r1.id, item_id="I0", etag="e", quick_xor="h0", size=7, mtime_ns=1
        )
        store.finish_round(r1.id, "completed")

        r2 = store.start_round(job.id)
        store.mark_seen([old], r2.id)  # unchanged: no row in this round's item report
        ok = store.upsert_item(
            job.id,
            "Bericht ü.docx".encode(),
            "file",
            status="pending",
            round_id=r2.id,
            size=100,
            target_path="Bericht ü.docx",
        )
        store.mark_started(ok, r2.id)
        store.record_done(
            ok, round_id=r2.id, item_id="I1", etag="e1", quick_xor="h1", size=100, mtime_ns=2
        )
        bad = store.upsert_item(
            job.id, b"locked.pst", "file", status="pending", round_id=r2.id, size=50
        )
        store.record_outcome(
            bad, round_id=r2.id, status="failed", code="READ_ERROR", message="Permission denied"
        )
        bad2 = store.upsert_item(
            job.id, b"other.pst", "file", status="pending", round_id=r2.id, size=5
        )
        store.record_outcome(
            bad2, round_id=r2.id, status="failed", code="READ_ERROR", message="Permission denied"
        )
        blk = store.upsert_item(job.id, b"CON", "file", status="blocked", round_id=r2.id, size=1)
        store.record_outcome(
            blk, round_id=r2.id, status="blocked", code="PATH_TOO_LONG", message="path too long"
        )
        store.update_round(r2.id, throttled=3)
        store.finish_round(r2.id, "completed")
        rnd = store.round(r2.id)
        assert rnd is not None
        files, summary = write_round_reports(store, job, rnd, tmp_path / "reports")

    items = _read(files.items)
    assert list(items[0]) == ITEM_COLUMNS
    by_name = {row["Item name"]: row for row in items}
    assert set(by_name) == {"Bericht ü.docx", "locked.pst", "other.pst", "CON"}
    assert by_name["Bericht ü.docx"]["Status"] == "Migrated"
    assert by_name["Bericht ü.docx"]["Destination"].endswith("/Docs/Bericht ü.docx")
    assert by_name["Bericht ü.docx"]["Extension"] == "docx"
    assert by_name["locked.pst"]["Result category"] == "Source read failure"
    assert by_name["CON"]["Status"] == "Not migrated"

    failures = _read(files.failures)
    assert failures[0]["Error code"] == "READ_ERROR" and failures[0]["Count"] == "2"
    assert {f["Error code"] for f in failures} == {"READ_ERROR", "PATH_TOO_LONG"}

    (row,) = _read(files.summary)
    assert list(row) == SUMMARY_COLUMNS
    assert row["Migrated items"] == "1" and row["Failed items"] == "2"
    assert row["Skipped items"] == "0" and row["Unchanged items"] == "1"
    assert row["Total scanned items"] == "5" and row["Count of files"] == "5"
    assert row["Migrated bytes"] == "100" and row["Throttled requests"] == "3"
    assert row["Round number"] == "2"
    doc = json.loads(files.summary_json.read_text(encoding="utf-8"))
    assert doc["summary"]["migrated_items"] == summary.migrated_items == 1
    assert not list((tmp_path / "reports").glob("*.tmp"))
