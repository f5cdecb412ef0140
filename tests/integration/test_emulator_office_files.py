"""What SharePoint does to Office files in site libraries, over HTTPS: the stored bytes change
(size, hash, download, listing, delta, versions agree), OneDrive keeps them as sent; and it may
refuse to replace or delete them with 404 itemNotFound, while moving them aside works."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sharelift.emulator.server import EmulatorServer
from sharelift.quickxorhash import QuickXorHash
from support.office import compound_file, ooxml_package, parts_of

TEAM = "https://contoso.sharepoint.com/sites/Team/Shared%20Documents"
UNIT = 320 * 1024


def qxh(data: bytes) -> str:
    hasher = QuickXorHash()
    hasher.update(data)
    return base64.b64encode(hasher.digest()).decode()


class Tenant:
    """The session emulator through Graph with an app token; upload and download URLs get none."""

    def __init__(self, server: EmulatorServer, graph: httpx.Client, plain: httpx.Client) -> None:
        self.server = server
        self.graph = graph
        self.plain = plain
        self.library = next(d["id"] for d in server.info["drives"] if d["webUrl"] == TEAM)
        self.onedrive = next(u["drive_id"] for u in server.info["users"] if u["drive_id"])

    def put(self, drive: str, path: str, data: bytes) -> dict[str, Any]:
        r = self.graph.put(f"/drives/{drive}/root:/{path}:/content", content=data)
        assert r.status_code in (200, 201), r.text
        body: dict[str, Any] = r.json()
        return body

    def session_upload(self, drive: str, path: str, data: bytes) -> httpx.Response:
        r = self.graph.post(
            f"/drives/{drive}/root:/{path}:/createUploadSession",
            json={"item": {"@microsoft.graph.conflictBehavior": "replace"}},
        )
        assert r.status_code == 200, r.text
        url = r.json()["uploadUrl"]
        answer: httpx.Response | None = None
        for start in range(0, len(data), UNIT):
            chunk = data[start : start + UNIT]
            end = start + len(chunk) - 1
            answer = self.plain.put(
                url, content=chunk, headers={"Content-Range": f"bytes {start}-{end}/{len(data)}"}
            )
            if answer.status_code >= 400:
                return answer
        assert answer is not None
        return answer

    def download(self, drive: str, item_id: str) -> bytes:
        r = self.graph.get(f"/drives/{drive}/items/{item_id}/content")
        assert r.status_code == 302
        return self.plain.get(r.headers["location"]).content


@pytest.fixture
def tenant(
    emulator: EmulatorServer, graph: httpx.Client, http_client: Callable[..., httpx.Client]
) -> Iterator[Tenant]:
    emulator.set_faults(replace_not_found_rate=0)
    yield Tenant(emulator, graph, http_client(emulator))
    emulator.settings.office_enrichment = True


def test_a_library_stores_an_enriched_package(tenant: Tenant) -> None:
    sent = ooxml_package("docx", seed=1)
    item = tenant.put(tenant.library, "Office/report.docx", sent)
    stored = tenant.download(tenant.library, item["id"])
    assert stored != sent
    # Graph reports what is stored: size and hash of the bytes a download gives
    assert item["size"] == len(stored) != len(sent)
    assert item["file"]["hashes"]["quickXorHash"] == qxh(stored) != qxh(sent)
    listed = tenant.graph.get(f"/drives/{tenant.library}/root:/Office:/children").json()
    (entry,) = [c for c in listed["value"] if c["name"] == "report.docx"]
    assert (entry["size"], entry["file"]["hashes"]["quickXorHash"]) == (len(stored), qxh(stored))
    delta = tenant.graph.get(f"/drives/{tenant.library}/root/delta").json()
    (changed,) = [c for c in delta["value"] if c.get("id") == item["id"]]
    assert changed["size"] == len(stored)
    # the document's own parts are intact, SharePoint's metadata is added
    before, after = parts_of(sent), parts_of(stored)
    assert after["word/document.xml"] == before["word/document.xml"]
    assert after["word/media/image1.png"] == before["word/media/image1.png"]
    assert "customXml/item1.xml" in after and "docProps/custom.xml" in after


def test_a_large_package_through_an_upload_session_and_its_versions(tenant: Tenant) -> None:
    first = ooxml_package("pptx", seed=2) + b""
    r = tenant.session_upload(tenant.library, "Office/deck.pptx", first)
    assert r.status_code == 201, r.text
    item = r.json()
    stored_first = tenant.download(tenant.library, item["id"])
    assert item["size"] == len(stored_first) and stored_first != first
    second = ooxml_package("pptx", seed=3)
    r = tenant.session_upload(tenant.library, "Office/deck.pptx", second)
    assert r.status_code == 200, r.text
    stored_second = tenant.download(tenant.library, item["id"])
    assert (
        parts_of(stored_second)["ppt/presentation.xml"] == parts_of(second)["ppt/presentation.xml"]
    )
    versions = tenant.graph.get(f"/drives/{tenant.library}/items/{item['id']}/versions").json()
    sizes = {v["id"]: v["size"] for v in versions["value"]}
    assert sizes == {"1.0": len(stored_first), "2.0": len(stored_second)}
    old = tenant.graph.get(f"/drives/{tenant.library}/items/{item['id']}/versions/1.0/content")
    assert tenant.plain.get(old.headers["location"]).content == stored_first


def test_onedrive_keeps_office_files_as_sent(tenant: Tenant) -> None:
    sent = ooxml_package("xlsx", seed=4)
    item = tenant.put(tenant.onedrive, "Office/book.xlsx", sent)
    assert item["size"] == len(sent)
    assert item["file"]["hashes"]["quickXorHash"] == qxh(sent)
    assert tenant.download(tenant.onedrive, item["id"]) == sent


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("not-a-zip.docx", b"plain text that calls itself a docx"),
        ("notes.txt", ooxml_package("docx", seed=5)),  # a package, but not by its name
        ("broken.xls", b"\xd0\xcf\x11\xe0 not really a compound file"),
    ],
)
def test_what_the_parser_cannot_read_is_stored_as_sent(
    tenant: Tenant, name: str, data: bytes
) -> None:
    item = tenant.put(tenant.library, f"Office/{name}", data)
    assert (item["size"], item["file"]["hashes"]["quickXorHash"]) == (len(data), qxh(data))
    assert tenant.download(tenant.library, item["id"]) == data


def test_a_binary_office_file_gets_its_properties_rewritten(tenant: Tenant) -> None:
    word = bytes(range(256)) * 64
    sent = compound_file(word)
    item = tenant.put(tenant.library, "Office/memo.doc", sent)
    stored = tenant.download(tenant.library, item["id"])
    assert stored != sent and item["size"] == len(stored)
    assert word in stored  # the document stream, contiguous and intact
    assert "ContentTypeId".encode("utf-16-le") in stored
    # and in a OneDrive, as sent
    assert tenant.put(tenant.onedrive, "Office/memo.doc", sent)["size"] == len(sent)


def test_enrichment_switched_off_at_runtime(tenant: Tenant) -> None:
    url = f"{tenant.server.base_url}/_emulator/faults"
    headers = tenant.server.admin_headers()
    r = tenant.plain.put(url, json={"office_enrichment": False}, headers=headers)
    assert r.status_code == 200 and r.json()["office_enrichment"] is False
    sent = ooxml_package("docx", seed=6)
    item = tenant.put(tenant.library, "Office/plain.docx", sent)
    assert tenant.download(tenant.library, item["id"]) == sent
    assert (
        tenant.plain.put(url, json={"office_enrichment": "no"}, headers=headers).status_code == 400
    )
    r = tenant.plain.post(f"{url}/reset", headers=headers)
    assert r.json()["office_enrichment"] is True


def test_enrichment_off_for_a_tenant(emulator_factory: Callable[..., EmulatorServer]) -> None:
    server = emulator_factory(office_enrichment=False)
    assert server.settings.office_enrichment is False
    assert server.store is not None
    library = next(d["id"] for d in server.info["drives"] if d["webUrl"] == TEAM)
    drive = server.store.tenant.drive(library)
    assert drive is not None
    sent = ooxml_package("docx", seed=7)
    item, _ = server.store.files.put(
        library,
        drive.root_id,
        "off.docx",
        server.store.files.stage([sent]),
        "fail",
        _stamp(),
    )
    assert item.size == len(sent) and item.qxh == qxh(sent)


def _stamp() -> Any:
    from sharelift.emulator.store import SYSTEM_IDENTITY, Stamp

    return Stamp(SYSTEM_IDENTITY)


# --- 404 itemNotFound on replacing or deleting ------------------------------------------------


def test_replacing_or_deleting_an_office_file_may_be_refused(tenant: Tenant) -> None:
    before = tenant.server.stats()["replace_refused"]
    item = tenant.put(tenant.library, "Refused/budget.xlsx", ooxml_package("xlsx", seed=8))
    tenant.server.set_faults(replace_not_found_rate=1)
    # a simple upload over it, the last fragment of a session, a delete: all 404
    r = tenant.graph.put(
        f"/drives/{tenant.library}/items/{item['id']}/content", content=ooxml_package("xlsx")
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "itemNotFound"
    r = tenant.session_upload(tenant.library, "Refused/budget.xlsx", ooxml_package("xlsx", seed=9))
    assert r.status_code == 404 and r.json()["error"]["code"] == "itemNotFound"
    r = tenant.graph.delete(f"/drives/{tenant.library}/items/{item['id']}")
    assert r.status_code == 404
    # the item is there all the while
    assert tenant.graph.get(f"/drives/{tenant.library}/items/{item['id']}").status_code == 200
    assert tenant.server.stats()["replace_refused"] == before + 3
    # other files, new files and OneDrives are not refused
    assert tenant.put(tenant.library, "Refused/notes.txt", b"a").get("id")
    assert tenant.put(tenant.library, "Refused/notes.txt", b"b").get("id")
    assert tenant.put(tenant.library, "Refused/new.docx", ooxml_package()).get("id")
    mine = tenant.put(tenant.onedrive, "Refused/budget.xlsx", b"x")
    assert tenant.put(tenant.onedrive, "Refused/budget.xlsx", b"y")["id"] == mine["id"]


def test_moving_aside_is_never_refused(tenant: Tenant) -> None:
    item = tenant.put(tenant.library, "Aside/page.aspx", b"<html>old</html>")
    tenant.server.set_faults(replace_not_found_rate=1)
    assert tenant.graph.delete(f"/drives/{tenant.library}/items/{item['id']}").status_code == 404
    folder = tenant.graph.post(
        f"/drives/{tenant.library}/root/children", json={"name": "Aside-old", "folder": {}}
    ).json()
    r = tenant.graph.patch(
        f"/drives/{tenant.library}/items/{item['id']}",
        json={"name": "page.old.aspx", "parentReference": {"id": folder["id"]}},
    )
    assert r.status_code == 200, r.text
    # with the old one out of the way, the new one is a new file: not refused
    new = tenant.put(tenant.library, "Aside/page.aspx", b"<html>new</html>")
    assert new["id"] != item["id"]
    moved = tenant.graph.get(f"/drives/{tenant.library}/items/{item['id']}").json()
    assert moved["name"] == "page.old.aspx"


def test_the_refusals_follow_the_seed(tenant: Tenant) -> None:
    def run(name: str) -> list[int]:
        item = tenant.put(tenant.library, f"Seeded/{name}", b"v0")  # a new file: no draw
        tenant.server.set_faults(replace_not_found_rate=0.5, seed=42)
        out = []
        for n in range(12):
            r = tenant.graph.put(
                f"/drives/{tenant.library}/items/{item['id']}/content", content=f"v{n}".encode()
            )
            out.append(r.status_code)
        return out

    first = run("a.docx")
    assert run("b.docx") == first
    assert {200, 404} == set(first)
