"""The HTTPS server: emulator.json, certificates, persistence across restarts, users files."""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from conftest import close_msal, confidential_app
from sharelift.clouds import Cloud, EmulatorInfo
from sharelift.emulator.server import EmulatorServer
from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.users_file import load_users
from sharelift.errors import EmulatorError

SECRET_FILES = (
    "ca-key.pem",
    "server-key.pem",
    "app-key.pem",
    "signing-key.pem",
    "identity.json",
    "emulator.json",
)


def test_emulator_json_and_files(emulator: EmulatorServer) -> None:
    data = emulator.data_dir
    info = json.loads((data / "emulator.json").read_text())
    assert info == emulator.info
    assert info["base_url"] == f"https://127.0.0.1:{emulator.port}"
    assert info["graph_url"] == info["base_url"] + "/v1.0"
    assert info["authority"] == f"{info['base_url']}/{info['tenant_id']}"
    assert info["sharepoint"] == {
        "root": "contoso.sharepoint.com",
        "my": "contoso-my.sharepoint.com",
        "admin": "contoso-admin.sharepoint.com",
    }
    assert info["sharepoint_admin_resource"] == "https://contoso-admin.sharepoint.com"
    assert len(info["certificate"]["thumbprint"]) == 40
    upns = {u["upn"]: u for u in info["users"]}
    assert upns["megan@contoso.com"]["drive_id"]
    assert upns["diego@contoso.com"]["licensed"] is False
    assert info["drives"]
    for name in SECRET_FILES:
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name

    cert = x509.load_pem_x509_certificate((data / "server.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName))
    assert {"localhost", "graph.microsoft.com", "login.microsoftonline.com"} <= names
    assert {"contoso-my.sharepoint.com", "contoso-admin.sharepoint.com"} <= names
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}

    parsed = EmulatorInfo.load(data)
    assert parsed.tenant_id == info["tenant_id"] and parsed.client_secret not in repr(parsed)
    cloud = Cloud.from_emulator(data)
    assert cloud.graph_url == info["graph_url"] and not cloud.instance_discovery
    assert cloud.ca_file == info["ca_file"]


def test_http2_and_http11(
    emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> None:
    url = f"{emulator.info['authority']}/v2.0/.well-known/openid-configuration"
    assert http_client(emulator, http2=True).get(url).http_version == "HTTP/2"
    assert http_client(emulator, http2=False).get(url).http_version == "HTTP/1.1"


def test_state_survives_a_restart(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    data = tmp_path / "persist"
    first = emulator_factory(data_dir=data)
    before = dict(first.info)
    assert f"emulator-{first.port}" in {t.name for t in threading.enumerate()}
    ca = (data / "ca.pem").read_bytes()
    start = time.monotonic()
    first.stop()
    assert time.monotonic() - start < 2.5
    assert f"emulator-{first.port}" not in {t.name for t in threading.enumerate()}

    second = emulator_factory(data_dir=data)
    after = second.info
    assert (data / "ca.pem").read_bytes() == ca
    for key in ("tenant_id", "client_id", "client_secret", "admin_key", "certificate"):
        assert after[key] == before[key], key
    assert {u["id"] for u in after["users"]} == {u["id"] for u in before["users"]}
    app = confidential_app(after)  # the old secret and the same CA still work
    try:
        assert "access_token" in app.acquire_token_for_client([after["graph_scope"]])
    finally:
        close_msal(app)


def test_users_file_csv_and_json(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorServer]
) -> None:
    csv_file = tmp_path / "users.csv"
    csv_file.write_text(
        "upn,display_name,licensed,onedrive\n"
        "ann@fabrikam.com,Ann,true,true\n"
        "bob@fabrikam.com,Bob,true,false\n"
        "cy@fabrikam.com,Cy,false,false\n"
    )
    specs = load_users(csv_file)
    assert [(s.upn, s.licensed, s.onedrive) for s in specs] == [
        ("ann@fabrikam.com", True, True),
        ("bob@fabrikam.com", True, False),
        ("cy@fabrikam.com", False, False),
    ]
    json_file = tmp_path / "users.json"
    json_file.write_text(json.dumps([{"upn": "dee@fabrikam.com", "onedrive": False}]))
    assert load_users(json_file)[0].display_name == "dee"

    server = emulator_factory(users_file=csv_file, tenant="fabrikam")
    users = {u["upn"]: u for u in server.info["users"]}
    assert set(users) == {"ann@fabrikam.com", "bob@fabrikam.com", "cy@fabrikam.com"}
    assert users["ann@fabrikam.com"]["drive_id"] and not users["bob@fabrikam.com"]["drive_id"]
    assert server.info["sharepoint"]["admin"] == "fabrikam-admin.sharepoint.com"

    bad = tmp_path / "bad.csv"
    bad.write_text("upn,licensed\nx@y,maybe\n")
    with pytest.raises(EmulatorError, match=r"bad\.csv: row 2"):
        load_users(bad)
    with pytest.raises(EmulatorError, match=r"missing\.csv"):
        load_users(tmp_path / "missing.csv")


def test_port_in_use_is_a_clear_error(emulator: EmulatorServer, tmp_path: Path) -> None:
    server = EmulatorServer(EmulatorSettings(data_dir=tmp_path / "x", port=emulator.port))
    with pytest.raises(EmulatorError, match="cannot listen"):
        server.start()
