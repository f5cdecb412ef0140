"""Identity: MSAL's real flows against the emulator, and Graph's refusal of bad tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import msal
import pytest

from conftest import close_msal, confidential_app, msal_http_session
from sharelift.emulator.server import EmulatorServer


def _public_app(info: dict[str, Any]) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        info["client_id"],
        authority=info["authority"],
        http_client=msal_http_session(info),
        instance_discovery=False,
    )


def test_openid_configuration_and_jwks(
    emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> None:
    info = emulator.info
    client = http_client(emulator)
    for tenant in (info["tenant_id"], "organizations", f"{info['tenant']}.onmicrosoft.com"):
        r = client.get(f"{info['base_url']}/{tenant}/v2.0/.well-known/openid-configuration")
        assert r.status_code == 200
        config = r.json()
        assert config["issuer"] == f"{info['authority']}/v2.0"
        assert config["token_endpoint"] == f"{info['authority']}/oauth2/v2.0/token"
        assert config["device_authorization_endpoint"].endswith("/oauth2/v2.0/devicecode")
    keys = client.get(config["jwks_uri"]).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["kid"]
    r = client.get(f"{info['base_url']}/nosuchtenant/v2.0/.well-known/openid-configuration")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_tenant"
    assert r.json()["error_codes"] == [90002]


def test_client_secret_token_is_a_signed_graph_token(emulator: EmulatorServer) -> None:
    info = emulator.info
    app = confidential_app(info)
    try:
        result = app.acquire_token_for_client([info["graph_scope"]])
    finally:
        close_msal(app)
    assert result["token_type"] == "Bearer"
    token = result["access_token"]
    keys = jwt.PyJWKSet(emulator.identity.tokens.jwks()["keys"])
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    key = next(k for k in keys.keys if k.key_id == header["kid"])
    claims = jwt.decode(
        token, key.key, algorithms=["RS256"], audience="https://graph.microsoft.com"
    )
    assert claims["iss"] == f"{info['authority']}/v2.0"
    assert claims["tid"] == info["tenant_id"]
    assert claims["appid"] == claims["azp"] == info["client_id"]
    assert "Files.ReadWrite.All" in claims["roles"]
    assert claims["exp"] > time.time() + 3000


def test_client_certificate_credential(emulator: EmulatorServer, graph: httpx.Client) -> None:
    info = emulator.info
    key = Path(info["certificate"]["key_file"]).read_text()
    for credential in (
        {"private_key": key, "thumbprint": info["certificate"]["thumbprint"]},  # RS256 + x5t
        {  # PS256 + x5t#S256
            "private_key": key,
            "public_certificate": Path(info["certificate"]["cert_file"]).read_text(),
        },
    ):
        app = confidential_app(info, credential)
        try:
            result = app.acquire_token_for_client([info["graph_scope"]])
        finally:
            close_msal(app)
        assert "access_token" in result, result.get("error_description")
        r = graph.get("/me", headers={"Authorization": f"Bearer {result['access_token']}"})
        assert r.status_code != 401


def test_wrong_secret_and_wrong_certificate_are_refused(emulator: EmulatorServer) -> None:
    info = emulator.info
    app = confidential_app(info, "not-the-secret")
    try:
        result = app.acquire_token_for_client([info["graph_scope"]])
    finally:
        close_msal(app)
    assert result["error"] == "invalid_client"
    assert 7000215 in result["error_codes"]
    assert "AADSTS7000215" in result["error_description"]

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    # The registered thumbprint with the wrong key: the signature check must fail.
    app = confidential_app(
        info, {"private_key": pem, "thumbprint": info["certificate"]["thumbprint"]}
    )
    try:
        result = app.acquire_token_for_client([info["graph_scope"]])
    finally:
        close_msal(app)
    assert result["error"] == "invalid_client"
    assert 700027 in result["error_codes"]


def test_client_credentials_needs_dot_default(
    emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> None:
    info = emulator.info
    r = http_client(emulator).post(
        f"{info['authority']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "scope": "https://graph.microsoft.com/Files.Read.All",
        },
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"
    r = http_client(emulator).post(
        f"{info['authority']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "00000000-0000-0000-0000-000000000001",
            "client_secret": info["client_secret"],
            "scope": info["graph_scope"],
        },
    )
    assert r.json()["error"] == "unauthorized_client"


def _run_device_flow(
    app: msal.PublicClientApplication, scopes: list[str]
) -> tuple[dict[str, Any], threading.Thread, dict[str, Any]]:
    flow = app.initiate_device_flow(scopes=scopes)
    assert "user_code" in flow, flow
    box: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: box.update(result=app.acquire_token_by_device_flow(flow)), daemon=True
    )
    thread.start()
    return flow, thread, box


@pytest.mark.slow
def test_device_code_flow_then_silent_refresh(
    emulator_factory: Callable[..., EmulatorServer], http_client: Callable[..., httpx.Client]
) -> None:
    server = emulator_factory(token_lifetime_s=2)
    info = server.info
    app = _public_app(info)
    try:
        flow, thread, box = _run_device_flow(
            app, ["https://graph.microsoft.com/Files.ReadWrite.All"]
        )
        assert flow["verification_uri"].startswith(info["base_url"])
        time.sleep(1.2)  # at least one poll answered authorization_pending
        r = http_client(server).post(
            f"{info['base_url']}/_emulator/device/approve",
            json={"user_code": flow["user_code"], "upn": "megan@contoso.com"},
            headers={"X-Emulator-Key": info["admin_key"]},
        )
        assert r.status_code == 204
        thread.join(15)
        result = box["result"]
        assert "access_token" in result, result
        assert "refresh_token" in result
        assert result["id_token_claims"]["preferred_username"] == "megan@contoso.com"
        assert result["id_token_claims"]["aud"] == info["client_id"]
        claims = jwt.decode(result["access_token"], options={"verify_signature": False})
        assert claims["upn"] == "megan@contoso.com" and "scp" in claims

        me = http_client(server).get(
            f"{info['graph_url']}/me/drive",
            headers={"Authorization": f"Bearer {result['access_token']}"},
        )
        assert me.status_code == 200

        accounts = app.get_accounts()
        assert [a["username"] for a in accounts] == ["megan@contoso.com"]
        time.sleep(2.5)  # the access token expired; MSAL must use the refresh token
        silent = app.acquire_token_silent(
            ["https://graph.microsoft.com/Files.ReadWrite.All"], account=accounts[0]
        )
        assert silent is not None and "access_token" in silent, silent
        assert silent["access_token"] != result["access_token"]
        assert silent.get("token_source") == "identity_provider"
    finally:
        close_msal(app)


@pytest.mark.slow
def test_device_code_declined_and_expired(
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    server = emulator_factory(device_code_lifetime_s=1.5)
    app = _public_app(server.info)
    try:
        flow, thread, box = _run_device_flow(app, ["User.Read"])
        server.decline_device_code(flow["user_code"])
        thread.join(10)
        assert box["result"]["error"] == "authorization_declined"

        flow, thread, box = _run_device_flow(app, ["User.Read"])
        thread.join(10)  # MSAL stops polling when the flow expires or the server says so
        assert "access_token" not in box["result"]
        time.sleep(0.6)
        with pytest.raises(KeyError):  # an expired code can no longer be approved
            server.approve_device_code(flow["user_code"], "megan@contoso.com")
    finally:
        close_msal(app)


@pytest.mark.slow
def test_expired_device_code_answers_expired_token(
    emulator_factory: Callable[..., EmulatorServer], http_client: Callable[..., httpx.Client]
) -> None:
    server = emulator_factory(device_code_lifetime_s=0.5)
    info = server.info
    client = http_client(server)
    start = client.post(
        f"{info['authority']}/oauth2/v2.0/devicecode",
        data={"client_id": info["client_id"], "scope": "User.Read offline_access"},
    ).json()
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": info["client_id"],
        "device_code": start["device_code"],
    }
    r = client.post(f"{info['authority']}/oauth2/v2.0/token", data=poll)
    assert r.json()["error"] == "authorization_pending"
    time.sleep(0.7)
    r = client.post(f"{info['authority']}/oauth2/v2.0/token", data=poll)
    assert r.status_code == 400
    assert r.json()["error"] == "expired_token"


@pytest.mark.parametrize(
    "case", ["missing", "expired", "wrong_tenant", "wrong_audience", "bad_sig"]
)
def test_graph_refuses_bad_tokens(
    emulator: EmulatorServer, http_client: Callable[..., httpx.Client], case: str
) -> None:
    identity = emulator.identity
    headers: dict[str, str] = {}
    if case == "expired":
        token = identity.issue_access_token(audience="https://graph.microsoft.com", lifetime_s=-10)
    elif case == "wrong_tenant":
        token = identity.issue_access_token(
            audience="https://graph.microsoft.com", tenant_id="11111111-2222-3333-4444-555555555555"
        )
    elif case == "wrong_audience":
        token = identity.issue_access_token(audience=emulator.info["sharepoint_admin_resource"])
    elif case == "bad_sig":
        good = identity.issue_access_token(audience="https://graph.microsoft.com")
        head, payload, sig = good.split(".")
        token = f"{head}.{payload}.{sig[:-4]}AAAA"
    if case != "missing":
        headers["Authorization"] = f"Bearer {token}"
    r = http_client(emulator).get(f"{emulator.info['graph_url']}/users", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer ")
    error = r.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["innerError"]["request-id"]
    if case == "expired":
        assert "expired" in error["message"]


def test_device_login_page_and_form_post(
    emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> None:
    info = emulator.info
    client = http_client(emulator)
    start = client.post(
        f"{info['authority']}/oauth2/v2.0/devicecode",
        data={"client_id": info["client_id"], "scope": "User.Read offline_access openid"},
    ).json()
    assert "sign in" in client.get(start["verification_uri"]).text.lower()
    page = client.post(
        start["verification_uri"], data={"user_code": start["user_code"], "upn": "alex@contoso.com"}
    )
    assert "Signed in" in page.text
    r = client.post(
        f"{info['authority']}/oauth2/v2.0/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": info["client_id"],
            "device_code": start["device_code"],
        },
    )
    body = r.json()
    assert r.status_code == 200 and body["refresh_token"] and body["id_token"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["upn"] == "alex@contoso.com"
    again = client.post(
        f"{info['authority']}/oauth2/v2.0/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": info["client_id"],
            "device_code": start["device_code"],
        },
    )
    assert again.json()["error"] == "bad_verification_code"  # a device code is redeemed once
    refreshed = client.post(
        f"{info['authority']}/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "client_id": info["client_id"],
            "refresh_token": body["refresh_token"],
            "scope": "User.Read",
        },
    ).json()
    assert refreshed["access_token"] and refreshed["refresh_token"]
    unsupported = client.post(
        f"{info['authority']}/oauth2/v2.0/token",
        data={"grant_type": "password", "client_id": info["client_id"]},
    )
    assert unsupported.json()["error"] == "unsupported_grant_type"


def test_user_token_helper_reaches_me(
    emulator: EmulatorServer,
    http_client: Callable[..., httpx.Client],
    user_token: Callable[..., str],
) -> None:
    r = http_client(emulator).get(
        f"{emulator.info['graph_url']}/me/drive",
        headers={"Authorization": f"Bearer {user_token(emulator, 'adele@contoso.com')}"},
    )
    assert r.status_code == 200
    assert r.json()["owner"]["user"]["email"] == "adele@contoso.com"
