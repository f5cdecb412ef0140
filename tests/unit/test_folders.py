"""The folder creator: 20 folders to a $batch, a bounded queue, each folder told its fate."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from sharelift.engine.folders import FolderCreator, TargetFolder
from sharelift.graph.errors import GraphError
from sharelift.graph.types import DriveItem
from sharelift.source.pipeline import Parent

pytestmark = pytest.mark.anyio


def item(item_id: str, children: int = 0) -> DriveItem:
    return DriveItem(item_id, item_id, 0, None, None, None, None, children, None, None, None, None)


class SlowDrive:
    """Creates folders when `release` is set; "bad/..." ones fail."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.batches: list[list[str]] = []

    async def create_folders(
        self, paths: Sequence[str], *, under: str, existing_ok: bool = True
    ) -> list[DriveItem | GraphError]:
        assert under == "ROOT" and existing_ok
        self.batches.append(list(paths))
        await self.release.wait()
        return [
            GraphError("no", status=403, code="accessDenied")
            if p.startswith("bad/")
            else item(f"id:{p}", 1 if p == "full" else 0)
            for p in paths
        ]


async def test_folders_wait_in_a_bounded_queue_and_go_twenty_to_a_batch() -> None:
    drive = SlowDrive()
    creator = FolderCreator(drive, "ROOT", capacity=30)  # type: ignore[arg-type]
    running = asyncio.create_task(creator.run())
    told: dict[str, str] = {}
    folders: dict[str, TargetFolder] = {}

    async def produce() -> None:
        for n in range(100):
            path = "full" if n == 0 else f"bad/{n}" if n == 1 else f"f{n}"
            folders[path] = TargetFolder.pending(Parent(path, len(path)))

            def settled(result: DriveItem | GraphError, path: str = path) -> None:
                told[path] = result.id if isinstance(result, DriveItem) else str(result.code)

            await creator.put(path, folders[path], settled)

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.05)
    # One batch is out, waiting for Graph; 30 more wait in the queue; the producer waits too.
    assert [len(b) for b in drive.batches] == [20]
    assert len(folders) == 20 + 30 + 1 and not producer.done()
    drive.release.set()
    await producer
    creator.close()
    await running
    sizes = [len(b) for b in drive.batches]
    assert sum(sizes) == 100 and max(sizes) == 20
    assert told["f5"] == "id:f5" and told["bad/1"] == "accessDenied"
    assert folders["full"].listed and not folders["f5"].listed  # first contact: list it
    assert await folders["f5"].ready == "id:f5"
    assert await folders["bad/1"].ready is None
