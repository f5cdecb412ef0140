"""Upload and download URLs where the service puts them: on the drive's SharePoint host, reached
through emulator.json's connect map (or a proxy), authenticated by the URL and never by a
bearer token; and each host serving only what it serves."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from sharelift.emulator.server import EmulatorServer
from sharelift.graph.connect import connect_mounts_sync, proxied, split_address
from support.connect_proxy import ConnectProxy

TEAM = "https://contoso.sharepoint.com/sites/Team/Shared%20Documents"
ENQUEUE = "/_api/SP.UserProfiles.ProfileLoader.GetProfileLoader/CreatePersonalSiteEnqueueBulk"


def _open_session(graph: httpx.Client, drive: str, path: str) -> str:
    r = graph.post(f"/drives/{drive}/root:/{path}:/createUploadSession", json={})
    assert r.status_code == 200, r.text
    return str(r.json()["uploadUrl"])


def _library(server: EmulatorServer) -> str:
    return next(d["id"] for d in server.info["drives"] if d["webUrl"] == TEAM)


def _onedrive(server: EmulatorServer) -> str:
    return next(u["drive_id"] for u in server.info["users"] if u["drive_id"])


def test_the_connect_map_and_the_certificate_name_the_sharepoint_hosts(
    emulator: EmulatorServer,
) -> None:
    connect = emulator.info["connect"]
    hosts = {"contoso.sharepoint.com", "contoso-my.sharepoint.com", "contoso-admin.sharepoint.com"}
    assert set(connect) == hosts
    assert {split_address(a) for a in connect.values()} == {("127.0.0.1", emulator.port)}
    cert = x509.load_pem_x509_certificate((emulator.data_dir / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert hosts <= set(names.get_values_for_type(x509.DNSName))


def test_upload_urls_are_on_the_drives_sharepoint_host(
    emulator: EmulatorServer, graph: httpx.Client, http_client: Callable[..., httpx.Client]
) -> None:
    mine = _open_session(graph, _onedrive(emulator), "Hosts/a.txt")
    ours = _open_session(graph, _library(emulator), "Hosts/a.txt")
    assert mine.startswith("https://contoso-my.sharepoint.com/personal/")
    assert ours.startswith("https://contoso.sharepoint.com/sites/Team/_api/v2.0/drives/")
    for url in (mine, ours):
        parsed = httpx.URL(url)
        assert parsed.port is None and parsed.path.endswith("/uploadSession")
        assert parsed.params["tempauth"] and parsed.params["guid"]
    client = http_client(emulator)
    r = client.put(ours, content=b"hello", headers={"Content-Range": "bytes 0-4/5"})
    assert r.status_code == 201, r.text
    download = r.json()["@microsoft.graph.downloadUrl"]
    assert download.startswith("https://contoso.sharepoint.com/sites/Team/_layouts/15/")
    assert client.get(download).content == b"hello"


def test_an_upload_url_answers_on_its_own_host_only(
    emulator: EmulatorServer, graph: httpx.Client, http_client: Callable[..., httpx.Client]
) -> None:
    url = _open_session(graph, _onedrive(emulator), "Hosts/b.txt")
    client = http_client(emulator)
    other_host = url.replace("contoso-my.sharepoint.com", "contoso.sharepoint.com")
    assert client.get(other_host).status_code == 401
    local = url.replace("https://contoso-my.sharepoint.com", emulator.base_url)
    assert client.get(local).status_code == 401
    forged = url.replace("tempauth=", "tempauth=x")
    assert client.get(forged).status_code == 401
    assert client.get(url).status_code == 200


def test_a_bearer_token_on_an_upload_url_is_counted_or_refused(
    emulator: EmulatorServer,
    graph: httpx.Client,
    http_client: Callable[..., httpx.Client],
    app_token: Callable[..., str],
) -> None:
    client = http_client(emulator)
    bearer = {"Authorization": f"Bearer {app_token(emulator)}"}
    before = emulator.stats()["bearer_on_upload_urls"]
    # ignored, as SharePoint Online does, and counted
    url = _open_session(graph, _onedrive(emulator), "Hosts/c.txt")
    r = client.put(url, content=b"abc", headers={"Content-Range": "bytes 0-2/3", **bearer})
    assert r.status_code == 201
    assert emulator.stats()["bearer_on_upload_urls"] == before + 1
    # refused, as Graph's page warns it may be
    admin = emulator.admin_headers()
    faults = f"{emulator.base_url}/_emulator/faults"
    r = client.put(faults, json={"refuse_bearer_on_upload_urls": True}, headers=admin)
    assert r.status_code == 200
    url = _open_session(graph, _onedrive(emulator), "Hosts/d.txt")
    r = client.put(url, content=b"abc", headers={"Content-Range": "bytes 0-2/3", **bearer})
    assert r.status_code == 401
    assert "Authorization" in r.json()["error"]["message"]
    assert emulator.stats()["bearer_on_upload_urls"] == before + 2
    # without it the same fragment goes in
    r = client.put(url, content=b"abc", headers={"Content-Range": "bytes 0-2/3"})
    assert r.status_code == 201
    client.post(f"{faults}/reset", headers=admin)
    assert emulator.settings.refuse_bearer_on_upload_urls is False


def test_each_host_serves_only_its_own_paths(
    emulator: EmulatorServer, http_client: Callable[..., httpx.Client], _session_graph_token: str
) -> None:
    client = http_client(emulator)
    bearer = {"Authorization": f"Bearer {_session_graph_token}"}
    drive = _onedrive(emulator)
    # Graph is not served on a SharePoint host...
    r = client.get(f"https://contoso.sharepoint.com/v1.0/drives/{drive}", headers=bearer)
    assert r.status_code == 404
    # ...but is on its own and on the emulator's base URL
    r = client.get(f"{emulator.info['graph_url']}/drives/{drive}", headers=bearer)
    assert r.status_code == 200
    r = client.get(
        f"{emulator.info['graph_url']}/drives/{drive}",
        headers={**bearer, "Host": "graph.microsoft.com"},
    )
    assert r.status_code == 200
    r = client.get(
        f"{emulator.base_url}/_layouts/15/download.aspx", headers={"Host": "graph.microsoft.com"}
    )
    assert r.status_code == 404


def test_the_admin_host_through_the_connect_map(
    emulator_factory: Callable[..., EmulatorServer],
    http_client: Callable[..., httpx.Client],
    app_token: Callable[..., str],
) -> None:
    server = emulator_factory()
    token = app_token(server, server.info["sharepoint_admin_scope"], certificate=True)
    client = http_client(server)
    for root in ("https://contoso-admin.sharepoint.com", server.info["sharepoint_admin_url"]):
        r = client.post(
            root + ENQUEUE,
            json={"emailIDs": ["nestor@contoso.com"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text


def test_upload_urls_through_an_https_proxy(
    emulator: EmulatorServer, graph: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = Path(emulator.info["ca_file"])
    context = ssl.create_default_context(cafile=str(ca))
    url = _open_session(graph, _onedrive(emulator), "Hosts/proxied.txt")
    with ConnectProxy(
        ca_cert=ca,
        ca_key=emulator.data_dir / "ca-key.pem",
        upstream=("127.0.0.1", emulator.port),
        upstream_ca=ca,
    ) as proxy:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        # the environment's proxy wins over the connect map for the hosts it covers
        assert proxied("contoso-my.sharepoint.com")
        mounts = connect_mounts_sync(emulator.info["connect"], verify=context)
        assert mounts == {}
        with httpx.Client(verify=context, mounts=mounts, timeout=30) as client:
            r = client.put(url, content=b"via proxy", headers={"Content-Range": "bytes 0-8/9"})
        assert r.status_code == 201, r.text
        assert proxy.hosts == {"contoso-my.sharepoint.com"}
        monkeypatch.setenv("NO_PROXY", ".sharepoint.com")
        assert not proxied("contoso-my.sharepoint.com")
        assert proxied("sharepoint.com")
        monkeypatch.setenv("NO_PROXY", "contoso-my.sharepoint.com,example.com")
        assert not proxied("contoso-my.sharepoint.com") and proxied("contoso.sharepoint.com")
