"""Helpers for the Graph drive tests: a real emulator over HTTPS (HTTP/2, its own CA), and per
test a fresh user with a fresh OneDrive, so tests sharing one server never see each other's items.

    emulator_server(data_dir)   an EmulatorServer on data_dir, to use in a `with` block
    harness(server, **knobs)    a Harness for one test; `knobs` are EmulatorSettings fields set
                                for the test's duration (simple_upload_limit, upload_session_…)

Harness.get/post/put/patch/delete take Graph paths ("/me/drive") and send the current
principal's bearer token (a delegated user token by default, `as_principal(APP)` for app-only).
`Harness.client` sends no Authorization header: it is for upload and download URLs (which name
the tenant's SharePoint hosts: it reaches them through emulator.json's connect map).
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sharelift.emulator.identity import GRAPH_RESOURCE, UserInfo
from sharelift.emulator.server import EmulatorServer
from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.store import Store, UserSpec
from sharelift.graph.connect import connect_mounts, connect_mounts_sync

USER = "user"
APP = "app"
_numbers = itertools.count(1)


def emulator_server(data_dir: Path, **settings: Any) -> EmulatorServer:
    return EmulatorServer(EmulatorSettings(data_dir=data_dir, **settings))


def tls(server: EmulatorServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.info["ca_file"])


@dataclass
class Harness:
    server: EmulatorServer
    upn: str
    display_name: str
    client: httpx.Client
    tokens: dict[str, str]
    principal: str = USER

    @property
    def store(self) -> Store:
        assert self.server.store is not None
        return self.server.store

    @property
    def graph_url(self) -> str:
        return str(self.server.info["graph_url"])

    def as_principal(self, principal: str) -> None:
        self.principal = principal

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[self.principal]}"}

    def drive_id(self, upn: str | None = None) -> str:
        user = self.store.tenant.user(upn or self.upn)
        assert user is not None and user.drive_id is not None
        return user.drive_id

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        url = path if path.startswith("https://") else self.graph_url + path
        headers = {**self.auth(), **kw.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def async_client(self) -> httpx.AsyncClient:
        """An HTTP/2 client with the current principal's token (close it yourself)."""
        context = tls(self.server)
        return httpx.AsyncClient(
            base_url=self.graph_url,
            verify=context,
            http2=True,
            headers=self.auth(),
            mounts=connect_mounts(self.server.info["connect"], verify=context, http2=True),
        )

    def mkdir(self, drive: str, parent: str, name: str) -> dict[str, Any]:
        r = self.post(f"/drives/{drive}/items/{parent}/children", json={"name": name, "folder": {}})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def upload(self, drive: str, path: str, data: bytes, **params: str) -> dict[str, Any]:
        r = self.put(f"/drives/{drive}/root:/{path}:/content", content=data, params=params)
        assert r.status_code in (200, 201), r.text
        body: dict[str, Any] = r.json()
        return body

    def new_user(self, *, onedrive: bool = True) -> str:
        """Another user of the tenant (with a OneDrive when `onedrive`); returns the UPN."""
        n = next(_numbers)
        upn = f"tester{n}@contoso.com"
        self.store.tenant.seed([UserSpec(upn, f"Tester {n}", onedrive=onedrive)])
        return upn


@contextmanager
def harness(server: EmulatorServer, **knobs: Any) -> Iterator[Harness]:
    settings = server.settings
    saved = {name: getattr(settings, name) for name in knobs}
    for name, value in knobs.items():
        setattr(settings, name, value)
    n = next(_numbers)
    upn, display_name = f"tester{n}@contoso.com", f"Tester {n}"
    assert server.store is not None
    server.store.tenant.seed([UserSpec(upn, display_name)])
    user = server.store.tenant.user(upn)
    assert user is not None
    identity = server.identity
    tokens = {
        USER: identity.issue_access_token(
            audience=GRAPH_RESOURCE, user=UserInfo(upn, user.id, display_name)
        ),
        APP: identity.issue_access_token(audience=GRAPH_RESOURCE),
    }
    context = tls(server)
    client = httpx.Client(
        verify=context,
        http2=True,
        timeout=30,
        mounts=connect_mounts_sync(server.info["connect"], verify=context, http2=True),
    )
    try:
        yield Harness(server, upn, display_name, client, tokens)
    finally:
        client.close()
        for name, value in saved.items():
            setattr(settings, name, value)
        server.reset_faults()
