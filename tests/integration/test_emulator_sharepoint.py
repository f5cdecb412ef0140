"""OneDrive pre-provisioning through SharePoint REST on the admin host."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import jwt
import pytest

from sharelift.emulator.server import EmulatorServer

ENQUEUE = "/_api/SP.UserProfiles.ProfileLoader.GetProfileLoader/CreatePersonalSiteEnqueueBulk"


@pytest.mark.slow
def test_provisioning(
    emulator_factory: Callable[..., EmulatorServer],
    http_client: Callable[..., httpx.Client],
    app_token: Callable[..., str],
) -> None:
    server = emulator_factory(provisioning_delay_s=0.6)
    info = server.info
    client = http_client(server)
    admin_token = app_token(server, info["sharepoint_admin_scope"], certificate=True)
    admin = {"Authorization": f"Bearer {admin_token}"}
    graph = {"Authorization": f"Bearer {app_token(server)}"}
    url = f"{info['sharepoint_admin_url']}{ENQUEUE}"
    unknown = [f"nobody{i}@contoso.com" for i in range(198)]

    too_many = client.post(url, json={"emailIDs": [*unknown, "a@b", "c@d", "e@f"]}, headers=admin)
    assert too_many.status_code == 400
    error = too_many.json()["odata.error"]
    assert error["message"]["lang"] == "en-US" and "200" in error["message"]["value"]
    verbose = client.post(
        url,
        json={"emailIDs": ["x@y"] * 201},
        headers={**admin, "Accept": "application/json;odata=verbose"},
    )
    assert "error" in verbose.json()
    ok_verbose = client.post(
        url,
        json={"emailIDs": []},
        headers={**admin, "Accept": "application/json;odata=verbose"},
    )
    assert ok_verbose.json() == {"d": {"CreatePersonalSiteEnqueueBulk": None}}

    batch = ["nestor@contoso.com", "diego@contoso.com", *unknown]
    assert len(batch) == 200
    r = client.post(url, json={"emailIDs": batch}, headers=admin)
    assert r.status_code == 200

    def drive_status(upn: str) -> int:
        return client.get(f"{info['graph_url']}/users/{upn}/drive", headers=graph).status_code

    assert drive_status("nestor@contoso.com") == 404  # not yet
    time.sleep(0.9)
    assert drive_status("nestor@contoso.com") == 200
    live = client.get(f"{info['base_url']}/_emulator/info", headers=server.admin_headers()).json()
    assert {u["upn"]: u for u in live["users"]}["nestor@contoso.com"]["drive_id"]
    assert drive_status("diego@contoso.com") == 404  # unlicensed: never


def test_provisioning_needs_an_admin_app_token(
    emulator: EmulatorServer,
    http_client: Callable[..., httpx.Client],
    app_token: Callable[..., str],
) -> None:
    info = emulator.info
    client = http_client(emulator)
    url = f"{info['sharepoint_admin_url']}{ENQUEUE}"
    body = {"emailIDs": ["megan@contoso.com"]}
    assert client.post(url, json=body).status_code == 401
    graph_token = app_token(emulator)  # wrong audience
    r = client.post(url, json=body, headers={"Authorization": f"Bearer {graph_token}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer ")
    user = emulator.identity.issue_access_token(
        audience=info["sharepoint_admin_resource"],
        user=emulator.identity.find_user("megan@contoso.com"),
    )
    r = client.post(url, json=body, headers={"Authorization": f"Bearer {user}"})
    assert r.status_code == 403


def test_sharepoint_refuses_app_only_tokens_got_with_a_secret(
    emulator_factory: Callable[..., EmulatorServer],
    http_client: Callable[..., httpx.Client],
    app_token: Callable[..., str],
) -> None:
    """security-apponly-azuread.md: SharePoint Online blocks app-only access by any means but a
    certificate; Graph accepts both (the `appidacr` claim tells them apart)."""
    server = emulator_factory()
    info = server.info
    client = http_client(server)
    url = f"{info['sharepoint_admin_url']}{ENQUEUE}"
    body = {"emailIDs": ["nestor@contoso.com"]}
    secret_token = app_token(server, info["sharepoint_admin_scope"])
    assert jwt.decode(secret_token, options={"verify_signature": False})["appidacr"] == "1"
    refused = client.post(url, json=body, headers={"Authorization": f"Bearer {secret_token}"})
    assert refused.status_code == 401
    assert refused.json() == {"error_description": "Unsupported app only token."}
    assert refused.headers["www-authenticate"].startswith("Bearer ")

    cert_token = app_token(server, info["sharepoint_admin_scope"], certificate=True)
    assert jwt.decode(cert_token, options={"verify_signature": False})["appidacr"] == "2"
    ok = client.post(url, json=body, headers={"Authorization": f"Bearer {cert_token}"})
    assert ok.status_code == 200, ok.text

    # Graph accepts a token got with the secret.
    graph = client.get(
        f"{info['graph_url']}/users",
        headers={"Authorization": f"Bearer {app_token(server)}"},
    )
    assert graph.status_code == 200


def test_a_tenant_may_accept_secret_tokens_for_sharepoint(
    emulator_factory: Callable[..., EmulatorServer],
    http_client: Callable[..., httpx.Client],
    app_token: Callable[..., str],
) -> None:
    server = emulator_factory(app_only_secret_for_sharepoint=True)
    info = server.info
    token = app_token(server, info["sharepoint_admin_scope"])
    r = http_client(server).post(
        f"{info['sharepoint_admin_url']}{ENQUEUE}",
        json={"emailIDs": ["nestor@contoso.com"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
