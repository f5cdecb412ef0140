"""The dashboard's Migration API section without a browser: its figures are the state store's
(packages and the service's jobs by state, bytes packaged, uploaded and imported), a job's
packages and the service's events are listed and filtered with no secret shown, the section
stays hidden while no job used the Migration API, and pages of one job share one read per
change."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from sharelift.dashboard import DashboardServer
from sharelift.dashboard.fragments import job_update, overview_update
from sharelift.dashboard.live import Live
from sharelift.dashboard.migration import event_count, figures, package_details
from sharelift.dashboard.pages import overview_page
from sharelift.dashboard.readings import Reader
from sharelift.state import (
    ItemStatus,
    PackageEventRecord,
    PackageFileRecord,
    PackageStatus,
    ServiceJob,
    ServiceJobState,
    StateStore,
    open_state,
)

SAS = "https://acct.blob.core.windows.net/c?sv=2023-11-03&sr=c&sig=S3CR3TSIG&sp=rw"


def _package(store: StateStore, job_id: int, round_id: int, name: str, sizes: list[int]) -> int:
    rows = [
        store.upsert_item(job_id, f"{name}/{i}".encode(), "file", status=ItemStatus.PENDING,
                          round_id=round_id, size=size, mtime_ns=1)
        for i, size in enumerate(sizes)
    ]  # fmt: skip
    return store.create_migration_package(
        job_id, round_id, name, data_uri=SAS, manifest_uri=SAS, queue_uri=SAS,
        key_file="/keys/k.key", own_containers=False,
        files=[PackageFileRecord(0, r, f"id{r}", f"id{r}.dat", size, 1, None, None, False)
               for r, size in zip(rows, sizes, strict=True)],
    )  # fmt: skip


def _problem(event: str, message: str, url: str = "") -> PackageEventRecord:
    return PackageEventRecord(0, event, "2026-11-23T13:05:01.000000Z", "-2147024816", url, message)


def _state(at: ServiceJobState, files: int, size: int) -> ServiceJob:
    return ServiceJob(at, "JobProgress", "2026-11-23T13:05:02.000000Z", files, size)


def _store(path: str | Path) -> int:
    """A job whose last round has a package in each stage; its id."""
    with open_state(path) as store:
        job = store.ensure_job("k", "/srv/share", "https://contoso.sharepoint.com/sites/T")
        rnd = store.start_round(job.id)
        packing = _package(store, job.id, rnd.id, "p-packing", [100, 200])
        first = store.package_files(packing)[0]
        store.package_file_stored(packing, first.item_row, quick_xor="q", md5="m")
        postponed = _package(store, job.id, rnd.id, "p-postponed", [1000])
        store.set_package_status(postponed, PackageStatus.SUBMITTED, migration_job_id="job-b")
        store.package_progress(postponed, "1", errors=0, warnings=0,
                               job=_state(ServiceJobState.POSTPONED, 0, 0))  # fmt: skip
        importing = _package(store, job.id, rnd.id, "p-importing", [3000, 4000])
        store.set_package_status(importing, PackageStatus.SUBMITTED, migration_job_id="job-c")
        store.package_progress(
            importing, "5", errors=1, warnings=1, job=_state(ServiceJobState.PROCESSING, 1, 3000),
            events=[
                _problem("JobError", f"Cannot read {SAS}", "Shared Documents/a.txt"),
                _problem("JobWarning", "Failed to ensure user 'x@contoso.com'"),
            ],
        )  # fmt: skip
        done = _package(store, job.id, rnd.id, "p-done", [50])
        store.set_package_status(done, PackageStatus.SUBMITTED, migration_job_id="job-d")
        store.package_progress(done, "9", errors=0, warnings=0,
                               job=_state(ServiceJobState.DONE, 1, 50))  # fmt: skip
        store.set_package_status(done, PackageStatus.CLOSED)
    return job.id


@pytest.mark.slow
def test_the_figures_are_the_stores(state_location: str) -> None:
    job_id = _store(state_location)
    with open_state(state_location, readonly=True) as store:
        reading = Reader().read(store)
    figs = figures(reading.packages)
    assert figs is not None and figs == figures(reading.packages, job_id)
    assert {s: n for s, n in figs.by_status if n} == {"packing": 1, "submitted": 2, "closed": 1}
    assert dict(figs.by_job_state) == {
        "queued": 0, "postponed": 1, "processing": 1, "done": 1, "failed": 0
    }  # fmt: skip
    assert (figs.packages, figs.files, figs.bytes) == (4, 6, 8350)
    assert figs.bytes_uploaded == 100 + 1000 + 7000 + 50  # the packing package: its stored blob
    assert (figs.files_imported, figs.bytes_imported) == (2, 3050)
    assert (figs.errors, figs.warnings) == (1, 1)

    up = overview_update(reading)
    assert up.shown["migration-api-section"]
    section = up.html["migration-api"]
    assert 'data-package-state="submitted"><span class="state state-submitted">' in section
    assert '<li data-job-state="postponed"><span class="state state-postponed">postponed</span> ' \
           "<strong>1</strong>" in section  # fmt: skip
    assert 'data-bytes="uploaded" data-value="8150"' in section
    assert 'data-bytes="imported" data-value="3050"' in section
    assert figures(reading.packages, job_id + 1) is None


def test_without_packages_the_section_is_hidden(tmp_path: Path) -> None:
    with open_state(tmp_path / "s.db") as store:
        job = store.ensure_job("k", "/srv/share", "https://contoso.sharepoint.com/sites/T")
        store.start_round(job.id)
        reading = Reader().read(store)
    assert reading.packages == []
    up = overview_update(reading)
    assert up.shown == {"migration-api-section": False} and up.html["migration-api"] == ""
    assert 'data-live="migration-api-section" hidden>' in overview_page(reading, "s.db")
    assert job_update(reading, job.id).shown == {"job-migration-api-section": False}


def test_a_jobs_packages_and_the_service_events_without_secrets(state_location: str) -> None:
    job_id = _store(state_location)
    with open_state(state_location, readonly=True) as store:
        every = package_details(store, job_id)
        errors = package_details(store, job_id, "A.TXT")
        nothing = package_details(store, job_id, "no such words")
        reading = Reader().read(store)
    assert [p.package_id for p in every.packages] == [
        "p-done", "p-importing", "p-postponed", "p-packing"
    ]  # fmt: skip
    assert [e.kind for e in every.events] == ["error", "warning"]
    assert event_count(every, "") == "2 events: 1 error, 1 warning."
    assert [e.url for e in errors.events] == ["Shared Documents/a.txt"]
    assert event_count(errors, "a.txt") == "1 event matching the filter: 1 error."
    assert nothing.events == [] and event_count(nothing, "x") == "0 events matching the filter."

    up = job_update(reading, job_id, every)
    page = json.dumps(up.as_json())
    assert up.shown["job-migration-api-section"]
    assert 'data-package=\\"p-importing\\"' in page and "job-c" in page and "JobProgress" in page
    assert "1 / 1" in up.html["job-packages"]  # its errors / warnings
    assert "Failed to ensure user" in up.html["job-events"]
    assert "S3CR3TSIG" not in page and "/keys/k.key" not in page and "(hidden)" in page


def test_pages_of_one_job_share_one_read_per_change(tmp_path: Path) -> None:
    job_id = _store(tmp_path / "s.db")
    reads: list[int] = []

    def work(store: StateStore) -> int:
        reads.append(1)
        return len(store.migration_packages(job_id))

    async def pages() -> list[int | None]:
        live = Live(tmp_path / "s.db")
        try:
            got = [await live.on_demand((job_id, ""), "v1", work) for _ in range(3)]
            got.append(await live.on_demand((job_id, "x"), "v1", work))  # another filter
            got.append(await live.on_demand((job_id, ""), "v2", work))  # the figures changed
            return got
        finally:
            await live.close()

    assert asyncio.run(pages()) == [4, 4, 4, 4, 4]
    assert len(reads) == 3


def test_the_job_page_and_its_stream_over_http(tmp_path: Path) -> None:
    job_id = _store(tmp_path / "s.db")
    with DashboardServer(tmp_path / "s.db", port=0, interval=0.2) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = httpx.get(f"{base}/jobs/{job_id}", params={"events": "ensure user"}).text
        assert "p-postponed" in page and "Failed to ensure user" in page
        assert "Cannot read" not in page  # filtered out
        assert 'data-events="/events?job=1&amp;events=ensure+user"' in page
        assert "S3CR3TSIG" not in page and "sig=" not in page
        with httpx.stream(
            "GET", f"{base}/events", params={"job": job_id, "events": "ensure user"}, timeout=10
        ) as events:
            data = next(line for line in events.iter_lines() if line.startswith("data:"))
        update = json.loads(data.removeprefix("data:"))
        assert update["text"]["job-event-count"] == "1 event matching the filter: 1 warning."
        assert "p-done" in update["html"]["job-packages"]
        assert update["shown"] == {"job-migration-api-section": True}
        overview = httpx.get(base + "/").text
        assert 'data-live="migration-api-section">' in overview  # shown, not hidden
