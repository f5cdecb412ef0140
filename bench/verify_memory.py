"""Peak memory of --verify-target's reconciliation over N done items.

Usage:
    .venv/bin/python bench/verify_memory.py [--items 1000000] [--page 200]

Builds, in a temporary folder, a state store holding one job with N done files (and their
folders, 1,000 files to a folder), then runs the reconcile step of --verify-target against a
synthetic delta of the same N items, parsed page by page as Graph's would be (`DeltaPage.
from_json`, `--page` items to a page; one file in a thousand changed at the target and one
missing, so that both outcomes are written). No network: the drive is a stand-in whose
`delta()` makes the pages. Each step runs in a process of its own; the reconcile process
prints its resident set before the step (VmRSS) and its peak (VmHWM), and the step's wall and
CPU time.

Run it with PYTHONPATH set to another source tree to measure that commit (before the engine
was split, the step is `transfer.Engine._verify_target`; both are found).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

FILES_PER_FOLDER = 1000


def qxh(n: int) -> str:
    return f"{n:027d}A="


def proc_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/self/status")


def build(path: str, items: int) -> None:
    """The store, opened (schema) by the sharelift under test, filled with plain SQL."""
    try:
        from sharelift.state import open_state as opener
    except ImportError:  # before open_state existed
        from sharelift.state import StateStore

        opener = StateStore.open
    with opener(path) as store:
        job = store.ensure_job("bench", "/src", "https://target")
        rnd = store.start_round(job.id)
        store.finish_round(rnd.id, "completed")  # type: ignore[arg-type]
    conn = sqlite3.connect(path)
    folders = (items + FILES_PER_FOLDER - 1) // FILES_PER_FOLDER
    rows = (
        (
            job.id, f"d{n // FILES_PER_FOLDER:05d}/f{n:07d}.bin".encode(),
            f"d{n // FILES_PER_FOLDER:05d}".encode(), "file",
            f"d{n // FILES_PER_FOLDER:05d}/f{n:07d}.bin", 1000, 1, qxh(n), f"T{n}", "done",
            rnd.id, rnd.id,
        )
        for n in range(items)
    )  # fmt: skip
    with conn:
        conn.executemany(
            "INSERT INTO items (job_id, path, parent, kind, target_path, size, mtime_ns, "
            "quick_xor, item_id, status, round_id, seen_round) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO items (job_id, path, parent, kind, target_path, item_id, status, "
            "round_id, seen_round) VALUES (?, ?, '', 'folder', ?, ?, 'done', ?, ?)",
            (
                (job.id, f"d{f:05d}".encode(), f"d{f:05d}", f"D{f}", rnd.id, rnd.id)
                for f in range(folders)
            ),
        )
    conn.execute("ANALYZE")
    conn.close()


class Delta:
    """A drive whose delta lists the N items (and their folders), `page` to a page."""

    def __init__(self, items: int, page: int) -> None:
        self.items = items
        self.page = page

    def _entry(self, n: int) -> dict[str, Any] | None:
        if n % 1000 == 999:
            return None  # deleted at the target
        changed = n % 1000 == 500
        return {
            "id": f"T{n}",
            "name": f"f{n:07d}.bin",
            "size": 1000,
            "file": {"hashes": {"quickXorHash": "changed=" if changed else qxh(n)}},
        }

    async def delta(self) -> AsyncIterator[Any]:
        from sharelift.graph.types import DeltaPage

        folders = (self.items + FILES_PER_FOLDER - 1) // FILES_PER_FOLDER
        values = [{"id": f"D{f}", "name": f"d{f:05d}", "folder": {}} for f in range(folders)]
        for start in range(0, self.items, self.page):
            entries = [self._entry(n) for n in range(start, min(start + self.page, self.items))]
            values += [e for e in entries if e is not None]
            more = start + self.page < self.items
            yield DeltaPage.from_json(
                {"value": values, **({"@odata.nextLink": "https://next"} if more else {})}
            )
            values = []


async def reconcile(path: str, items: int, page: int) -> None:
    drive = Delta(items, page)
    try:
        from sharelift.engine.outcomes import Outcomes
        from sharelift.engine.reconcile import verify_target
        from sharelift.progress import Tally
        from sharelift.state import open_state
    except ImportError:
        await reconcile_before_the_split(path, drive)
        return
    with open_state(path) as store:
        job = store.jobs()[0]
        rnd = store.start_round(job.id)
        outcomes = Outcomes(store, Tally(), job.id, rnd.id)
        await measure(lambda: verify_target(drive, store, outcomes, job.id, rnd.id))  # type: ignore[arg-type]
        print_counts(store.count_items(job.id))


async def reconcile_before_the_split(path: str, drive: Delta) -> None:
    from sharelift.source.walk import ScanOptions
    from sharelift.state import StateStore
    from sharelift.target import ResolvedTarget

    transfer = importlib.import_module("sharelift.transfer")  # gone since the engine split
    Engine, EngineConfig = transfer.Engine, transfer.EngineConfig
    target = ResolvedTarget("drive", "business", "/personal/x/Documents", "", "ROOT", "https://t")
    with StateStore.open(path) as store:
        job = store.jobs()[0]
        engine = Engine(
            drive=drive,  # type: ignore[arg-type]
            store=store,
            job=job,
            source="/src",
            target=target,
            options=ScanOptions(),
            config=EngineConfig(),
        )
        engine._round_id = store.start_round(job.id).id
        await measure(engine._verify_target)
        print_counts(store.count_items(job.id))


async def measure(step: Callable[[], Awaitable[None]]) -> None:
    before = proc_kib("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    await step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"reconcile: {wall:.1f} s wall, {cpu:.1f} s CPU; RSS before it {before / 1024:.0f} MiB, "
        f"peak (VmHWM) {proc_kib('VmHWM') / 1024:.0f} MiB"
    )


def print_counts(counts: dict[str, int]) -> None:
    print(f"items after: {dict(sorted(counts.items()))}")


def child(argv: list[str]) -> None:
    args = argparse.Namespace(step=argv[0], path=argv[1], items=int(argv[2]), page=int(argv[3]))
    if args.step == "build":
        build(args.path, args.items)
        return
    asyncio.run(reconcile(args.path, args.items, args.page))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "state.db")
        for step in ("build", "reconcile"):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, __file__, "--child", step, path, str(args.items), str(args.page)],
                check=True,
            )
            print(f"{step}: {time.perf_counter() - started:.1f} s (process)")


if __name__ == "__main__":
    main()
