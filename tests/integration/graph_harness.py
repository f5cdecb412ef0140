"""A minimal app around the emulator's Graph drive routes, for their integration tests.

It stands in for the platform's assembly (auth middleware, app.state): a tiny middleware sets
`request.state.principal` (a delegated user by default, or what a test chooses) and honours the
$batch extension the way the real auth middleware does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from sharelift.emulator import graph
from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.store import Store

GRAPH = "https://graph.microsoft.com"


@dataclass
class Principal:
    kind: str
    upn: str | None
    app_id: str
    tenant_id: str
    display_name: str


USER = Principal("user", "megan@contoso.com", "app-1", "tenant-1", "Megan Bowen")
APP = Principal("app", None, "app-1", "tenant-1", "sharelift tests")


class FakeAuth:
    def __init__(self, app: ASGIApp, holder: dict[str, Principal]) -> None:
        self.app = app
        self.holder = holder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1.0/"):
            batch = (scope.get("extensions") or {}).get("sharelift.batch")
            principal = batch["principal"] if batch else self.holder["principal"]
            scope = {**scope, "state": {**(scope.get("state") or {}), "principal": principal}}
        await self.app(scope, receive, send)


class SyncClient:
    """Blocking calls into an httpx.AsyncClient over the ASGI app, run in a portal thread."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, client: httpx.AsyncClient) -> None:
        self.portal = portal
        self.client = client

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            return await self.client.request(method, url, **kw)

        return self.portal.call(call)

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)


@dataclass
class Harness:
    settings: EmulatorSettings
    store: Store
    client: SyncClient
    holder: dict[str, Principal]
    app: Starlette

    def as_principal(self, principal: Principal) -> None:
        self.holder["principal"] = principal

    def drive_id(self, upn: str = "megan@contoso.com") -> str:
        user = self.store.user(upn)
        assert user is not None and user.drive_id is not None
        return user.drive_id

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(_url(path), **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(_url(path), **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.put(_url(path), **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.patch(_url(path), **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.delete(_url(path), **kw)

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


def _url(path: str) -> str:
    if path.startswith("http"):
        return path
    if path.startswith("/_"):
        return GRAPH + path
    return GRAPH + "/v1.0" + path


def build_app(settings: EmulatorSettings, store: Store, holder: dict[str, Principal]) -> Starlette:
    app = Starlette(
        routes=graph.routes(store),
        middleware=[Middleware(FakeAuth, holder=holder)],
    )
    app.state.settings = settings
    app.state.store = store
    return app


@contextmanager
def harness(data_dir: Path, **settings_kw: Any) -> Iterator[Harness]:
    settings = EmulatorSettings(data_dir=data_dir, **settings_kw)
    store = Store.open(settings)
    store.seed()
    holder = {"principal": USER}
    app = build_app(settings, store, holder)
    try:
        with anyio.from_thread.start_blocking_portal() as portal:
            transport = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=transport, base_url=GRAPH)
            try:
                yield Harness(settings, store, SyncClient(portal, client), holder, app)
            finally:
                portal.call(client.aclose)
    finally:
        store.close()
