"""DriveClient over httpx.MockTransport: addressing, paging, folders, uploads, delta."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sharelift.graph.client import GraphClient, make_ssl_context
from sharelift.graph.drive import (
    DEFAULT_FRAGMENT,
    FRAGMENT_UNIT,
    MAX_FRAGMENT,
    DriveClient,
    NewFile,
    check_fragment_size,
    content_range,
    encode_path,
    fragment_ranges,
    get_site,
    get_site_drive,
    get_user_drive,
    list_site_drives,
)
from sharelift.graph.errors import (
    BadRequest,
    FailedDependency,
    Gone,
    InvalidRange,
    NameAlreadyExists,
    NotFound,
    TransportError,
)
from sharelift.graph.pacer import Pacer
from sharelift.graph.types import DriveItem, FileSystemInfo, UploadSession

pytestmark = pytest.mark.anyio

BASE = "https://graph.example.test/v1.0"
UPLOAD = "https://tenant.sharepoint.test/_api/v2.0/upload?tempauth=SECRET"
CONTEXT = make_ssl_context()
Answer = httpx.Response | Exception


class FakeGraph:
    """Answers by (method, raw path without query); records what it was sent."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = defaultdict(list)
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.routes[(method, path)].extend(answers)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        path = request.url.raw_path.decode("ascii").split("?")[0]
        queue = self.routes.get((request.method, path))
        if not queue:
            return httpx.Response(
                404, json={"error": {"code": "itemNotFound", "message": f"no route {path}"}}
            )
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self, method: str) -> list[Any]:
        return [json.loads(r.content) for r in self.requests if r.method == method]


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def make_drive(graph: FakeGraph) -> DriveClient:
    client = GraphClient(
        token=lambda: "tok",
        base_url=BASE,
        pacer=Pacer(sleep=_no_sleep),
        verify=CONTEXT,
        transport=httpx.MockTransport(graph),
    )
    return DriveClient(client, "b!drive")


def item(item_id: str, name: str, *, folder: bool = True) -> httpx.Response:
    body: dict[str, Any] = {"id": item_id, "name": name}
    body["folder" if folder else "file"] = {"childCount": 0} if folder else {}
    return httpx.Response(201 if folder else 200, json=body)


def conflict() -> dict[str, Any]:
    return {"error": {"code": "nameAlreadyExists", "message": "exists"}}


D = "/v1.0/drives/b!drive"


# -- addressing -----------------------------------------------------------------------------


def test_each_segment_is_encoded_on_its_own() -> None:
    assert encode_path("/a b/c#d/e%f/g+h/ünï/x'y(1)") == (
        "a%20b/c%23d/e%25f/g%2Bh/%C3%BCn%C3%AF/x%27y%281%29"
    )
    assert encode_path("") == encode_path("/") == ""
    for bad in ("a//b", "a/./b", "../a"):
        with pytest.raises(ValueError, match="segment"):
            encode_path(bad)


async def test_paths_reach_the_wire_exactly_as_encoded() -> None:
    graph = FakeGraph()
    graph.on("GET", f"{D}/root:/Q1%20%2B%20Q2/100%25%20%23done.txt", item("1", "x", folder=False))
    graph.on("GET", f"{D}/items/P1:/sub%20dir", item("2", "sub dir"))
    graph.on("GET", f"{D}/root", httpx.Response(200, json={"id": "R", "root": {}, "folder": {}}))
    drive = make_drive(graph)
    async with drive.client:
        assert (await drive.get_item_by_path("Q1 + Q2/100% #done.txt")).id == "1"
        assert (await drive.get_item_by_path("sub dir", under="P1")).id == "2"
        assert (await drive.get_item_by_path("")).is_root


async def test_children_pages_of_up_to_1000_follow_next_link() -> None:
    graph = FakeGraph()
    next_link = BASE + "/drives/b!drive/items/F/children?$top=1000&$skiptoken=p2"
    graph.on(
        "GET",
        f"{D}/items/F/children",
        httpx.Response(
            200,
            json={
                "value": [{"id": "a", "folder": {}}, {"id": "b", "file": {}}],
                "@odata.nextLink": next_link,
            },
        ),
        httpx.Response(200, json={"value": [{"id": "c", "file": {}}]}),
    )
    drive = make_drive(graph)
    async with drive.client:
        children = [child.id async for child in drive.list_children("F", page_size=5000)]
    assert children == ["a", "b", "c"]
    assert graph.requests[0].url.params["$top"] == "1000"
    assert graph.requests[1].url.params["$skiptoken"] == "p2"


# -- folders --------------------------------------------------------------------------------


async def test_create_folder_and_treat_an_existing_one_as_created() -> None:
    graph = FakeGraph()
    graph.on("POST", f"{D}/items/P/children", item("N", "new"))
    graph.on("POST", f"{D}/items/P/children", httpx.Response(409, json=conflict()))
    graph.on("GET", f"{D}/items/P:/old", httpx.Response(200, json={"id": "O", "folder": {}}))
    graph.on("POST", f"{D}/items/P/children", httpx.Response(409, json=conflict()))
    graph.on("GET", f"{D}/items/P:/file.txt", httpx.Response(200, json={"id": "F", "file": {}}))
    graph.on("POST", f"{D}/items/P/children", httpx.Response(409, json=conflict()))
    drive = make_drive(graph)
    async with drive.client:
        assert (await drive.create_folder("P", "new")).id == "N"
        assert (await drive.create_folder("P", "old", existing_ok=True)).id == "O"
        with pytest.raises(NameAlreadyExists):  # a file of that name is no folder
            await drive.create_folder("P", "file.txt", existing_ok=True)
        with pytest.raises(NameAlreadyExists):
            await drive.create_folder("P", "again")
    assert graph.bodies("POST")[0] == {
        "name": "new",
        "folder": {},
        "@microsoft.graph.conflictBehavior": "fail",
    }


async def test_folder_creation_with_rename_is_not_repeated_after_a_reset() -> None:
    graph = FakeGraph()
    graph.on("POST", f"{D}/items/P/children", httpx.RemoteProtocolError("reset"))
    drive = make_drive(graph)
    async with drive.client:
        with pytest.raises(TransportError):
            await drive.create_folder("P", "x", conflict="rename")
    assert len(graph.requests) == 1


def batch_of(request: httpx.Request) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = json.loads(request.content)["requests"]
    return body


async def test_create_folders_chains_then_fans_out_and_adopts_existing_ones() -> None:
    graph = FakeGraph()
    u = "/drives/b!drive/items/U"
    # Round 1: the lone ready folder "a" leads a chain a -> a/b -> a/b/c.
    graph.on(
        "POST",
        "/v1.0/$batch",
        httpx.Response(
            200,
            json={
                "responses": [
                    {"id": "1", "status": 409, "body": conflict()},
                    {"id": "2", "status": 424, "body": {"error": {"code": "failedDependency"}}},
                    {"id": "3", "status": 424, "body": {"error": {"code": "failedDependency"}}},
                ]
            },
        ),
        # The existing "a" is fetched.
        httpx.Response(
            200, json={"responses": [{"id": "1", "status": 200, "body": {"id": "A", "folder": {}}}]}
        ),
        # Round 2: "a/b" and "a/bad" are ready together and go out in parallel.
        httpx.Response(
            200,
            json={
                "responses": [
                    {"id": "2", "status": 400, "body": {"error": {"code": "invalidRequest"}}},
                    {"id": "1", "status": 201, "body": {"id": "B", "folder": {}}},
                ]
            },
        ),
        # Round 3: the children of "a/b"; "a/bad/child" is never sent.
        httpx.Response(
            200,
            json={
                "responses": [
                    {"id": "1", "status": 201, "body": {"id": "C", "folder": {}}},
                    {"id": "2", "status": 201, "body": {"id": "X", "folder": {}}},
                ]
            },
        ),
    )
    drive = make_drive(graph)
    async with drive.client:
        results = await drive.create_folders(
            ["a", "a/b", "a/b/c", "a/b/x", "a/bad", "a/bad/child"], under="U"
        )
    assert [r.id if isinstance(r, DriveItem) else type(r) for r in results] == [
        "A",
        "B",
        "C",
        "X",
        BadRequest,
        FailedDependency,
    ]
    rounds = [batch_of(r) for r in graph.requests]
    assert [(r["url"], r.get("dependsOn")) for r in rounds[0]] == [
        (f"{u}/children", None),
        (f"{u}:/a:/children", ["1"]),
        (f"{u}:/a/b:/children", ["2"]),
    ]
    assert rounds[0][1]["body"] == {
        "name": "b",
        "folder": {},
        "@microsoft.graph.conflictBehavior": "fail",
    }
    assert rounds[1] == [{"id": "1", "method": "GET", "url": f"{u}:/a"}]
    assert [(r["url"], r["body"]["name"], r.get("dependsOn")) for r in rounds[2]] == [
        (f"{u}:/a:/children", "b", None),
        (f"{u}:/a:/children", "bad", None),
    ]
    assert [(r["url"], r["body"]["name"], r.get("dependsOn")) for r in rounds[3]] == [
        (f"{u}:/a/b:/children", "c", None),
        (f"{u}:/a/b:/children", "x", None),
    ]
    assert len(rounds) == 4


async def test_create_folders_sends_at_most_20_per_batch() -> None:
    graph = FakeGraph()
    for first in (1, 21):
        size = 20 if first == 1 else 5
        graph.on(
            "POST",
            "/v1.0/$batch",
            httpx.Response(
                200,
                json={
                    "responses": [
                        {
                            "id": str(n),
                            "status": 201,
                            "body": {"id": f"I{first + n - 1}", "folder": {}},
                        }
                        for n in range(1, size + 1)
                    ]
                },
            ),
        )
    drive = make_drive(graph)
    async with drive.client:
        results = await drive.create_folders([f"f{n}" for n in range(1, 26)], under="U")
    assert [r.id for r in results if isinstance(r, DriveItem)] == [f"I{n}" for n in range(1, 26)]
    assert [len(batch_of(r)) for r in graph.requests] == [20, 5]


async def test_create_folders_refuses_children_listed_before_parents() -> None:
    drive = make_drive(FakeGraph())
    async with drive.client:
        with pytest.raises(ValueError, match="before its parent"):
            await drive.create_folders(["a/b", "a"], under="U")
        with pytest.raises(ValueError, match="twice"):
            await drive.create_folders(["a", "/a/"], under="U")


# -- uploads --------------------------------------------------------------------------------


async def test_simple_upload_puts_the_bytes_with_the_conflict_behaviour() -> None:
    graph = FakeGraph()
    graph.on("PUT", f"{D}/items/P:/a%20b.txt:/content", item("F", "a b.txt", folder=False))
    drive = make_drive(graph)
    async with drive.client:
        uploaded = await drive.simple_upload("P", "a b.txt", b"hello")
    assert uploaded.id == "F"
    sent = graph.requests[0]
    assert sent.content == b"hello"
    assert sent.url.params["@microsoft.graph.conflictBehavior"] == "replace"


NEW = NewFile(
    parent_id="P",
    name="big #1.bin",
    size=1_000_000,
    created=datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
    modified=datetime(2021, 6, 7, 8, 9, 10, 500000, tzinfo=UTC),
    conflict="fail",
)
SESSION_BODY = {
    "item": {
        "@microsoft.graph.conflictBehavior": "fail",
        "name": "big #1.bin",
        "fileSize": 1_000_000,
        "fileSystemInfo": {
            "createdDateTime": "2020-01-02T03:04:05Z",
            "lastModifiedDateTime": "2021-06-07T08:09:10.500Z",
        },
    },
    "deferCommit": False,
}


async def test_create_upload_session_carries_times_and_size() -> None:
    graph = FakeGraph()
    graph.on(
        "POST",
        f"{D}/items/P:/big%20%231.bin:/createUploadSession",
        httpx.RemoteProtocolError("reset"),  # safe to repeat
        httpx.Response(
            200,
            json={"uploadUrl": UPLOAD, "expirationDateTime": "2026-11-23T14:00:00Z"},
        ),
    )
    drive = make_drive(graph)
    async with drive.client:
        session = await drive.create_upload_session(NEW)
    assert session.upload_url == UPLOAD
    assert graph.bodies("POST") == [SESSION_BODY, SESSION_BODY]


async def test_upload_sessions_in_a_batch() -> None:
    graph = FakeGraph()
    graph.on(
        "POST",
        "/v1.0/$batch",
        httpx.Response(
            200,
            json={
                "responses": [
                    {"id": "2", "status": 409, "body": conflict()},
                    {"id": "1", "status": 200, "body": {"uploadUrl": UPLOAD}},
                ]
            },
        ),
    )
    drive = make_drive(graph)
    async with drive.client:
        sessions = await drive.create_upload_sessions([NEW, NEW])
    assert isinstance(sessions[0], UploadSession) and sessions[0].upload_url == UPLOAD
    assert isinstance(sessions[1], NameAlreadyExists)
    sent = batch_of(graph.requests[0])
    assert sent[0]["url"] == "/drives/b!drive/items/P:/big%20%231.bin:/createUploadSession"
    assert sent[0]["body"] == SESSION_BODY


@pytest.mark.parametrize(
    ("total", "size", "expected"),
    [
        (1, FRAGMENT_UNIT, [(0, 1)]),
        (FRAGMENT_UNIT, FRAGMENT_UNIT, [(0, FRAGMENT_UNIT)]),
        (FRAGMENT_UNIT + 1, FRAGMENT_UNIT, [(0, FRAGMENT_UNIT), (FRAGMENT_UNIT, 1)]),
        (
            2 * FRAGMENT_UNIT - 1,
            FRAGMENT_UNIT,
            [(0, FRAGMENT_UNIT), (FRAGMENT_UNIT, FRAGMENT_UNIT - 1)],
        ),
        (
            3 * FRAGMENT_UNIT,
            2 * FRAGMENT_UNIT,
            [(0, 2 * FRAGMENT_UNIT), (2 * FRAGMENT_UNIT, FRAGMENT_UNIT)],
        ),
    ],
)
def test_fragment_ranges(total: int, size: int, expected: list[tuple[int, int]]) -> None:
    assert list(fragment_ranges(total, size)) == expected


def test_fragment_rules() -> None:
    assert DEFAULT_FRAGMENT == 10 * 1024 * 1024
    assert MAX_FRAGMENT == 191 * FRAGMENT_UNIT < 60 * 1024 * 1024
    check_fragment_size(MAX_FRAGMENT)
    for bad in (0, FRAGMENT_UNIT - 1, FRAGMENT_UNIT + 1, 192 * FRAGMENT_UNIT):
        with pytest.raises(ValueError, match="multiple"):
            check_fragment_size(bad)
    resumed = list(fragment_ranges(5 * FRAGMENT_UNIT + 7, 2 * FRAGMENT_UNIT, start=FRAGMENT_UNIT))
    assert resumed == [
        (FRAGMENT_UNIT, 2 * FRAGMENT_UNIT),
        (3 * FRAGMENT_UNIT, 2 * FRAGMENT_UNIT),
        (5 * FRAGMENT_UNIT, 7),
    ]
    with pytest.raises(ValueError, match="resume"):
        list(fragment_ranges(10 * FRAGMENT_UNIT, FRAGMENT_UNIT, start=100))
    with pytest.raises(ValueError, match="at least one byte"):
        list(fragment_ranges(0))
    assert content_range(0, FRAGMENT_UNIT, 1_000_000) == "bytes 0-327679/1000000"
    assert content_range(983040, 16960, 1_000_000) == "bytes 983040-999999/1000000"


async def test_fragments_go_unauthenticated_with_their_content_range() -> None:
    graph = FakeGraph()
    path = "/_api/v2.0/upload"
    total = 2 * FRAGMENT_UNIT + 10
    graph.on(
        "PUT",
        path,
        httpx.Response(202, json={"nextExpectedRanges": [f"{FRAGMENT_UNIT}-"]}),
        httpx.Response(202, json={"nextExpectedRanges": [f"{2 * FRAGMENT_UNIT}-"]}),
        httpx.Response(
            201,
            json={"id": "F", "file": {"hashes": {"quickXorHash": "h"}}, "size": total},
        ),
    )
    data = bytes(range(256)) * (total // 256 + 1)
    buffer = memoryview(data)[:total]
    drive = make_drive(graph)
    results = []
    async with drive.client:
        for offset, length in fragment_ranges(total, FRAGMENT_UNIT):
            results.append(
                await drive.upload_fragment(
                    UPLOAD, buffer[offset : offset + length], offset=offset, total=total
                )
            )
    assert [r.next_expected_ranges for r in results[:2]] == [
        (f"{FRAGMENT_UNIT}-",),
        (f"{2 * FRAGMENT_UNIT}-",),
    ]
    assert results[2].done and results[2].item is not None
    assert results[2].item.quick_xor_hash == "h"
    assert [r.headers["Content-Range"] for r in graph.requests] == [
        f"bytes 0-327679/{total}",
        f"bytes 327680-655359/{total}",
        f"bytes 655360-655369/{total}",
    ]
    assert all("Authorization" not in r.headers for r in graph.requests)
    assert b"".join(r.content for r in graph.requests) == data[:total]


async def test_a_fragment_that_already_arrived_is_accepted_after_416() -> None:
    graph = FakeGraph()
    path = "/_api/v2.0/upload"
    overlap = {"error": {"code": "invalidRange", "innerError": {"code": "fragmentOverlap"}}}
    graph.on("PUT", path, httpx.Response(416, json=overlap), httpx.Response(416, json=overlap))
    graph.on(
        "GET",
        path,
        httpx.Response(200, json={"nextExpectedRanges": [f"{FRAGMENT_UNIT}-"]}),
        httpx.Response(200, json={"nextExpectedRanges": ["0-"]}),
    )
    drive = make_drive(graph)
    async with drive.client:
        accepted = await drive.upload_fragment(
            UPLOAD, b"x" * FRAGMENT_UNIT, offset=0, total=10 * FRAGMENT_UNIT
        )
        assert accepted.next_expected_ranges == (f"{FRAGMENT_UNIT}-",)
        with pytest.raises(InvalidRange):
            await drive.upload_fragment(
                UPLOAD, b"x" * FRAGMENT_UNIT, offset=0, total=10 * FRAGMENT_UNIT
            )


async def test_fragments_breaking_the_rules_are_refused_before_sending() -> None:
    drive = make_drive(FakeGraph())
    async with drive.client:
        with pytest.raises(ValueError, match="320 KiB"):
            await drive.upload_fragment(UPLOAD, b"x" * 1000, offset=0, total=5000)
        with pytest.raises(ValueError, match="does not fit"):
            await drive.upload_fragment(UPLOAD, b"x" * 10, offset=0, total=5)


async def test_session_status_and_cancel() -> None:
    graph = FakeGraph()
    path = "/_api/v2.0/upload"
    graph.on(
        "GET",
        path,
        httpx.Response(
            200,
            json={
                "expirationDateTime": "2026-11-23T14:00:00Z",
                "nextExpectedRanges": ["26214400-"],
            },
        ),
    )
    graph.on("DELETE", path, httpx.Response(204))  # then 404: gone already
    drive = make_drive(graph)
    async with drive.client:
        status = await drive.upload_session_status(UPLOAD)
        await drive.cancel_upload_session(UPLOAD)
        await drive.cancel_upload_session(UPLOAD)
    assert status.next_offset == 26214400
    assert [r.method for r in graph.requests] == ["GET", "DELETE", "DELETE"]
    assert all("Authorization" not in r.headers for r in graph.requests)


# -- changing, deleting, delta ----------------------------------------------------------------


async def test_update_item_patches_only_what_is_given() -> None:
    graph = FakeGraph()
    graph.on("PATCH", f"{D}/items/I", item("I", "new name"), item("I", "new name"))
    drive = make_drive(graph)
    when = datetime(2020, 1, 1, tzinfo=UTC)
    async with drive.client:
        await drive.update_item("I", name="new name", parent_id="P2", if_match='"etag"')
        await drive.update_item("I", file_system_info=FileSystemInfo(when, when))
        with pytest.raises(ValueError, match="something"):
            await drive.update_item("I")
    assert graph.bodies("PATCH") == [
        {"name": "new name", "parentReference": {"id": "P2"}},
        {
            "fileSystemInfo": {
                "createdDateTime": "2020-01-01T00:00:00Z",
                "lastModifiedDateTime": "2020-01-01T00:00:00Z",
            }
        },
    ]
    assert graph.requests[0].headers["If-Match"] == '"etag"'
    assert "If-Match" not in graph.requests[1].headers


async def test_delete_item() -> None:
    graph = FakeGraph()
    graph.on("DELETE", f"{D}/items/I", httpx.Response(204))
    drive = make_drive(graph)
    async with drive.client:
        await drive.delete_item("I")
        with pytest.raises(NotFound):
            await drive.delete_item("I")
        await drive.delete_item("I", missing_ok=True)


async def test_delta_follows_pages_to_the_delta_link_and_resumes_from_it() -> None:
    graph = FakeGraph()
    delta_link = BASE + "/drives/b!drive/root/delta?token=abc"
    graph.on(
        "GET",
        f"{D}/root/delta",
        httpx.Response(
            200,
            json={
                "value": [{"id": "1"}],
                "@odata.nextLink": BASE + "/drives/b!drive/root/delta?token=p2",
            },
        ),
        httpx.Response(
            200, json={"value": [{"id": "2", "deleted": {}}], "@odata.deltaLink": delta_link}
        ),
        httpx.Response(200, json={"value": [], "@odata.deltaLink": delta_link}),
        httpx.Response(410, json={"error": {"code": "resyncRequired", "message": "too old"}}),
    )
    drive = make_drive(graph)
    async with drive.client:
        pages = [page async for page in drive.delta()]
        again = [page async for page in drive.delta(delta_link)]
        with pytest.raises(Gone):
            _ = [page async for page in drive.delta(delta_link)]
    assert [[i.id for i in p.items] for p in pages] == [["1"], ["2"]]
    assert pages[1].items[0].deleted
    assert pages[-1].delta_link == delta_link
    assert again[0].delta_link == delta_link
    assert graph.requests[1].url.params["token"] == "p2"
    assert graph.requests[2].url.params["token"] == "abc"


# -- finding drives -------------------------------------------------------------------------


async def test_drive_and_site_lookups() -> None:
    graph = FakeGraph()
    graph.on(
        "GET",
        "/v1.0/users/ada@contoso.com/drive",
        httpx.Response(200, json={"id": "b!ada", "driveType": "business", "name": "OneDrive"}),
    )
    graph.on(
        "GET",
        "/v1.0/sites/contoso.sharepoint.com:/sites/Team%20Site",
        httpx.Response(200, json={"id": "contoso.sharepoint.com,1,2", "displayName": "Team Site"}),
    )
    graph.on(
        "GET",
        "/v1.0/sites/contoso.sharepoint.com",
        httpx.Response(200, json={"id": "contoso.sharepoint.com,3,4"}),
    )
    graph.on(
        "GET",
        "/v1.0/sites/contoso.sharepoint.com,1,2/drive",
        httpx.Response(200, json={"id": "b!docs", "name": "Documents"}),
    )
    graph.on(
        "GET",
        "/v1.0/sites/contoso.sharepoint.com,1,2/drives",
        httpx.Response(
            200,
            json={
                "value": [{"id": "b!docs"}],
                "@odata.nextLink": BASE + "/sites/contoso.sharepoint.com,1,2/drives?$skiptoken=x",
            },
        ),
        httpx.Response(200, json={"value": [{"id": "b!more"}]}),
    )
    graph.on("GET", "/v1.0/drives/b!drive", httpx.Response(200, json={"id": "b!drive"}))
    drive = make_drive(graph)
    client = drive.client
    async with client:
        assert (await get_user_drive(client, "ada@contoso.com")).id == "b!ada"
        site = await get_site(client, "contoso.sharepoint.com", "/sites/Team Site")
        assert site.display_name == "Team Site"
        assert (await get_site(client, "contoso.sharepoint.com")).id.endswith(",3,4")
        assert (await get_site_drive(client, site.id)).name == "Documents"
        assert [d.id for d in await list_site_drives(client, site.id)] == ["b!docs", "b!more"]
        assert (await drive.get_drive()).id == "b!drive"
        with pytest.raises(NotFound):
            await get_user_drive(client, "nobody@contoso.com")


# -- properties -----------------------------------------------------------------------------


@given(
    total=st.one_of(
        st.integers(1, 40 * FRAGMENT_UNIT),
        st.builds(
            lambda k, d: max(1, k * FRAGMENT_UNIT + d),
            st.integers(0, 40),
            st.integers(-2, 2),
        ),
    ),
    units=st.integers(1, 191),
)
def test_fragments_tile_the_file_and_keep_graphs_rules(total: int, units: int) -> None:
    size = units * FRAGMENT_UNIT
    ranges = list(fragment_ranges(total, size))
    assert ranges[0][0] == 0
    assert sum(length for _, length in ranges) == total
    for (offset, length), (following, _) in itertools.pairwise(ranges):
        assert offset + length == following
        assert length == size and length % FRAGMENT_UNIT == 0
    assert all(0 < length < 60 * 1024 * 1024 for _, length in ranges)
    first, last = content_range(*ranges[0], total), content_range(*ranges[-1], total)
    assert first.startswith("bytes 0-") and last.endswith(f"-{total - 1}/{total}")


@given(
    st.lists(
        st.text(min_size=1).filter(lambda s: "/" not in s and s not in (".", "..")),
        min_size=1,
        max_size=4,
    )
)
def test_encoded_paths_decode_to_the_names(segments: list[str]) -> None:
    encoded = encode_path("/".join(segments))
    assert [unquote(part) for part in encoded.split("/")] == segments
    assert all((c.isalnum() and c.isascii()) or c in "-._~%" for c in encoded.replace("/", ""))
