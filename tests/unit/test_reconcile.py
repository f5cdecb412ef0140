"""--verify-target: the state store reconciled with the target's delta, one page at a time."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sharelift.engine.outcomes import Outcomes
from sharelift.engine.reconcile import verify_target
from sharelift.graph.types import DeltaPage
from sharelift.progress import Tally
from sharelift.state import ItemStatus, StateStore, open_state

PAGE = 200


def qxh(n: int) -> str:
    return f"{n:027d}A="


class Delta:
    """A drive whose delta lists `entries` (JSON driveItems), PAGE to a page."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries

    async def delta(self) -> AsyncIterator[DeltaPage]:
        for start in range(0, len(self.entries), PAGE):
            more = start + PAGE < len(self.entries)
            yield DeltaPage.from_json(
                {
                    "value": self.entries[start : start + PAGE],
                    **({"@odata.nextLink": "https://next"} if more else {}),
                }
            )


def done_files(store: StateStore, count: int) -> tuple[int, int]:
    """A job with `count` done files (target ids T0.., hashes qxh(n)) and one done folder."""
    job = store.ensure_job("k", "/src", "t")
    rnd = store.start_round(job.id)
    folder = store.upsert_item(job.id, b"d", "folder", status=ItemStatus.PENDING, round_id=rnd.id)
    store.record_done(
        folder, round_id=rnd.id, item_id="D", etag=None, quick_xor=None, size=None, mtime_ns=None
    )
    for n in range(count):
        row = store.upsert_item(
            job.id, b"d/f%d" % n, "file", status=ItemStatus.PENDING, round_id=rnd.id
        )
        store.record_done(
            row, round_id=rnd.id, item_id=f"T{n}", etag=None, quick_xor=qxh(n), size=1, mtime_ns=1
        )
    store.flush()
    return job.id, store.start_round(job.id).id


def file_entry(item_id: str, quick_xor: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "name": item_id,
        "size": 1,
        "file": {"hashes": {"quickXorHash": quick_xor}},
    }


def test_changed_and_missing_items_are_no_longer_done_the_rest_untouched(
    state_location: str, tmp_path: Path
) -> None:
    with open_state(state_location) as store:
        job_id, round_id = done_files(store, 6)
        entries = [
            {"id": "D", "name": "d", "folder": {"childCount": 5}},
            file_entry("T0", qxh(0)),
            file_entry("T1", "changed-at-the-target="),
            {"id": "T2", "deleted": {}},  # a tombstone: gone
            file_entry("T4", qxh(4)),
            file_entry("T5", qxh(5)),
            file_entry("theirs", "x="),  # not the job's
        ]  # T3: not listed at all
        outcomes = Outcomes(store, Tally(), job_id, round_id)
        asyncio.run(verify_target(Delta(entries), store, outcomes, job_id, round_id))  # type: ignore[arg-type]
        state = {i.display_path: (i.status, i.error_code) for i in store.items(job_id)}
    assert state == {
        "d": ("done", None),
        "d/f0": ("done", None),
        "d/f1": ("skipped", "TARGET_CHANGED"),
        "d/f2": ("skipped", "TARGET_MISSING"),
        "d/f3": ("skipped", "TARGET_MISSING"),
        "d/f4": ("done", None),
        "d/f5": ("done", None),
    }


@pytest.mark.slow
def test_memory_holds_a_page_not_the_job(tmp_path: Path) -> None:
    """Reconciling 10,000 done files allocates about what one page of the delta takes; it
    used to hold every done item (and every id seen) at once. (The engine's allocations, on
    SQLite: the bound is the reconciling code's, not a backend's.)"""
    count = 10_000
    with open_state(tmp_path / "s.db") as store:
        job_id, round_id = done_files(store, count)
        entries = [{"id": "D", "name": "d", "folder": {"childCount": count}}]
        entries += [file_entry(f"T{n}", qxh(n)) for n in range(count) if n % 1000]
        outcomes = Outcomes(store, Tally(), job_id, round_id)
        drive = Delta(entries)
        tracemalloc.start()
        try:
            asyncio.run(verify_target(drive, store, outcomes, job_id, round_id))  # type: ignore[arg-type]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert store.count_items(job_id) == {"done": 1 + count - 10, "skipped": 10}
    assert peak < 1.5 * 1024 * 1024, peak
