"""JSON $batch on the emulator: limits, ids, dependsOn, 424, base64 bodies, principal."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graph_harness import APP, Harness, emulator_server, harness

from sharelift.emulator.server import EmulatorServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    with emulator_server(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture
def h(server: EmulatorServer) -> Iterator[Harness]:
    with harness(server) as hh:
        yield hh


def batch(h: Harness, requests: list[dict[str, Any]]) -> httpx.Response:
    return h.post("/$batch", json={"requests": requests})


def by_id(r: httpx.Response) -> dict[str, dict[str, Any]]:
    assert r.status_code == 200, r.text
    return {x["id"]: x for x in r.json()["responses"]}


def test_limits_and_validation(h: Harness) -> None:
    many = [{"id": str(i), "method": "GET", "url": "/me"} for i in range(21)]
    r = batch(h, many)
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    assert batch(h, many[:20]).status_code == 200
    dup = [{"id": "1", "method": "GET", "url": "/me"}] * 2
    assert batch(h, dup).status_code == 400
    unknown = [{"id": "1", "method": "GET", "url": "/me", "dependsOn": ["9"]}]
    assert batch(h, unknown).status_code == 400
    cycle = [
        {"id": "1", "method": "GET", "url": "/me", "dependsOn": ["2"]},
        {"id": "2", "method": "GET", "url": "/me", "dependsOn": ["1"]},
    ]
    assert batch(h, cycle).status_code == 400
    assert h.post("/$batch", content=b"nope").status_code == 400
    assert batch(h, []).status_code == 400
    assert (
        batch(h, [{"id": "1", "method": "POST", "url": "/$batch", "body": {}}]).status_code == 400
    )


def test_depends_on_base64_and_failed_dependency(h: Harness) -> None:
    d = h.drive_id()
    payload = b"\x00\x01binary body\xff"
    requests: list[dict[str, Any]] = [
        {
            "id": "folder",
            "method": "POST",
            "url": f"/drives/{d}/root/children",
            "headers": {"Content-Type": "application/json"},
            "body": {"name": "Batched", "folder": {}},
        },
        {
            "id": "file",
            "method": "PUT",
            "url": f"/drives/{d}/root:/Batched/data.bin:/content",
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(payload).decode(),
            "dependsOn": ["folder"],
        },
        {"id": "missing", "method": "GET", "url": f"drives/{d}/root:/nope.txt"},
        {"id": "after-missing", "method": "GET", "url": "/me/drive", "dependsOn": ["missing"]},
        {"id": "chain", "method": "GET", "url": "/me/drive", "dependsOn": ["after-missing"]},
        {"id": "me", "method": "GET", "url": "/me?$select=displayName"},
    ]
    responses = by_id(batch(h, requests))
    assert list(responses) == ["folder", "file", "missing", "after-missing", "chain", "me"]
    assert responses["folder"]["status"] == 201
    assert responses["file"]["status"] == 201
    assert responses["file"]["body"]["size"] == len(payload)
    assert responses["missing"]["status"] == 404
    assert responses["missing"]["body"]["error"]["code"] == "itemNotFound"
    assert responses["after-missing"]["status"] == 424
    assert responses["chain"]["status"] == 424
    assert responses["me"]["body"]["displayName"] == h.display_name
    download = h.get(f"/drives/{d}/root:/Batched/data.bin:/content")
    assert h.client.get(download.headers["location"]).content == payload


def test_inner_responses_keep_status_and_headers(h: Harness) -> None:
    d = h.drive_id()
    item = h.upload(d, "x.txt", b"x")
    url = f"/drives/{d}/items/{item['id']}"
    responses = by_id(
        batch(
            h,
            [
                {"id": "content", "method": "GET", "url": f"{url}/content"},
                {"id": "delete", "method": "DELETE", "url": url, "dependsOn": ["content"]},
            ],
        )
    )  # fmt: skip
    assert responses["content"]["status"] == 302
    assert responses["content"]["headers"]["location"].startswith(
        "https://contoso-my.sharepoint.com/personal/"
    )
    assert responses["delete"]["status"] == 204 and "body" not in responses["delete"]


def test_principal_reaches_inner_requests(h: Harness) -> None:
    h.as_principal(APP)
    responses = by_id(
        batch(
            h,
            [
                {"id": "1", "method": "GET", "url": "/me"},
                {"id": "2", "method": "GET", "url": f"/users/{h.upn}/drive"},
            ],
        )
    )
    assert responses["1"]["status"] == 400
    assert responses["2"]["status"] == 200
    d = responses["2"]["body"]["id"]
    created = by_id(
        batch(
            h,
            [
                {"id": "1", "method": "POST", "url": f"/drives/{d}/root/children",
                 "body": {"name": "by-app", "folder": {}}},
            ],
        )
    )  # fmt: skip
    assert created["1"]["status"] == 201, created
    assert "application" in created["1"]["body"]["createdBy"]


def test_inner_requests_are_throttled_one_by_one(h: Harness) -> None:
    h.server.set_faults(ru_per_minute=6)
    requests = [{"id": str(i), "method": "GET", "url": "/me/drive/root"} for i in range(12)]
    r = batch(h, requests)
    assert r.status_code == 200
    statuses = [x["status"] for x in r.json()["responses"]]
    assert 200 in statuses and 429 in statuses
    throttled = next(x for x in r.json()["responses"] if x["status"] == 429)
    assert int(throttled["headers"]["retry-after"]) > 0
    assert throttled["body"]["error"]["code"] == "activityLimitReached"


def test_non_json_inner_bodies_travel_as_base64() -> None:
    """An inner response that is not JSON comes back base64-encoded (stub inner app)."""
    import asyncio

    from starlette.requests import Request
    from starlette.types import Receive, Scope, Send

    from sharelift.emulator.graph import batch as batch_mod

    seen: dict[str, Any] = {}

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        seen["body"] = message["body"]
        seen["path"] = scope["path"]
        seen["principal"] = scope["extensions"]["sharelift.batch"]["principal"]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"\x00plain\xff"})

    async def run() -> dict[str, Any]:
        scope = {"type": "http", "method": "POST", "path": "/v1.0/$batch", "headers": [],
                 "query_string": b"", "scheme": "https", "server": ("graph", 443),
                 "app": inner, "state": {"principal": "someone"}}  # fmt: skip
        request = Request(scope)
        req = {"id": "1", "method": "PUT", "url": "/drives/x/items/y/content",
               "headers": {"Content-Type": "application/octet-stream"},
               "body": base64.b64encode(b"raw bytes").decode()}  # fmt: skip
        return await batch_mod._run_one(request, req)

    result = asyncio.run(run())
    assert seen == {"body": b"raw bytes", "path": "/v1.0/drives/x/items/y/content",
                    "principal": "someone"}  # fmt: skip
    assert result["status"] == 200
    assert base64.b64decode(result["body"]) == b"\x00plain\xff"


def test_upload_sessions_opened_in_a_batch(h: Harness) -> None:
    d = h.drive_id()
    requests: list[dict[str, Any]] = [
        {
            "id": str(i),
            "method": "POST",
            "url": f"/drives/{d}/root:/batched/f{i}.bin:/createUploadSession",
            "headers": {"Content-Type": "application/json"},
            "body": {"item": {"@microsoft.graph.conflictBehavior": "fail", "fileSize": 3}},
        }
        for i in range(5)
    ]
    responses = by_id(batch(h, requests))
    for i in range(5):
        url = responses[str(i)]["body"]["uploadUrl"]
        assert url.startswith("https://contoso-my.sharepoint.com/personal/")
        r = h.client.put(url, content=b"abc", headers={"Content-Range": "bytes 0-2/3"})
        assert r.status_code == 201 and r.json()["name"] == f"f{i}.bin"
    listed = h.get(f"/drives/{d}/root:/batched:/children").json()["value"]
    assert len(listed) == 5
