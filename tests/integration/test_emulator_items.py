"""Graph routes of the emulator: users, sites, drives, driveItems, children, folders, PATCH,
DELETE, simple upload, downloads, versions and quota."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graph_harness import APP, Harness, emulator_server, harness

from sharelift.emulator.server import EmulatorServer
from sharelift.quickxorhash import QuickXorHash

ETAG = re.compile(r'^"\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\},\d+"$')
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    with emulator_server(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture
def h(server: EmulatorServer) -> Iterator[Harness]:
    with harness(server, simple_upload_limit=4096) as hh:
        yield hh


def qxh(data: bytes) -> str:
    return base64.b64encode(QuickXorHash(data).digest()).decode()


def assert_graph_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}
    return error


# -- users, sites, drives ------------------------------------------------------------------------


def test_users_and_me(h: Harness) -> None:
    r = h.get("/users")
    assert r.status_code == 200
    upns = [u["userPrincipalName"] for u in r.json()["value"]]
    assert "megan@contoso.com" in upns and "diego@contoso.com" in upns
    r = h.get("/users", params={"$top": "2"})
    assert len(r.json()["value"]) == 2 and r.json()["@odata.nextLink"].startswith("https://")
    me = h.get("/me").json()
    assert me["userPrincipalName"] == h.upn and me["displayName"] == h.display_name
    assert h.get(f"/users/{me['id']}").json()["id"] == me["id"]
    assert_graph_error(h.get("/users/nobody@contoso.com"), 404, "Request_ResourceNotFound")
    h.as_principal(APP)
    error = assert_graph_error(h.get("/me/drive"), 400, "BadRequest")
    assert error["message"] == "/me request is only valid with delegated authentication flow."


def test_user_drive_404_until_provisioned(h: Harness) -> None:
    h.as_principal(APP)
    assert_graph_error(h.get("/users/nestor@contoso.com/drive"), 404, "ResourceNotFound")
    assert h.get("/users/nestor@contoso.com/drives").json()["value"] == []
    h.store.tenant.provision_onedrive("nestor@contoso.com")
    drive = h.get("/users/nestor@contoso.com/drive").json()
    assert drive["name"] == "OneDrive" and drive["driveType"] == "business"
    assert (
        drive["webUrl"] == "https://contoso-my.sharepoint.com/personal/nestor_contoso_com/Documents"
    )
    assert drive["owner"]["user"]["email"] == "nestor@contoso.com"
    assert set(drive["quota"]) == {"total", "used", "remaining", "deleted", "state"}


def test_sites_and_libraries(h: Harness) -> None:
    root = h.get("/sites/root").json()
    assert h.get("/sites/contoso.sharepoint.com").json()["id"] == root["id"]
    assert root["webUrl"] == "https://contoso.sharepoint.com" and root["root"] == {}
    team = h.get("/sites/contoso.sharepoint.com:/sites/team").json()
    assert team["webUrl"] == "https://contoso.sharepoint.com/sites/Team"
    assert team["id"].count(",") == 2
    assert h.get(f"/sites/{team['id']}").json()["id"] == team["id"]
    default = h.get(f"/sites/{team['id']}/drive").json()
    assert default["name"] == "Documents" and default["driveType"] == "documentLibrary"
    assert default["webUrl"].endswith("/sites/Team/Shared%20Documents")
    drives = h.get(f"/sites/{team['id']}/drives").json()["value"]
    assert [d["name"] for d in drives] == ["Documents", "Archive"]
    by_path = h.get("/sites/contoso.sharepoint.com:/sites/Team:/drive").json()
    assert by_path["id"] == default["id"]
    assert h.get(f"/drives/{default['id']}").json()["quota"]["state"] == "normal"
    assert_graph_error(h.get("/sites/contoso.sharepoint.com:/sites/Nope"), 404, "itemNotFound")
    assert_graph_error(h.get("/drives/b!nope"), 404, "itemNotFound")
    assert_graph_error(h.get("/nonsense"), 400, "BadRequest")


# -- driveItems ----------------------------------------------------------------------------------


def test_root_and_item_shapes(h: Harness) -> None:
    d = h.drive_id()
    root = h.get(f"/drives/{d}/root").json()
    assert root["name"] == "root" and root["root"] == {} and "cTag" not in root
    assert root["parentReference"] == {"driveType": "business", "driveId": d}
    assert "@odata.context" in root
    folder = h.mkdir(d, root["id"], "Reports")
    data = b"quarterly numbers"
    item = h.upload(d, "Reports/Q1.csv", data)
    assert item["size"] == len(data)
    assert item["file"] == {"mimeType": "text/csv", "hashes": {"quickXorHash": qxh(data)}}
    assert ETAG.match(item["eTag"]) and item["cTag"].startswith('"c:{')
    assert STAMP.match(item["createdDateTime"]) and STAMP.match(item["lastModifiedDateTime"])
    assert STAMP.match(item["fileSystemInfo"]["lastModifiedDateTime"])
    assert item["parentReference"] == {
        "driveType": "business",
        "driveId": d,
        "id": folder["id"],
        "path": f"/drives/{d}/root:/Reports",
    }
    personal = h.upn.replace(".", "_").replace("@", "_")
    assert item["webUrl"] == (
        f"https://contoso-my.sharepoint.com/personal/{personal}/Documents/Reports/Q1.csv"
    )
    assert item["createdBy"]["user"]["email"] == h.upn
    assert "cTag" not in folder and folder["folder"] == {"childCount": 0}
    assert h.get(f"/drives/{d}/items/{folder['id']}").json()["folder"]["childCount"] == 1
    # the same item by every address form, case-insensitively
    for path in [
        f"/drives/{d}/items/{item['id']}",
        f"/drives/{d}/root:/reports/q1.CSV",
        f"/drives/{d}/root:/Reports/Q1.csv:",
        f"/drives/{d}/items/{folder['id']}:/Q1.csv:",
        f"/drives/{d}/items/root:/Reports/Q1.csv",
        "/me/drive/root:/Reports/Q1.csv:",
        "/drive/items/root:/Reports/Q1.csv:",
        f"/users/{h.upn}/drive/items/" + item["id"],
    ]:
        got = h.get(path)
        assert got.status_code == 200, path
        assert got.json()["id"] == item["id"] and got.json()["name"] == "Q1.csv"
    listed = h.get(f"/drives/{d}/root:/Reports:/children").json()["value"]
    assert [c["id"] for c in listed] == [item["id"]]
    selected = h.get(f"/drives/{d}/items/{item['id']}", params={"$select": "id,name"}).json()
    assert {k for k in selected if not k.startswith("@")} == {"id", "name"}
    expanded = h.get(f"/drives/{d}/items/{folder['id']}", params={"$expand": "children"}).json()
    assert [c["name"] for c in expanded["children"]] == ["Q1.csv"]
    assert_graph_error(h.get(f"/drives/{d}/root:/Reports/missing.txt"), 404, "itemNotFound")
    assert_graph_error(h.get(f"/drives/{d}/items/01NOPE"), 404, "itemNotFound")


def test_folder_conflicts(h: Harness) -> None:
    d = h.drive_id()
    first = h.mkdir(d, "root", "Team Files")
    r = h.post(
        f"/drives/{d}/root/children",
        json={"name": "team files", "folder": {}, "@microsoft.graph.conflictBehavior": "fail"},
        headers={"client-request-id": "abc-123"},
    )
    error = assert_graph_error(r, 409, "nameAlreadyExists")
    assert error["innerError"]["client-request-id"] == "abc-123"
    renamed = h.post(
        f"/drives/{d}/root/children",
        json={"name": "Team Files", "folder": {}, "@microsoft.graph.conflictBehavior": "rename"},
    )
    assert renamed.status_code == 201 and renamed.json()["name"] == "Team Files 1"
    replaced = h.post(
        f"/drives/{d}/root/children",
        json={"name": "Team Files", "folder": {}, "@microsoft.graph.conflictBehavior": "replace"},
    )
    # rclone sends OneDrive's older annotation and a folder facet with a childCount
    legacy = h.post(
        f"/drives/{d}/root/children",
        json={"name": "TEAM FILES", "folder": {"childCount": 0}, "@name.conflictBehavior": "fail"},
    )
    assert_graph_error(legacy, 409, "nameAlreadyExists")
    assert replaced.status_code == 200 and replaced.json()["id"] == first["id"]
    h.upload(d, "doc.txt", b"1")
    again = h.upload(d, "doc.txt", b"2", **{"@microsoft.graph.conflictBehavior": "rename"})
    assert again["name"] == "doc 1.txt"
    r = h.put(
        f"/drives/{d}/root:/doc.txt:/content",
        content=b"3",
        params={"@microsoft.graph.conflictBehavior": "fail"},
    )
    assert_graph_error(r, 409, "nameAlreadyExists")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a:b", "The provided name cannot contain any illegal characters."),
        ("trailing ", "The provided name cannot contain leading, or trailing, spaces."),
        ("CON", None),
        ("_vti_cnf", None),
        ("x" * 256, None),
    ],
)
def test_refused_folder_names(h: Harness, name: str, message: str | None) -> None:
    d = h.drive_id()
    r = h.post(f"/drives/{d}/root/children", json={"name": name, "folder": {}})
    error = assert_graph_error(r, 400, "invalidRequest")
    if message:
        assert error["message"] == message


def test_forms_and_path_length(h: Harness) -> None:
    d = h.drive_id()
    r = h.post(f"/drives/{d}/root/children", json={"name": "Forms", "folder": {}})
    assert assert_graph_error(r, 400, "invalidRequest")["message"] == (
        "Name is reserved for list forms folder."
    )
    sub = h.mkdir(d, "root", "sub")
    assert h.mkdir(d, sub["id"], "forms")["name"] == "forms"
    parent = sub
    for _ in range(2):
        parent = h.mkdir(d, parent["id"], "p" * 150)
    r = h.post(f"/drives/{d}/items/{parent['id']}/children", json={"name": "q" * 100, "folder": {}})
    assert_graph_error(r, 400, "invalidRequest")


def test_children_paging(h: Harness) -> None:
    d = h.drive_id()
    folder = h.mkdir(d, "root", "many")
    names = [f"f{i:02d}.txt" for i in range(7)]
    for name in names:
        h.upload(d, f"many/{name}", name.encode())
    seen: list[str] = []
    url: str | None = f"/drives/{d}/items/{folder['id']}/children?$top=3&$select=name,id"
    pages = 0
    while url:
        body = h.get(url).json()
        pages += 1
        seen += [c["name"] for c in body["value"]]
        assert all(set(c) == {"id", "name"} for c in body["value"])
        url = body.get("@odata.nextLink")
        assert url is None or url.startswith(f"{h.graph_url}/drives/")
    assert seen == names and pages == 3
    default = h.get(f"/drives/{d}/items/{folder['id']}/children").json()
    assert len(default["value"]) == 7 and "@odata.nextLink" not in default
    assert_graph_error(h.get(f"/drives/{d}/root/children?$top=zero"), 400, "invalidRequest")


def test_patch_rename_move_and_times(h: Harness) -> None:
    d = h.drive_id()
    a = h.mkdir(d, "root", "A")
    b = h.mkdir(d, "root", "B")
    item = h.upload(d, "A/x.txt", b"x")
    stale = item["eTag"]
    r = h.patch(
        f"/drives/{d}/items/{item['id']}", json={"name": "y.txt"}, headers={"If-Match": stale}
    )
    assert r.status_code == 200 and r.json()["name"] == "y.txt"
    r = h.patch(
        f"/drives/{d}/items/{item['id']}", json={"name": "w.txt"}, headers={"If-Match": stale}
    )
    assert_graph_error(r, 412, "preconditionFailed")
    assert_graph_error(
        h.delete(f"/drives/{d}/items/{item['id']}", headers={"If-Match": stale}),
        412,
        "preconditionFailed",
    )
    r = h.patch(f"/drives/{d}/items/{item['id']}", json={"parentReference": {"id": b["id"]}})
    assert r.json()["parentReference"]["path"] == f"/drives/{d}/root:/B"
    r = h.patch(
        f"/drives/{d}/items/{item['id']}",
        json={"parentReference": {"path": f"/drives/{d}/root:/A"}, "name": "z.txt"},
    )
    assert r.json()["parentReference"]["id"] == a["id"] and r.json()["name"] == "z.txt"
    h.upload(d, "A/taken.txt", b"t")
    assert_graph_error(
        h.patch(f"/drives/{d}/items/{item['id']}", json={"name": "TAKEN.txt"}),
        409,
        "nameAlreadyExists",
    )
    assert_graph_error(
        h.patch(f"/drives/{d}/items/{a['id']}", json={"parentReference": {"id": a["id"]}}),
        400,
        "invalidRequest",
    )
    # case-only rename is allowed
    assert h.patch(f"/drives/{d}/items/{a['id']}", json={"name": "a"}).json()["name"] == "a"
    times = {
        "createdDateTime": "2001-02-03T04:05:06Z",
        "lastModifiedDateTime": "2002-03-04T05:06:07.1234567Z",
    }
    r = h.patch(f"/drives/{d}/items/{item['id']}", json={"fileSystemInfo": times})
    assert r.json()["fileSystemInfo"] == {
        "createdDateTime": "2001-02-03T04:05:06Z",
        "lastModifiedDateTime": "2002-03-04T05:06:07Z",
    }


def test_versions_and_quota(h: Harness) -> None:
    d = h.drive_id()
    data = b"v" * 1000
    item = h.upload(d, "report.docx", data)
    assert h.get(f"/drives/{d}").json()["quota"]["used"] == 1000
    h.upload(d, "report.docx", data)  # replace: version 2
    times = {"lastModifiedDateTime": "2020-01-01T00:00:00Z"}
    h.patch(f"/drives/{d}/items/{item['id']}", json={"fileSystemInfo": times})  # version 3
    versions = h.get(f"/drives/{d}/items/{item['id']}/versions").json()["value"]
    assert [v["id"] for v in versions] == ["3.0", "2.0", "1.0"]
    assert all(v["size"] == 1000 for v in versions)
    quota = h.get(f"/drives/{d}").json()["quota"]
    assert quota["used"] == 3000 and quota["remaining"] == quota["total"] - 3000
    r = h.get(f"/drives/{d}/items/{item['id']}/versions/1.0/content")
    assert r.status_code == 302 and h.client.get(r.headers["location"]).content == data
    h.store.versions.set_quota(d, 3300)
    r = h.put(f"/drives/{d}/root:/big.bin:/content", content=b"b" * 600)
    assert_graph_error(r, 507, "insufficientStorage")
    assert h.get(f"/drives/{d}").json()["quota"]["state"] == "nearing"


def test_delete_is_recursive(h: Harness) -> None:
    d = h.drive_id()
    top = h.mkdir(d, "root", "top")
    h.mkdir(d, top["id"], "inner")
    h.upload(d, "top/inner/f.bin", b"12345")
    assert h.delete(f"/drives/{d}/items/{top['id']}").status_code == 204
    assert_graph_error(h.get(f"/drives/{d}/root:/top/inner/f.bin"), 404, "itemNotFound")
    assert_graph_error(h.delete(f"/drives/{d}/items/{top['id']}"), 404, "itemNotFound")
    quota = h.get(f"/drives/{d}").json()["quota"]
    assert (quota["used"], quota["deleted"]) == (0, 5)
    assert h.get(f"/drives/{d}/root").json()["folder"]["childCount"] == 0
    # the name is free again
    assert h.mkdir(d, "root", "top")["id"] != top["id"]


def test_simple_upload_limits_and_parents(h: Harness) -> None:
    d = h.drive_id()
    r = h.put(f"/drives/{d}/root:/big.bin:/content", content=b"x" * 4097)
    assert_graph_error(r, 413, "requestEntityTooLarge")
    created = h.put(f"/drives/{d}/root:/new/deep/file.txt:/content", content=b"")
    assert created.status_code == 201 and created.json()["size"] == 0
    assert created.json()["parentReference"]["path"] == f"/drives/{d}/root:/new/deep"
    replaced = h.put(f"/drives/{d}/items/{created.json()['id']}/content", content=b"now")
    assert replaced.status_code == 200 and replaced.json()["size"] == 3
    assert replaced.json()["cTag"] != created.json()["cTag"]
    assert replaced.json()["eTag"] != created.json()["eTag"]
    folder = h.get(f"/drives/{d}/root:/new").json()
    assert_graph_error(
        h.put(f"/drives/{d}/items/{folder['id']}/content", content=b"x"), 400, "invalidRequest"
    )
    r = h.put(f"/drives/{d}/root:/bad|name.txt:/content", content=b"x")
    assert_graph_error(r, 400, "invalidRequest")


def test_download_redirect_and_ranges(h: Harness) -> None:
    d = h.drive_id()
    data = bytes(range(256)) * 4
    item = h.upload(d, "bytes.bin", data)
    r = h.get(f"/drives/{d}/items/{item['id']}/content")
    assert r.status_code == 302
    url = r.headers["location"]
    # on the OneDrive's own SharePoint host, as Graph hands them out
    prefix = "https://contoso-my.sharepoint.com/personal/"
    assert url.startswith(prefix) and "/_layouts/15/download.aspx?UniqueId=" in url
    assert h.client.get(url).content == data
    assert h.client.get(item["@microsoft.graph.downloadUrl"]).content == data
    part = h.client.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert h.client.get(url, headers={"Range": "bytes=-4"}).content == data[-4:]
    assert h.client.get(url, headers={"Range": "bytes=1020-"}).content == data[1020:]
    assert h.client.get(url, headers={"Range": "bytes=5000-"}).status_code == 416
    assert h.client.get(url, headers={"Range": "bytes=0-1,4-5"}).content == data
    forged = url.replace("tempauth=", "tempauth=AAA")
    assert h.client.get(forged).status_code == 401
    folder = h.mkdir(d, "root", "f")
    assert_graph_error(h.get(f"/drives/{d}/items/{folder['id']}/content"), 404, "itemNotFound")
    # by path, whichever host the request came to (as behind a proxy)
    r = h.get("/me/drive/root:/bytes.bin:/content", headers={"Host": "graph.microsoft.com"})
    assert r.headers["location"].startswith(prefix)
    # the URL is good on its own host only
    elsewhere = url.replace("contoso-my.sharepoint.com", "contoso.sharepoint.com")
    assert h.client.get(elsewhere).status_code == 401


def test_parallel_uploads_into_one_folder(h: Harness) -> None:
    d = h.drive_id()
    folder = h.mkdir(d, "root", "drop")

    async def burst() -> list[httpx.Response]:
        async with h.async_client() as client:
            return list(await asyncio.gather(*requests(client)))

    def requests(client: httpx.AsyncClient) -> list[Any]:
        unique = [
            client.put(f"/drives/{d}/root:/drop/u{i}.txt:/content", content=b"u") for i in range(30)
        ]
        renamed = [
            client.put(
                f"/drives/{d}/root:/drop/same.txt:/content",
                content=b"s",
                params={"@microsoft.graph.conflictBehavior": "rename"},
            )
            for _ in range(15)
        ]
        failing = [
            client.post(
                f"/drives/{d}/items/{folder['id']}/children",
                json={"name": "one", "folder": {}, "@microsoft.graph.conflictBehavior": "fail"},
            )
            for _ in range(10)
        ]
        return [*unique, *renamed, *failing]

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert statuses[:45] == [201] * 45
    assert sorted(statuses[45:]) == [201] + [409] * 9
    listed = h.get(f"/drives/{d}/items/{folder['id']}/children?$top=1000").json()["value"]
    names = [c["name"] for c in listed]
    assert len(names) == len(set(n.lower() for n in names)) == 46
    assert h.get(f"/drives/{d}/items/{folder['id']}").json()["folder"]["childCount"] == 46


def test_persistence_across_restart(tmp_path: Path) -> None:
    with emulator_server(tmp_path) as first, harness(first) as h1:
        d, upn, old_base = h1.drive_id(), h1.upn, first.base_url
        item = h1.upload(d, "keep/me.txt", b"persisted")
        url = item["@microsoft.graph.downloadUrl"]
    with emulator_server(tmp_path) as second, harness(second) as h2:
        assert h2.drive_id(upn) == d
        again = h2.get(f"/drives/{d}/root:/keep/me.txt").json()
        assert again["id"] == item["id"] and again["file"] == item["file"]
        # download URLs stay valid across a restart (only the port changed)
        moved = url.replace(old_base, second.base_url)
        assert h2.client.get(moved).content == b"persisted"
        assert {u["userPrincipalName"] for u in h2.get("/users").json()["value"]} >= {upn}


def test_copy_with_monitor(h: Harness) -> None:
    d = h.drive_id()
    src = h.mkdir(d, "root", "src")
    h.upload(d, "src/a.txt", b"aaa")
    h.upload(d, "src/sub/b.txt", b"bb")
    dest = h.mkdir(d, "root", "dest")
    r = h.post(
        f"/drives/{d}/items/{src['id']}/copy",
        json={"parentReference": {"driveId": d, "id": dest["id"]}, "name": "copied"},
    )
    assert r.status_code == 202
    status = h.client.get(r.headers["location"])  # no token: monitor URLs are pre-authenticated
    assert status.json()["status"] == "completed"
    copied = h.get(f"/drives/{d}/items/{status.json()['resourceId']}").json()
    assert copied["name"] == "copied" and copied["folder"]["childCount"] == 2
    b = h.get(f"/drives/{d}/root:/dest/copied/sub/b.txt").json()
    assert b["file"]["hashes"] == h.get(f"/drives/{d}/root:/src/sub/b.txt").json()["file"]["hashes"]
    assert h.client.get(b["@microsoft.graph.downloadUrl"]).content == b"bb"
    assert h.get(f"/drives/{d}").json()["quota"]["used"] == 10
    again = h.post(
        f"/drives/{d}/items/{src['id']}/copy",
        json={"parentReference": {"id": dest["id"]}, "name": "copied"},
    )
    assert_graph_error(again, 409, "nameAlreadyExists")
    into_self = h.post(
        f"/drives/{d}/items/{src['id']}/copy", json={"parentReference": {"id": src["id"]}}
    )
    assert_graph_error(into_self, 400, "invalidRequest")


def test_special_characters_in_paths(h: Harness) -> None:
    from urllib.parse import quote

    d = h.drive_id()
    name = "a#b %c+d&e;f=g'h~i ü.txt"
    r = h.put(f"/drives/{d}/root:/{quote('dir ä')}/{quote(name)}:/content", content=b"x")
    assert r.status_code == 201, r.text
    assert r.json()["name"] == name
    assert r.json()["parentReference"]["path"] == f"/drives/{d}/root:/dir ä"
    got = h.get(f"/drives/{d}/root:/{quote('DIR Ä')}/{quote(name.upper())}")
    assert got.status_code == 200 and got.json()["id"] == r.json()["id"]
    assert r.json()["webUrl"].endswith("/dir%20%C3%A4/" + quote(name))


def test_folder_sizes_add_up(h: Harness) -> None:
    d = h.drive_id()
    h.upload(d, "top/a.bin", b"a" * 10)
    h.upload(d, "top/sub/b.bin", b"b" * 20)
    other = h.mkdir(d, "root", "other")

    def size(path: str) -> int:
        value: int = h.get(f"/drives/{d}/root:/{path}" if path else f"/drives/{d}/root").json()[
            "size"
        ]
        return value

    assert (size("top"), size("top/sub"), size("")) == (30, 20, 30)
    h.upload(d, "top/sub/b.bin", b"b" * 5)  # replaced: smaller
    assert (size("top"), size("top/sub")) == (15, 5)
    sub = h.get(f"/drives/{d}/root:/top/sub").json()
    h.patch(f"/drives/{d}/items/{sub['id']}", json={"parentReference": {"id": other["id"]}})
    assert (size("top"), size("other"), size("")) == (10, 5, 15)
    h.post(f"/drives/{d}/items/{other['id']}/copy", json={"name": "other2"})
    assert (size("other2"), size("")) == (5, 20)
    h.delete(f"/drives/{d}/items/{other['id']}")
    assert size("") == 15
