"""The Graph client against the local emulator: real sockets, TLS with the emulator's CA, HTTP/2,
an app-only token from MSAL. Each test works in a folder of its own in one user's OneDrive."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from sharelift.emulator.server import EmulatorServer
from sharelift.graph.client import GraphClient
from sharelift.graph.drive import (
    FRAGMENT_UNIT,
    DriveClient,
    NewFile,
    fragment_ranges,
    get_site,
    get_site_drive,
    get_user_drive,
    list_site_drives,
)
from sharelift.graph.errors import NameAlreadyExists, NotFound
from sharelift.graph.pacer import Pacer
from sharelift.graph.types import DriveItem, FileSystemInfo, UploadSession
from sharelift.quickxorhash import QuickXorHash

pytestmark = pytest.mark.anyio

CREATED = datetime(2019, 4, 5, 6, 7, 8, tzinfo=UTC)
MODIFIED = datetime(2020, 9, 10, 11, 12, 13, tzinfo=UTC)


@pytest.fixture
async def client(
    emulator: EmulatorServer, app_token: Callable[..., str]
) -> AsyncIterator[GraphClient]:
    token = app_token(emulator)
    async with GraphClient(
        token=lambda: token,
        base_url=emulator.info["graph_url"],
        verify=emulator.info["ca_file"],
        connect=emulator.info["connect"],
        pacer=Pacer(max_concurrency=4),
    ) as graph_client:
        yield graph_client


@pytest.fixture
async def drive(emulator: EmulatorServer, client: GraphClient) -> DriveClient:
    upn = emulator.info["users"][0]["upn"]
    onedrive = await get_user_drive(client, upn)
    assert onedrive.drive_type == "business"
    return DriveClient(client, onedrive.id)


@pytest.fixture
async def home(drive: DriveClient) -> DriveItem:
    """A fresh folder for one test."""
    root = await drive.get_root()
    return await drive.create_folder(root.id, f"graph-client-{uuid.uuid4().hex[:8]}")


async def test_folders_paths_and_paging(drive: DriveClient, home: DriveItem) -> None:
    assert home.name is not None
    root = await drive.get_root()
    again = await drive.create_folder(root.id, home.name, existing_ok=True)
    assert again.id == home.id
    x = await drive.create_folder(home.id, "x")
    with pytest.raises(NameAlreadyExists):
        await drive.create_folder(home.id, "x")
    odd = "Q1 + Q2 #1 100% ünï"
    paths = [odd, f"{odd}/a", f"{odd}/a/b", f"{odd}/a/b/c", "p", "q", "r", "x"]
    results = await drive.create_folders(paths, under=home.id)
    assert all(isinstance(r, DriveItem) and r.is_folder for r in results), results
    assert isinstance(results[-1], DriveItem) and results[-1].id == x.id  # adopted
    deep = await drive.get_item_by_path(f"{odd}/a/b/c", under=home.id)
    assert deep.id == results[3].id  # type: ignore[union-attr]
    by_root_path = await drive.get_item_by_path(f"{home.name}/{odd}/a")
    assert by_root_path.id == results[1].id  # type: ignore[union-attr]
    names = [child.name async for child in drive.list_children(home.id, page_size=2)]
    assert sorted(n or "" for n in names) == sorted([odd, "p", "q", "r", "x"])
    with pytest.raises(NotFound) as missing:
        await drive.get_item_by_path("no such folder", under=home.id)
    assert missing.value.code == "itemNotFound"
    assert missing.value.client_request_id


async def test_upload_session_in_fragments_keeps_times_and_hash(
    drive: DriveClient, home: DriveItem
) -> None:
    data = os.urandom(2 * FRAGMENT_UNIT + 4321)
    new = NewFile(home.id, "big file #1.bin", len(data), CREATED, MODIFIED, conflict="fail")
    session = await drive.create_upload_session(new)
    assert session.upload_url is not None and session.expiration is not None
    view = memoryview(data)
    results = []
    for offset, length in fragment_ranges(len(data), FRAGMENT_UNIT):
        results.append(
            await drive.upload_fragment(
                session.upload_url, view[offset : offset + length], offset=offset, total=len(data)
            )
        )
        if offset == 0:
            status = await drive.upload_session_status(session.upload_url)
            assert status.next_offset == FRAGMENT_UNIT
    item = results[-1].item
    assert item is not None and not any(r.done for r in results[:-1])
    assert item.size == len(data)
    assert item.quick_xor_hash == QuickXorHash(data).b64digest()
    assert item.file_system_info == FileSystemInfo(CREATED, MODIFIED)
    with pytest.raises(NotFound):  # a finished session is gone
        await drive.upload_session_status(session.upload_url)


async def test_a_cancelled_session_is_gone(drive: DriveClient, home: DriveItem) -> None:
    session = await drive.create_upload_session(NewFile(home.id, "never.bin", 10))
    assert session.upload_url is not None
    await drive.cancel_upload_session(session.upload_url)
    with pytest.raises(NotFound):
        await drive.upload_session_status(session.upload_url)
    await drive.cancel_upload_session(session.upload_url)  # twice is fine


async def test_upload_sessions_in_a_batch(drive: DriveClient, home: DriveItem) -> None:
    files = [NewFile(home.id, f"file {n}.txt", 5, CREATED, MODIFIED) for n in range(3)]
    sessions = await drive.create_upload_sessions(files)
    for n, session in enumerate(sessions):
        assert isinstance(session, UploadSession) and session.upload_url is not None
        result = await drive.upload_fragment(session.upload_url, b"%05d" % n, offset=0, total=5)
        assert result.item is not None and result.item.name == f"file {n}.txt"
        assert result.item.file_system_info == FileSystemInfo(CREATED, MODIFIED)


async def test_simple_upload_patch_delete_and_delta(drive: DriveClient, home: DriveItem) -> None:
    pages = [page async for page in drive.delta()]
    link = pages[-1].delta_link
    assert link is not None
    item = await drive.simple_upload(home.id, "small.txt", b"hello")
    assert item.size == 5 and item.quick_xor_hash == QuickXorHash(b"hello").b64digest()
    renamed = await drive.update_item(
        item.id, name="renamed.txt", file_system_info=FileSystemInfo(CREATED, MODIFIED)
    )
    assert renamed.name == "renamed.txt"
    assert renamed.file_system_info is not None
    assert renamed.file_system_info.last_modified == MODIFIED
    changes = [i async for page in drive.delta(link) for i in page.items]
    assert item.id in {i.id for i in changes}
    await drive.delete_item(item.id)
    with pytest.raises(NotFound):
        await drive.get_item(item.id)


async def test_sites_and_libraries(emulator: EmulatorServer, client: GraphClient) -> None:
    assert emulator.store is not None
    site = await get_site(client, emulator.store.tenant.hostname, "/sites/Team")
    assert site.display_name == "Team"
    names = sorted(d.name or "" for d in await list_site_drives(client, site.id))
    assert names == ["Archive", "Documents"]
    response = await client.request("GET", f"/sites/{site.id}")
    assert response.http_version == "HTTP/2"
    default = await get_site_drive(client, site.id)
    assert default.drive_type == "documentLibrary" and default.name == "Documents"


@pytest.mark.slow
async def test_ratelimit_headers_slow_the_client_before_a_429(
    emulator: EmulatorServer, client: GraphClient, drive: DriveClient, home: DriveItem
) -> None:
    emulator.set_faults(ru_per_minute=10, ru_window_s=1)
    for _ in range(15):
        await drive.get_item(home.id)
    assert client.pacer.state().throttled == 0


@pytest.mark.slow
async def test_throttled_requests_wait_and_succeed(
    emulator: EmulatorServer, client: GraphClient, drive: DriveClient, home: DriveItem
) -> None:
    # Four requests leave at once, before any RateLimit header can warn: two are refused.
    emulator.set_faults(ru_per_minute=2, ru_window_s=1)
    items = await asyncio.gather(*(drive.get_item(home.id) for _ in range(4)))
    assert {i.id for i in items} == {home.id}
    state = client.pacer.state()
    assert state.throttled >= 1 and state.retries >= 1
    assert state.concurrency < 4  # halved
