"""delta on the emulator: paging, tokens, tombstones, 410 resync."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from graph_harness import Harness, emulator_server, harness

from sharelift.emulator.server import EmulatorServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    with emulator_server(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture
def h(server: EmulatorServer) -> Iterator[Harness]:
    with harness(server) as hh:
        yield hh


def follow(h: Harness, url: str) -> tuple[list[dict[str, Any]], str, int]:
    """All pages from `url`: (items, deltaLink, number of pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        r = h.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        items += body["value"]
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            continue
        link: str = body["@odata.deltaLink"]
        return items, link, pages


def test_initial_enumeration_pages(h: Harness) -> None:
    d = h.drive_id()
    h.mkdir(d, "root", "A")
    for i in range(4):
        h.upload(d, f"A/{i}.txt", b"x")
    items, link, pages = follow(h, f"/drives/{d}/root/delta?$top=2")
    assert pages == 3
    assert [i["name"] for i in items] == ["root", "A", "0.txt", "1.txt", "2.txt", "3.txt"]
    assert items[0]["root"] == {}
    assert link.startswith(f"{h.graph_url}/drives/{d}/root/delta?token=")
    # nothing changed: an empty page and a new deltaLink
    again, _, _ = follow(h, link)
    assert again == []


def test_changes_and_tombstones(h: Harness) -> None:
    d = h.drive_id()
    folder = h.mkdir(d, "root", "old")
    inner = h.upload(d, "old/in.txt", b"x")
    keep = h.upload(d, "keep.txt", b"1")
    _, link, _ = follow(h, f"/drives/{d}/root/delta")
    h.upload(d, "keep.txt", b"22")
    h.delete(f"/drives/{d}/items/{folder['id']}")
    new = h.upload(d, "new.txt", b"n")
    items, link2, _ = follow(h, link)
    by_id = {i["id"]: i for i in items}
    assert by_id[keep["id"]]["size"] == 2
    assert by_id[new["id"]]["name"] == "new.txt"
    for gone in (folder, inner):
        assert by_id[gone["id"]]["deleted"] == {"state": "deleted"}
    assert "folder" in by_id[folder["id"]] and "file" in by_id[inner["id"]]
    assert follow(h, link2)[0] == []


def test_latest_and_bad_tokens(h: Harness) -> None:
    d = h.drive_id()
    h.upload(d, "before.txt", b"x")
    body = h.get(f"/drives/{d}/root/delta?token=latest").json()
    assert body["value"] == []
    h.upload(d, "after.txt", b"y")
    items, _, _ = follow(h, body["@odata.deltaLink"])
    assert [i["name"] for i in items] == ["after.txt"]
    for token in ["garbage", "bm9wZQ"]:
        r = h.get(f"/drives/{d}/root/delta?token={token}")
        assert r.status_code == 410
        error = r.json()["error"]
        assert error["code"] == "resyncRequired"
        assert error["innerError"]["code"] == "resyncChangesApplyDifferences"
    # a token of another drive is not this drive's
    other = h.drive_id("alex@contoso.com")
    foreign = h.get(f"/drives/{other}/root/delta?token=latest").json()["@odata.deltaLink"]
    token = foreign.split("token=")[1]
    assert h.get(f"/drives/{d}/root/delta?token={token}").status_code == 410


def test_expired_token(h: Harness) -> None:
    d = h.drive_id()
    _, link, _ = follow(h, f"/drives/{d}/root/delta")
    h.store.changes.expire_tokens(d)
    assert h.get(link).status_code == 410
    items, _, _ = follow(h, f"/drives/{d}/root/delta")
    assert items[0]["name"] == "root"


def test_delta_only_on_root(h: Harness) -> None:
    d = h.drive_id()
    folder = h.mkdir(d, "root", "f")
    r = h.get(f"/drives/{d}/items/{folder['id']}/delta")
    assert r.status_code == 400


def test_parents_come_before_children(h: Harness) -> None:
    d = h.drive_id()
    inner = h.upload(d, "early/deep/f.txt", b"x")
    late = h.mkdir(d, "root", "late")
    early = h.get(f"/drives/{d}/root:/early").json()
    _, link, _ = follow(h, f"/drives/{d}/root/delta")
    # `early` (created first) moves into `late` (created after it)
    h.patch(f"/drives/{d}/items/{early['id']}", json={"parentReference": {"id": late["id"]}})
    full, _, _ = follow(h, f"/drives/{d}/root/delta?$top=1")
    seen: set[str] = set()
    for item in full:
        assert "root" in item or item["parentReference"]["id"] in seen, item["name"]
        seen.add(item["id"])
    changes, _, _ = follow(h, link)
    order = [i["id"] for i in changes]
    assert order.index(early["id"]) < order.index(inner["id"])
    moved = next(i for i in changes if i["id"] == inner["id"])
    assert moved["parentReference"]["path"] == f"/drives/{d}/root:/late/early/deep"
