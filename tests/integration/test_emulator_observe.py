"""The request log and counters."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from sharelift.emulator.server import EmulatorServer


def test_counters_and_request_log(
    emulator_factory: Callable[..., EmulatorServer],
    http_client: Callable[..., httpx.Client],
    app_token: Callable[..., str],
) -> None:
    server = emulator_factory()
    info = server.info
    token = app_token(server)
    client = http_client(server)
    server.reset_stats()
    headers = {"Authorization": f"Bearer {token}"}
    drive_id = next(u["drive_id"] for u in info["users"] if u["drive_id"])
    assert client.get(f"{info['graph_url']}/users", headers=headers).status_code == 200
    put = client.put(
        f"{info['graph_url']}/drives/{drive_id}/root:/log.txt:/content",
        content=b"hello",
        headers=headers,
    )
    assert put.status_code in (200, 201)
    secret_query = f"{info['graph_url']}/users?$top=1&access_token={token}&code=s3cret"
    client.get(secret_query, headers=headers)
    assert client.get(f"{info['graph_url']}/users").status_code == 401

    stats = server.stats()
    assert stats["requests"] == 4
    assert stats["by_kind"] == {"list": 3, "upload": 1}
    assert stats["by_status"]["401"] == 1
    assert stats["bytes_in"] >= 5
    assert stats["bytes_out"] > 0
    assert stats["resource_units"] == 2 * 4

    over_http = client.get(f"{info['base_url']}/_emulator/stats", headers=server.admin_headers())
    assert over_http.json()["requests"] == 4  # admin calls are not counted

    lines = (server.data_dir / "requests.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    text = "\n".join(lines)
    assert token not in text and "s3cret" not in text and info["client_secret"] not in text
    upload = next(r for r in records if r["kind"] == "upload")
    assert upload["method"] == "PUT" and upload["bytes_in"] == 5 and upload["ru"] == 2
    assert {"time", "path", "status", "duration_ms", "batch", "bytes_out"} <= set(upload)
    redacted = next(r for r in records if "access_token" in r["path"])
    assert "$top=1" in redacted["path"] and "access_token=***" in redacted["path"]

    r = client.post(f"{info['base_url']}/_emulator/stats/reset", headers=server.admin_headers())
    assert r.status_code == 204
    assert server.stats()["requests"] == 0
