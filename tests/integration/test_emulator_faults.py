"""Faults on demand, seen by a real client over TLS: latency, throttling, 5xx, drops, bandwidth."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from sharelift.emulator.faults import classify
from sharelift.emulator.server import EmulatorServer


def _admin(emulator: EmulatorServer) -> dict[str, str]:
    return {"X-Emulator-Key": emulator.info["admin_key"]}


def test_resource_unit_costs() -> None:
    assert classify("GET", "/v1.0/drives/d/items/i", b"").ru == 1
    assert classify("GET", "/v1.0/drives/d/items/i/children", b"").ru == 2
    assert classify("GET", "/v1.0/drives/d/root/delta", b"").ru == 2
    assert classify("GET", "/v1.0/drives/d/root/delta", b"token=abc").ru == 1
    assert classify("GET", "/v1.0/drives/d/items/i/content", b"").ru == 1
    assert classify("PUT", "/v1.0/drives/d/items/p:/a.txt:/content", b"").kind == "upload"
    upload_url = "/personal/u/_api/v2.0/drives/d/items/i/uploadSession"
    assert classify("PUT", upload_url, b"guid='s'").ru == 2
    assert classify("PUT", upload_url, b"").kind == "upload"
    assert classify("GET", "/_api/v2.0/drives/d/items/i/uploadSession", b"").kind == (
        "upload-session"
    )
    assert classify("POST", "/v1.0/drives/d/items/p/children", b"").ru == 2
    assert classify("DELETE", "/v1.0/drives/d/items/i", b"").ru == 2
    assert classify("POST", "/v1.0/drives/d/items/i/invite", b"").ru == 5
    assert classify("GET", "/v1.0/drives/d/items/i/permissions", b"").ru == 5
    assert classify("GET", "/sites/Team/_layouts/15/download.aspx", b"tempauth=t").ru == 1
    assert classify("POST", "/v1.0/$batch", b"").ru == 0
    assert classify("POST", "/tid/oauth2/v2.0/token", b"").kind == "identity"


def test_faults_admin_endpoint(
    emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> None:
    client = http_client(emulator)
    url = f"{emulator.base_url}/_emulator/faults"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-Emulator-Key": "wrong"}).status_code == 401
    r = client.put(
        url, json={"latency_ms": 5, "provisioning_delay_s": 0.25}, headers=_admin(emulator)
    )
    assert r.status_code == 200
    assert r.json()["latency_ms"] == 5 and r.json()["provisioning_delay_s"] == 0.25
    assert emulator.settings.faults.latency_ms == 5
    assert client.put(url, json={"nope": 1}, headers=_admin(emulator)).status_code == 400
    assert client.put(url, json={"error_rate": 2}, headers=_admin(emulator)).status_code == 400
    r = client.post(f"{url}/reset", headers=_admin(emulator))
    assert r.json()["latency_ms"] == 0
    emulator.settings.provisioning_delay_s = 0.0


def test_latency_is_added(emulator: EmulatorServer, graph: httpx.Client) -> None:
    graph.get("/users")  # warm the connection
    emulator.set_faults(latency_ms=300)
    start = time.monotonic()
    assert graph.get("/users").status_code == 200
    assert time.monotonic() - start >= 0.3
    emulator.set_faults(latency_ms=0)
    start = time.monotonic()
    graph.get("/users")
    assert time.monotonic() - start < 0.3


def test_throttling_by_resource_units(emulator: EmulatorServer, graph: httpx.Client) -> None:
    emulator.set_faults(ru_per_minute=10)  # GET /users lists: 2 units each
    answers = [graph.get("/users") for _ in range(6)]
    assert [r.status_code for r in answers] == [200, 200, 200, 200, 200, 429]
    assert "ratelimit-limit" not in answers[2].headers  # 6 of 10 used: below 80%
    assert answers[3].headers["ratelimit-limit"] == "10"  # 8 of 10: from 80% on
    assert answers[3].headers["ratelimit-remaining"] == "2"
    assert int(answers[3].headers["ratelimit-reset"]) >= 1
    throttled = answers[5]
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert throttled.headers["ratelimit-remaining"] == "0"
    error = throttled.json()["error"]
    assert error["code"] == "activityLimitReached"
    assert error["innerError"]["code"] == "throttledRequest"
    assert emulator.stats()["throttled"] >= 1


@pytest.mark.slow
def test_throttling_window_resets(emulator: EmulatorServer, graph: httpx.Client) -> None:
    emulator.set_faults(ru_per_minute=4, ru_window_s=1)
    codes = [graph.get("/users").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    time.sleep(1.1)
    assert graph.get("/users").status_code == 200


def test_injected_errors(emulator: EmulatorServer, graph: httpx.Client) -> None:
    emulator.set_faults(error_rate=1.0)
    seen: dict[int, httpx.Response] = {}
    for _ in range(30):
        r = graph.get("/users")
        seen.setdefault(r.status_code, r)
    assert set(seen) == {500, 503}
    assert seen[503].headers["retry-after"] == "1"
    assert seen[503].json()["error"]["code"] == "serviceNotAvailable"
    assert seen[500].json()["error"]["code"] == "generalException"
    assert emulator.stats()["injected_5xx"] >= 30


def test_seed_replays_the_random_faults(
    emulator: EmulatorServer, graph: httpx.Client, http_client: Callable[..., httpx.Client]
) -> None:
    def statuses() -> list[int]:
        return [graph.get("/users").status_code for _ in range(24)]

    emulator.set_faults(error_rate=0.5, seed=7)
    first = statuses()
    assert 200 in first and (500 in first or 503 in first), first
    emulator.set_faults(seed=7)  # the same seed again: the sequence starts over
    assert statuses() == first
    emulator.set_faults(seed=8)
    assert statuses() != first

    admin = http_client(emulator)
    url = f"{emulator.base_url}/_emulator/faults"
    r = admin.put(url, json={"seed": 7}, headers=_admin(emulator))
    assert (r.status_code, r.json()["seed"], r.json()["error_rate"]) == (200, 7, 0.5)
    assert statuses() == first
    for bad in (1.5, -1, "7"):
        assert admin.put(url, json={"seed": bad}, headers=_admin(emulator)).status_code == 400
    # A reset brings back the seed the emulator started with, its sequence from the start.
    start = admin.post(f"{url}/reset", headers=_admin(emulator)).json()["seed"]
    emulator.set_faults(error_rate=0.5)
    again = statuses()
    emulator.set_faults(seed=start)
    assert statuses() == again


@pytest.mark.parametrize("http2", [False, True])
def test_dropped_connection_is_a_transport_error(
    emulator: EmulatorServer,
    http_client: Callable[..., httpx.Client],
    app_token: Callable[..., str],
    http2: bool,
) -> None:
    client = http_client(emulator, http2=http2, timeout=5)
    headers = {"Authorization": f"Bearer {app_token(emulator)}"}
    emulator.set_faults(drop_rate=1.0)
    start = time.monotonic()
    with pytest.raises(httpx.TransportError):
        client.get(f"{emulator.info['graph_url']}/users", headers=headers)
    assert time.monotonic() - start < 2  # dropped at once, not a timeout
    emulator.set_faults(drop_rate=0.0)
    assert client.get(f"{emulator.info['graph_url']}/users", headers=headers).status_code == 200
    assert emulator.stats()["dropped"] >= 1


@pytest.mark.slow
def test_bandwidth_cap(emulator: EmulatorServer, graph: httpx.Client) -> None:
    drive_id = next(u["drive_id"] for u in emulator.info["users"] if u["drive_id"])
    body = b"x" * 150_000
    url = f"/drives/{drive_id}/root:/bandwidth.bin:/content"
    start = time.monotonic()
    assert graph.put(url, content=body).status_code in (200, 201)
    unlimited = time.monotonic() - start
    emulator.set_faults(bandwidth_bps=100_000)
    start = time.monotonic()
    assert graph.put(url, content=body).status_code in (200, 201)
    capped = time.monotonic() - start
    assert capped >= 1.3, (unlimited, capped)
    assert unlimited < 1.0


def test_batch_inner_requests_skip_latency_but_are_throttled(
    emulator: EmulatorServer, graph: httpx.Client
) -> None:
    requests = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(5)]
    graph.post("/$batch", json={"requests": requests[:1]})  # warm the connection
    emulator.set_faults(latency_ms=300)
    start = time.monotonic()
    r = graph.post("/$batch", json={"requests": requests})
    elapsed = time.monotonic() - start
    assert r.status_code == 200
    assert 0.3 <= elapsed < 0.9  # the outer request waits, its five inner ones do not
    emulator.set_faults(latency_ms=0, ru_per_minute=6)
    statuses = {
        x["id"]: x["status"]
        for x in graph.post("/$batch", json={"requests": requests}).json()["responses"]
    }
    assert sorted(statuses.values()) == [200, 200, 200, 429, 429]
    assert emulator.stats()["batch_inner"] >= 10
