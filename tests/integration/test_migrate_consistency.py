"""What the state store and the reports say always matches the target, whatever happens between
two requests of one file: a run stopped between an empty file's upload and its times, a file
that changes again once its copy was committed, a changed file whose commit would mix versions.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from migrate_helpers import (
    UNIT,
    download,
    expected_files,
    graph_client,
    live_sessions,
    megan,
    run_engine,
    target_files,
    write_tree,
)

from sharelift.emulator.server import EmulatorServer
from sharelift.engine import Engine
from sharelift.graph.types import DriveItem
from sharelift.state import open_state

SOURCE_TIME = 1_700_000_000


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory()


@pytest.fixture
def token(server: EmulatorServer, app_token: Callable[..., str]) -> str:
    return app_token(server)


@pytest.fixture
def graph(server: EmulatorServer, token: str) -> Iterator[httpx.Client]:
    with graph_client(server, token) as client:
        yield client


def _killed_before_the_times(engine: Engine) -> None:
    """The run stops at once when it would set an empty file's times (as a kill there)."""
    drive = engine.drive

    async def update_item(item_id: str, **changes: object) -> DriveItem:
        raise asyncio.CancelledError

    drive.update_item = update_item  # type: ignore[method-assign, assignment]


def test_an_empty_file_left_without_its_times_is_made_right_by_the_next_run(
    server: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_tree(src, {"empty.txt": b"", "note.txt": b"note"})
    for name in ("empty.txt", "note.txt"):
        os.utime(src / name, (SOURCE_TIME, SOURCE_TIME))
    state = tmp_path / "s.db"
    options: dict[str, object] = {"workers": 1}
    asyncio.run(run_engine(server, token, src, "Empty", state, hook=_killed_before_the_times))
    _, drive = megan(server)
    left = graph.get(f"/drives/{drive}/root:/Empty/empty.txt").json()
    assert left["fileSystemInfo"]["lastModifiedDateTime"] != "2023-11-14T22:13:20Z"
    with open_state(state) as store:  # the item made is known as ours, not done
        empty = store.item(store.jobs()[0].id, b"empty.txt")
        assert empty is not None and empty.status != "done" and empty.item_id == left["id"]
    result = asyncio.run(run_engine(server, token, src, "Empty", state, **options))
    assert (result.status, result.failed) == ("completed", 0)
    after = graph.get(f"/drives/{drive}/root:/Empty/empty.txt").json()
    assert after["fileSystemInfo"]["lastModifiedDateTime"] == "2023-11-14T22:13:20Z"
    assert target_files(graph, drive, "Empty") == expected_files(
        {"empty.txt": b"", "note.txt": b"note"}
    )


def test_the_same_bytes_with_other_times_are_given_the_source_s_times_when_adopted(
    server: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    """Under the default policy, a file the target already holds, older there, is adopted and
    given the source's times, as replacing it would have done, without sending it."""
    data = random.Random(3).randbytes(2 * UNIT)
    src = tmp_path / "src"
    write_tree(src, {"same.bin": data})
    os.utime(src / "same.bin", (SOURCE_TIME, SOURCE_TIME))
    _, drive = megan(server)
    put = graph.put(f"/drives/{drive}/root:/Same/same.bin:/content", content=data)
    assert put.status_code == 201
    older = {"lastModifiedDateTime": "2020-01-01T00:00:00Z"}
    patched = graph.patch(
        f"/drives/{drive}/items/{put.json()['id']}", json={"fileSystemInfo": older}
    )
    assert patched.status_code == 200
    server.reset_stats()
    result = asyncio.run(run_engine(server, token, src, "Same", tmp_path / "s.db"))
    assert (result.status, result.adopted, result.uploaded) == ("completed", 1, 0)
    assert "upload" not in server.stats()["by_kind"]
    after = graph.get(f"/drives/{drive}/root:/Same/same.bin").json()
    assert after["id"] == put.json()["id"]
    assert after["fileSystemInfo"]["lastModifiedDateTime"] == "2023-11-14T22:13:20Z"


def _rewrite_once_committed(path: Path, times: int) -> Callable[[Engine], None]:
    """A hook that rewrites `path` (new bytes, same size, new time) each time one of its
    copies has been committed at the target: a file that keeps changing."""

    def hook(engine: Engine) -> None:
        drive = engine.drive
        commit, fragment = drive.commit_upload_session, drive.upload_fragment
        rng = random.Random(9)
        count = 0

        async def rewrite() -> None:
            nonlocal count
            if count < times:
                count += 1
                size = (await asyncio.to_thread(path.stat)).st_size
                await asyncio.to_thread(path.write_bytes, rng.randbytes(size))
                os.utime(path, (SOURCE_TIME + count, SOURCE_TIME + count))

        async def commit_upload_session(upload_url: str) -> DriveItem:
            item = await commit(upload_url)
            await rewrite()
            return item

        async def upload_fragment(
            upload_url: str, data: bytes | memoryview, *, offset: int, total: int
        ) -> object:
            result = await fragment(upload_url, data, offset=offset, total=total)
            if result.item is not None:
                await rewrite()
            return result

        drive.commit_upload_session = commit_upload_session  # type: ignore[method-assign]
        drive.upload_fragment = upload_fragment  # type: ignore[method-assign, assignment]

    return hook


@pytest.mark.slow
@pytest.mark.parametrize("size", [UNIT // 2, 3 * UNIT + 9], ids=["one fragment", "deferred"])
def test_a_copy_committed_before_the_file_changed_again_is_recorded_as_migrated(
    server: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path, size: int
) -> None:
    """The copy at the target is the file as it was read, whole and unchanged meanwhile: the
    state and the report say it was migrated (not that it failed), and the next run sends
    what the file has become."""
    first = random.Random(1).randbytes(size)
    src = tmp_path / "src"
    write_tree(src, {"moving.bin": first})
    os.utime(src / "moving.bin", (SOURCE_TIME, SOURCE_TIME))
    state = tmp_path / "s.db"
    hook = _rewrite_once_committed(src / "moving.bin", times=99)
    result = asyncio.run(
        run_engine(server, token, src, "Moving", state, chunk_size=UNIT, hook=hook)
    )
    assert (result.status, result.uploaded, result.failed) == ("completed", 1, 0)
    _, drive = megan(server)
    assert download(graph, drive, "Moving/moving.bin") == first
    with open_state(state) as store:
        item = store.item(store.jobs()[0].id, b"moving.bin")
        assert item is not None and item.status == "done"
        assert item.mtime_ns == SOURCE_TIME * 10**9  # the copy it holds, not the file now
    now = (src / "moving.bin").read_bytes()
    again = asyncio.run(run_engine(server, token, src, "Moving", state, chunk_size=UNIT))
    assert (again.status, again.uploaded) == ("completed", 1)
    assert download(graph, drive, "Moving/moving.bin") == now
    assert live_sessions(server) == []
