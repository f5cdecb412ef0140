"""SharePoint may refuse to replace or delete an Office or web file in a library (404 itemNotFound
although it is there): the old file is moved aside, the new one sent, the old one deleted; a run
stopped anywhere in between is repaired by the next; neither version is ever lost.

The refusals here are made by wrapping the engine's drive (the 404 comes where the service
sends it: the bytes that would replace the file, or the DELETE), so each step can be stopped
at will."""

from __future__ import annotations

import asyncio
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
from sharelift.graph.errors import NotFound
from sharelift.graph.types import DriveItem
from sharelift.graph.uploads import FragmentResult
from sharelift.state import open_state


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


def _refuse_replacing(times: int, *, stop_after_aside: bool = False) -> Callable[[Engine], None]:
    """Refuse the commit of a replacement (the last fragment, or the deferred commit) `times`
    times, as SharePoint does; with `stop_after_aside`, stop the run at once when the old file
    has been renamed aside (as a kill there)."""

    def hook(engine: Engine) -> None:
        drive = engine.drive
        fragment, commit, update = (
            drive.upload_fragment,
            drive.commit_upload_session,
            drive.update_item,
        )
        left = times

        def refuse() -> None:
            nonlocal left
            if left > 0:
                left -= 1
                raise NotFound("The resource could not be found.", status=404, code="itemNotFound")

        async def upload_fragment(
            upload_url: str, data: bytes | memoryview, *, offset: int, total: int
        ) -> FragmentResult:
            length = data.nbytes if isinstance(data, memoryview) else len(data)
            if offset + length == total and total <= UNIT:  # a one-fragment replacement
                refuse()
            return await fragment(upload_url, data, offset=offset, total=total)

        async def commit_upload_session(upload_url: str) -> DriveItem:
            refuse()
            return await commit(upload_url)

        async def update_item(item_id: str, **changes: object) -> DriveItem:
            item = await update(item_id, **changes)  # type: ignore[arg-type]
            if stop_after_aside and str(changes.get("name", "")).endswith(".old"):
                raise asyncio.CancelledError
            return item

        drive.upload_fragment = upload_fragment  # type: ignore[method-assign]
        drive.commit_upload_session = commit_upload_session  # type: ignore[method-assign]
        drive.update_item = update_item  # type: ignore[method-assign, assignment]

    return hook


def first_run(server: EmulatorServer, token: str, src: Path, folder: str, state: Path) -> None:
    result = asyncio.run(run_engine(server, token, src, folder, state, chunk_size=UNIT))
    assert (result.status, result.failed) == ("completed", 0)


@pytest.mark.slow
@pytest.mark.parametrize("size", [UNIT // 3, 2 * UNIT + 7], ids=["one fragment", "deferred"])
def test_a_refused_replacement_moves_the_old_file_aside_and_deletes_it_after(
    server: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path, size: int
) -> None:
    rng = random.Random(size)
    src = tmp_path / "src"
    write_tree(src, {"report.docx": rng.randbytes(size)})
    state = tmp_path / "s.db"
    first_run(server, token, src, "Refused", state)
    _, drive = megan(server)
    old_id = graph.get(f"/drives/{drive}/root:/Refused/report.docx").json()["id"]
    new = rng.randbytes(size + 5)
    write_tree(src, {"report.docx": new})
    result = asyncio.run(
        run_engine(server, token, src, "Refused", state, chunk_size=UNIT, hook=_refuse_replacing(1))
    )
    assert (result.status, result.uploaded, result.failed) == ("completed", 1, 0)
    assert target_files(graph, drive, "Refused") == expected_files({"report.docx": new})
    assert graph.get(f"/drives/{drive}/items/{old_id}").status_code == 404  # deleted after
    with open_state(state) as store:
        assert store.moved_aside_of_job(store.jobs()[0].id) == []
    assert live_sessions(server) == []


def test_a_run_stopped_after_the_move_aside_is_repaired_by_the_next(
    server: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    rng = random.Random(3)
    old = rng.randbytes(1000)
    src = tmp_path / "src"
    write_tree(src, {"deck.pptx": old})
    state = tmp_path / "s.db"
    first_run(server, token, src, "Stopped", state)
    _, drive = megan(server)
    new = rng.randbytes(2000)
    write_tree(src, {"deck.pptx": new})
    hook = _refuse_replacing(1, stop_after_aside=True)
    asyncio.run(run_engine(server, token, src, "Stopped", state, chunk_size=UNIT, hook=hook))
    # Stopped with the old file aside: recorded, and still there under its aside name.
    names = sorted(target_files(graph, drive, "Stopped"))
    assert len(names) == 1 and names[0].endswith(".old"), names
    with open_state(state) as store:
        (aside,) = store.moved_aside_of_job(store.jobs()[0].id)
        assert aside.name == "deck.pptx"
    # The next run puts it back first (the name is free), then replaces it properly.
    result = asyncio.run(run_engine(server, token, src, "Stopped", state, chunk_size=UNIT))
    assert (result.status, result.failed) == ("completed", 0)
    assert target_files(graph, drive, "Stopped") == expected_files({"deck.pptx": new})
    with open_state(state) as store:
        assert store.moved_aside_of_job(store.jobs()[0].id) == []


def test_a_replacement_refused_for_good_puts_the_old_file_back(
    server: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    rng = random.Random(4)
    old = rng.randbytes(900)
    src = tmp_path / "src"
    write_tree(src, {"sheet.xlsx": old})
    state = tmp_path / "s.db"
    first_run(server, token, src, "Back", state)
    write_tree(src, {"sheet.xlsx": rng.randbytes(950)})
    result = asyncio.run(
        run_engine(server, token, src, "Back", state, chunk_size=UNIT, hook=_refuse_replacing(99))
    )
    assert (result.status, result.failed) == ("completed", 1)
    _, drive = megan(server)
    assert target_files(graph, drive, "Back") == expected_files({"sheet.xlsx": old})
    assert download(graph, drive, "Back/sheet.xlsx") == old


def test_a_refused_mirror_deletion_moves_the_file_aside_and_deletes_it(
    server: EmulatorServer, token: str, graph: httpx.Client, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_tree(src, {"page.aspx": b"<html/>", "keep.txt": b"keep"})
    state = tmp_path / "s.db"
    first_run(server, token, src, "Mirror", state)
    (src / "page.aspx").unlink()

    def refuse_once(engine: Engine) -> None:
        drive = engine.drive
        delete = drive.delete_item
        refused = False

        async def delete_item(item_id: str, **kwargs: object) -> None:
            nonlocal refused
            if not refused:
                refused = True
                raise NotFound("The resource could not be found.", status=404, code="itemNotFound")
            await delete(item_id, **kwargs)  # type: ignore[arg-type]

        drive.delete_item = delete_item  # type: ignore[method-assign]

    result = asyncio.run(
        run_engine(server, token, src, "Mirror", state, mirror=True, hook=refuse_once)
    )
    assert (result.status, result.deleted, result.failed) == ("completed", 1, 0)
    _, drive = megan(server)
    assert target_files(graph, drive, "Mirror") == expected_files({"keep.txt": b"keep"})
