"""Reports from the state store: SPMT columns, Excel-friendly CSV, consistent summary."""

from __future__ import annotations

import csv
import json
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sharelift.report import ITEM_COLUMNS, SUMMARY_COLUMNS, write_round_reports
from sharelift.report.chart import intervals, svg
from sharelift.state import RoundSample, VerifiedBy, open_state


def _read(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    assert b"\r\n" in raw
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_round_reports(state_location: str, tmp_path: Path) -> None:
    with open_state(state_location) as store:
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


def test_times_read_as_excel_dates_and_new_files_are_written(
    state_location: str, tmp_path: Path
) -> None:
    with open_state(state_location) as store:
        job = store.ensure_job("k", "/srv/share", "https://contoso.sharepoint.com/sites/T/Docs")
        rnd = store.start_round(job.id)
        row = store.upsert_item(job.id, b"<script>.txt", "file", status="pending",
                                round_id=rnd.id, size=3)  # fmt: skip
        store.mark_started(row, rnd.id)
        store.record_done(
            row, round_id=rnd.id, item_id="I", etag=None, quick_xor="h", size=3, mtime_ns=1
        )
        store.finish_round(rnd.id, "completed")
        done = store.round(rnd.id)
        assert done is not None
        files, _ = write_round_reports(store, job, done, tmp_path / "r")
    (item,) = _read(files.items)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", item["Start time"])
    (row,) = _read(files.summary)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row["Start"])
    assert row["Time zone"] == "UTC" and row["Duration"].count(":") == 2
    (line,) = _read(files.job)
    assert (line["Where"], line["Items"], line["Bytes"]) == ("At the target", "1", "3")
    page = files.html.read_text(encoding="utf-8")
    assert "&lt;script&gt;.txt" in page and "<script>" not in page
    assert "<link" not in page and "src=" not in page  # nothing to fetch


def test_a_stopped_round_lists_what_it_did_and_counts_what_it_never_reached(
    state_location: str,
    tmp_path: Path,
) -> None:
    with open_state(state_location) as store:
        job = store.ensure_job("k", "/srv", "https://t/Docs")
        rnd = store.start_round(job.id)
        for name in (b"sent", b"in-flight", b"queued"):
            row = store.upsert_item(job.id, name, "file", status="pending", round_id=rnd.id, size=1)
            if name != b"queued":
                store.mark_started(row, rnd.id)
            if name == b"sent":
                store.record_done(
                    row, round_id=rnd.id, item_id="I", etag=None, quick_xor="h", size=1, mtime_ns=1
                )
        store.finish_round(rnd.id, "interrupted")
        stopped = store.round(rnd.id)
        assert stopped is not None
        files, summary = write_round_reports(store, job, stopped, tmp_path / "r")
    rows = {r["Item name"]: r for r in _read(files.items)}
    assert set(rows) == {"sent", "in-flight"}
    assert (rows["in-flight"]["Status"], rows["in-flight"]["Result category"]) == (
        "In progress",
        "Interrupted",
    )
    assert "resumes" in rows["in-flight"]["Message"]
    assert (summary.interrupted_items, summary.not_started_items) == (1, 1)
    assert summary.status == "Interrupted"


def _sample(seconds: float, done: int) -> RoundSample:
    at = (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return RoundSample(at, 0, done, 0, 0, 0)


START = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_chart_reads_samples_between_their_instants() -> None:
    # 1 MB/s, sampled every 2.1 s (never on an interval's edge), for 20 s.
    samples = [_sample(t / 10, int(t / 10 * 1_000_000)) for t in range(0, 201, 21)]
    samples.append(_sample(20, 20_000_000))
    end = (START + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    found = intervals(samples, samples[0].at, end)
    assert len(found) == 10 and all(i.length == 2 for i in found)
    assert all(abs(i.rate - 1_000_000) < 1 for i in found)
    assert sum(i.bytes for i in found) == 20_000_000
    # A rewind (bytes sent again after a failed attempt) is no negative throughput.
    rewound = intervals([_sample(0, 0), _sample(2, 500), _sample(4, 100)], samples[0].at, end)
    assert min(i.bytes for i in rewound) == 0
    assert "MB/s" in svg(found) and "<script" not in svg(found)


def test_reports_are_private_and_say_how_each_file_was_verified(tmp_path: Path) -> None:
    with open_state(tmp_path / "s.db") as store:
        job = store.ensure_job("k", "/srv/share", "https://contoso.sharepoint.com/sites/T/Docs")
        rnd = store.start_round(job.id)
        checks = {
            b"plain.txt": (VerifiedBy.HASH, None),
            b"deck.pptx": (VerifiedBy.PARTS, None),
            b"old.doc": (VerifiedBy.SIZE, ("NOT_VERIFIED", "SharePoint rewrote the file")),
        }
        for n, (path, (check, note)) in enumerate(checks.items()):
            row = store.upsert_item(job.id, path, "file", status="pending", round_id=rnd.id)
            store.record_done(
                row, round_id=rnd.id, item_id=f"I{n}", etag=None, quick_xor="h", size=1,
                mtime_ns=1, verified_by=check, stored_size=2, stored_hash="s",
                note_code=note[0] if note else None, note=note[1] if note else None,
            )  # fmt: skip
        store.finish_round(rnd.id, "completed")
        record = store.round(rnd.id)
        assert record is not None
        existing = tmp_path / "mine"
        existing.mkdir(mode=0o755)
        existing.chmod(0o755)
        files, summary = write_round_reports(store, job, record, existing / "job" / "round")
    for folder in (existing / "job", existing / "job" / "round"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755  # chosen by its owner: kept
    for path in (files.items, files.failures, files.summary, files.summary_json, files.job,
                 files.html):  # fmt: skip
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    rows = {row["Item name"]: row for row in _read(files.items)}
    assert [rows[n]["Verified by"] for n in ("plain.txt", "deck.pptx", "old.doc")] == [
        "hash",
        "package parts",
        "size only",
    ]
    assert rows["deck.pptx"]["Result category"] == "Migrated, SharePoint added its metadata"
    assert rows["deck.pptx"]["Message"] == "verified; SharePoint added its metadata"
    assert rows["old.doc"]["Result category"] == "Migrated, not verified"
    assert summary.warning_count == 1
