"""The "never answer" fault: selected requests are accepted and never answered, so a client's
timeouts can be tested; everything else goes on as usual."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from sharelift.emulator.server import EmulatorServer

SHORT = httpx.Timeout(5.0, read=0.5)


def _wait_for(check: Callable[[], bool], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.mark.slow
@pytest.mark.parametrize("http2", [True, False])
def test_a_selected_request_is_never_answered(
    emulator: EmulatorServer,
    http_client: Callable[..., httpx.Client],
    _session_graph_token: str,
    http2: bool,
) -> None:
    before = emulator.stats()["never_answered"]
    emulator.set_faults(never_answer="path:/v1.0/drives/*")
    client = http_client(emulator, timeout=SHORT, http2=http2)
    bearer = {"Authorization": f"Bearer {_session_graph_token}"}
    drive = next(u["drive_id"] for u in emulator.info["users"] if u["drive_id"])
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"{emulator.info['graph_url']}/drives/{drive}/root", headers=bearer)
    assert 0.4 < time.monotonic() - started < 5
    # other requests are answered meanwhile
    assert client.get(f"{emulator.info['graph_url']}/sites/root", headers=bearer).status_code == 200
    client.close()  # the client gives up: the server lets the request go
    assert _wait_for(lambda: emulator.stats()["never_answered"] == before + 1)


@pytest.mark.slow
def test_the_sign_in_endpoint_never_answers(
    emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> None:
    emulator.set_faults(never_answer="signin")
    client = http_client(emulator, timeout=SHORT)
    info = emulator.info
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            f"{info['authority']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
                "scope": info["graph_scope"],
            },
        )
    # the OpenID document is not sign-in: it is answered
    r = client.get(f"{info['authority']}/v2.0/.well-known/openid-configuration")
    assert r.status_code == 200


@pytest.mark.slow
def test_upload_urls_and_hosts_never_answer(
    emulator: EmulatorServer, graph: httpx.Client, http_client: Callable[..., httpx.Client]
) -> None:
    drive = next(u["drive_id"] for u in emulator.info["users"] if u["drive_id"])
    r = graph.post(f"/drives/{drive}/root:/Hang/a.txt:/createUploadSession", json={})
    url = r.json()["uploadUrl"]
    client = http_client(emulator, timeout=SHORT, http2=False)
    for selector in ("upload-url", "host:contoso-my.sharepoint.com", "kind:upload"):
        emulator.set_faults(never_answer=selector)
        with pytest.raises(httpx.ReadTimeout):
            client.put(url, content=b"abc", headers={"Content-Range": "bytes 0-2/3"})
    emulator.set_faults(never_answer="")
    r = client.put(url, content=b"abc", headers={"Content-Range": "bytes 0-2/3"})
    assert r.status_code == 201


def test_set_and_cleared_at_runtime(
    emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> None:
    client = http_client(emulator)
    url = f"{emulator.base_url}/_emulator/faults"
    headers = emulator.admin_headers()
    r = client.put(url, json={"never_answer": "kind:get, signin"}, headers=headers)
    assert r.status_code == 200 and r.json()["never_answer"] == "kind:get,signin"
    r = client.put(url, json={"never_answer": "sometimes"}, headers=headers)
    assert r.status_code == 400 and "sometimes" in r.json()["message"]
    r = client.put(url, json={"never_answer": 3}, headers=headers)
    assert r.status_code == 400
    r = client.post(f"{url}/reset", headers=headers)
    assert r.json()["never_answer"] == ""
    # the admin endpoints themselves always answer
    r = client.put(url, json={"never_answer": "all"}, headers=headers)
    assert client.get(url, headers=headers).status_code == 200
    assert client.post(f"{url}/reset", headers=headers).status_code == 200
