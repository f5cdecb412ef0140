"""Upload sessions on the emulator: fragments, ranges, expiry, cancel, conflicts, quota."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graph_harness import Harness, emulator_server, harness

from sharelift.emulator.server import EmulatorServer
from sharelift.quickxorhash import QuickXorHash

UNIT = 320 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    with emulator_server(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture
def h(server: EmulatorServer) -> Iterator[Harness]:
    with harness(server) as hh:
        yield hh


def open_session(h: Harness, path: str, **item: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"item": item}
    if "deferCommit" in item:
        body["deferCommit"] = item.pop("deferCommit")
    r = h.post(f"/drives/{h.drive_id()}/root:/{path}:/createUploadSession", json=body)
    assert r.status_code == 200, r.text
    session: dict[str, Any] = r.json()
    return session


def put_range(h: Harness, url: str, data: bytes, start: int, total: int) -> httpx.Response:
    end = start + len(data) - 1
    return h.client.put(
        url, content=data, headers={"Content-Range": f"bytes {start}-{end}/{total}"}
    )


def error_code(r: httpx.Response) -> str:
    code: str = r.json()["error"]["code"]
    return code


def test_three_fragments_make_a_file(h: Harness) -> None:
    data = os.urandom(2 * UNIT + 1234)
    times = {
        "createdDateTime": "2019-01-02T03:04:05Z",
        "lastModifiedDateTime": "2020-06-07T08:09:10Z",
    }
    session = open_session(
        h,
        "Uploads/big.bin",
        fileSystemInfo=times,
        fileSize=len(data),
        **{"@microsoft.graph.conflictBehavior": "fail"},
    )
    url = session["uploadUrl"]
    assert url.startswith("https://contoso-my.sharepoint.com/personal/")
    assert session["nextExpectedRanges"] == ["0-"] and session["expirationDateTime"].endswith("Z")
    r = put_range(h, url, data[:UNIT], 0, len(data))
    assert r.status_code == 202 and r.json()["nextExpectedRanges"] == [f"{UNIT}-"]
    status = h.client.get(url)
    assert status.status_code == 200 and status.json()["nextExpectedRanges"] == [f"{UNIT}-"]
    assert put_range(h, url, data[UNIT : 2 * UNIT], UNIT, len(data)).status_code == 202
    done = put_range(h, url, data[2 * UNIT :], 2 * UNIT, len(data))
    assert done.status_code == 201, done.text
    item = done.json()
    assert item["size"] == len(data) and item["name"] == "big.bin"
    assert (
        item["file"]["hashes"]["quickXorHash"]
        == base64.b64encode(QuickXorHash(data).digest()).decode()
    )
    assert item["fileSystemInfo"] == times
    assert item["parentReference"]["path"].endswith("/root:/Uploads")
    assert h.client.get(item["@microsoft.graph.downloadUrl"]).content == data
    assert error_code(h.client.get(url)) == "itemNotFound"  # finished sessions are gone


def test_fragment_errors(h: Harness) -> None:
    total = 3 * UNIT
    url = open_session(h, "f.bin")["uploadUrl"]
    chunk = b"a" * UNIT
    # not a multiple of 320 KiB (and not the last)
    r = put_range(h, url, b"a" * 1000, 0, total)
    assert r.status_code == 400 and error_code(r) == "invalidRequest"
    # Content-Range length and body disagree
    r = h.client.put(url, content=b"abc", headers={"Content-Range": f"bytes 0-9/{total}"})
    assert r.status_code == 400
    # no Content-Range
    assert h.client.put(url, content=chunk).status_code == 400
    # more than 60 MiB announced
    r = h.client.put(
        url, content=b"", headers={"Content-Range": f"bytes 0-{61 * 2**20}/{62 * 2**20}"}
    )
    assert r.status_code == 400
    assert put_range(h, url, chunk, 0, total).status_code == 202
    # overlap
    r = put_range(h, url, chunk, 0, total)
    assert r.status_code == 416 and error_code(r) == "invalidRange"
    assert r.json()["error"]["innerError"]["code"] == "fragmentOverlap"
    # gap
    assert put_range(h, url, chunk, 2 * UNIT, total).status_code == 416
    # a different total than before
    assert put_range(h, url, chunk, UNIT, total + 1).status_code == 400
    assert put_range(h, url, chunk, UNIT, total).status_code == 202
    assert h.client.get(url).json()["nextExpectedRanges"] == [f"{2 * UNIT}-"]


def test_cancel(h: Harness) -> None:
    url = open_session(h, "gone.bin")["uploadUrl"]
    assert put_range(h, url, b"x" * UNIT, 0, 2 * UNIT).status_code == 202
    assert h.client.delete(url).status_code == 204
    assert h.client.get(url).status_code == 404
    assert put_range(h, url, b"x" * UNIT, UNIT, 2 * UNIT).status_code == 404
    assert h.get(f"/drives/{h.drive_id()}/root:/gone.bin").status_code == 404


@pytest.mark.slow
def test_expiry_and_extension(server: EmulatorServer) -> None:
    with harness(server, upload_session_lifetime_s=0.6) as h:
        url = open_session(h, "slow.bin")["uploadUrl"]
        time.sleep(0.4)
        assert put_range(h, url, b"x" * UNIT, 0, 3 * UNIT).status_code == 202
        time.sleep(0.4)  # 0.8 s after creation, 0.4 s after the fragment: still alive
        assert put_range(h, url, b"x" * UNIT, UNIT, 3 * UNIT).status_code == 202
        time.sleep(0.7)
        r = put_range(h, url, b"x" * UNIT, 2 * UNIT, 3 * UNIT)
        assert r.status_code == 404 and error_code(r) == "itemNotFound"
        assert h.client.get(url).status_code == 404


def test_expire_all_sessions_on_demand(h: Harness) -> None:
    urls = [open_session(h, f"s{i}.bin")["uploadUrl"] for i in range(3)]
    assert h.store.sessions.expire_all() >= 3
    for url in urls:
        r = put_range(h, url, b"x" * 10, 0, 10)
        assert r.status_code == 404 and error_code(r) == "itemNotFound"


def test_name_taken_at_commit(h: Harness) -> None:
    url = open_session(h, "race.txt", **{"@microsoft.graph.conflictBehavior": "fail"})["uploadUrl"]
    assert put_range(h, url, b"x" * UNIT, 0, UNIT + 5).status_code == 202
    h.upload(h.drive_id(), "race.txt", b"first")
    r = put_range(h, url, b"y" * 5, UNIT, UNIT + 5)
    assert r.status_code == 409 and error_code(r) == "nameAlreadyExists"
    r = h.post(
        f"/drives/{h.drive_id()}/root:/race.txt:/createUploadSession",
        json={"item": {"@microsoft.graph.conflictBehavior": "fail"}},
    )
    assert r.status_code == 409 and error_code(r) == "nameAlreadyExists"


def test_replace_rename_and_versions(h: Harness) -> None:
    d = h.drive_id()
    first = h.upload(d, "doc.txt", b"one")
    url = open_session(h, "doc.txt", **{"@microsoft.graph.conflictBehavior": "replace"})[
        "uploadUrl"
    ]
    r = put_range(h, url, b"second", 0, 6)
    assert r.status_code == 200 and r.json()["id"] == first["id"] and r.json()["size"] == 6
    url = open_session(h, "doc.txt", **{"@microsoft.graph.conflictBehavior": "rename"})["uploadUrl"]
    r = put_range(h, url, b"third", 0, 5)
    assert r.status_code == 201 and r.json()["name"] == "doc 1.txt"
    # by item id: a new version of that item
    r = h.post(f"/drives/{d}/items/{first['id']}/createUploadSession", json={})
    r = put_range(h, r.json()["uploadUrl"], b"fourth!", 0, 7)
    assert r.status_code == 200 and r.json()["id"] == first["id"]
    versions = h.get(f"/drives/{d}/items/{first['id']}/versions").json()["value"]
    assert [v["size"] for v in versions] == [7, 6, 3]


def test_defer_commit(h: Harness) -> None:
    session = open_session(h, "later.bin", deferCommit=True)
    url = session["uploadUrl"]
    r = put_range(h, url, b"z" * 10, 0, 10)
    assert r.status_code == 202 and r.json()["nextExpectedRanges"] == []
    assert h.get(f"/drives/{h.drive_id()}/root:/later.bin").status_code == 404
    r = h.client.post(url, content=b"")
    assert r.status_code == 201 and r.json()["size"] == 10


def test_quota_and_bad_requests(h: Harness) -> None:
    d = h.drive_id()
    h.store.versions.set_quota(d, 1000)
    r = h.post(
        f"/drives/{d}/root:/huge.bin:/createUploadSession", json={"item": {"fileSize": 2000}}
    )
    assert r.status_code == 507 and error_code(r) == "insufficientStorage"
    url = open_session(h, "undeclared.bin")["uploadUrl"]
    r = put_range(h, url, b"q" * 1500, 0, 1500)
    assert r.status_code == 507
    r = h.post(f"/drives/{d}/root:/a:b.txt:/createUploadSession", json={})
    assert r.status_code in (400, 404)
    r = h.post(f"/drives/{d}/root:/bad*.txt:/createUploadSession", json={})
    assert r.status_code == 400 and error_code(r) == "invalidRequest"
    r = h.post(f"/drives/{d}/root:/x.txt:/createUploadSession", content=b"{not json")
    assert r.status_code == 400


def test_session_survives_restart(tmp_path: Path) -> None:
    data = os.urandom(UNIT + 100)
    with emulator_server(tmp_path) as first, harness(first) as h1:
        d, old_base = h1.drive_id(), first.base_url
        url = open_session(h1, "resume.bin")["uploadUrl"]
        assert put_range(h1, url, data[:UNIT], 0, len(data)).status_code == 202
    with emulator_server(tmp_path) as second, harness(second) as h2:
        url = url.replace(old_base, second.base_url)
        assert h2.client.get(url).json()["nextExpectedRanges"] == [f"{UNIT}-"]
        done = put_range(h2, url, data[UNIT:], UNIT, len(data))
        assert done.status_code == 201, done.text
        item = h2.get(f"/drives/{d}/root:/resume.bin").json()
        assert item["size"] == len(data)
        assert h2.client.get(item["@microsoft.graph.downloadUrl"]).content == data
