"""Shared fixtures: a running emulator (real sockets, TLS, HTTP/2) and clients that trust its CA.

    emulator            session-scoped EmulatorServer (tmp data dir, 1 s device-code interval)
    emulator_factory    function-scoped: emulator_factory(**settings) -> a fresh EmulatorServer,
                        stopped at the end of the test; emulator_factory(data_dir=d) reuses d
    app_token           app_token(server, scope=None) -> an app-only access token via real MSAL
                        client credentials (secret); scope defaults to Graph's .default
    user_token          user_token(server, upn="megan@contoso.com") -> a delegated Graph token
    http_client         http_client(server, **kw) -> httpx.Client trusting the CA (HTTP/2 on),
                        reaching the tenant's SharePoint hosts (upload and download URLs)
                        through emulator.json's connect map; closed at the end of the test
    async_http_client   the same as an httpx.AsyncClient (close it yourself, or use `async with`)
    graph               an httpx.Client on the session emulator's graph_url with an app token
                        (sent to Graph only: upload and download URLs get none)
    postgres_server     session-scoped PostgreSQL (tests/support/servers.py); postgres_url: a
                        URL whose tables go to a new, empty schema, for one test
    state_location      where a new state store goes, once per backend (SQLite, PostgreSQL)
    redis_server        session-scoped redis-server on a free port; broker: its URL, emptied
                        for one test
    cluster_state       a PostgreSQL state store (schema made) for one test's cluster

Faults changed on the session emulator are reset after every test. Async tests
(`pytest.mark.anyio`) run on asyncio, sharelift's event loop, whatever else is installed (the
browser tests' selenium brings trio).
"""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msal
import pytest
import requests

from sharelift.emulator.server import EmulatorServer
from sharelift.emulator.settings import EmulatorSettings
from sharelift.graph.connect import connect_mounts, connect_mounts_sync
from support.emulator_http import graph_http
from support.servers import PostgresServer, RedisServer, postgres_bin


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def ssl_context_for(info: dict[str, Any]) -> ssl.SSLContext:
    """A client TLS context that trusts the emulator's CA (and nothing else)."""
    return ssl.create_default_context(cafile=info["ca_file"])


def msal_http_session(info: dict[str, Any]) -> requests.Session:
    """A requests session for MSAL that trusts the emulator's CA.

    MSAL's own `verify=` lands on a requests.Session, where REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
    from the environment silently win over it (psf/requests#3829); `trust_env = False` stops that.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = info["ca_file"]
    return session


def confidential_app(
    info: dict[str, Any], credential: Any = None
) -> msal.ConfidentialClientApplication:
    """MSAL's real confidential client against the emulator (secret unless `credential`)."""
    return msal.ConfidentialClientApplication(
        info["client_id"],
        authority=info["authority"],
        client_credential=credential if credential is not None else info["client_secret"],
        http_client=msal_http_session(info),
        instance_discovery=False,  # 127.0.0.1 is not a Microsoft host
    )


def close_msal(app: msal.ClientApplication) -> None:
    """Close the HTTP session MSAL holds (ours), so no socket outlives the test."""
    inner = getattr(app.http_client, "http_client", app.http_client)
    close = getattr(inner, "close", None)
    if close is not None:
        close()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    settings = EmulatorSettings(
        data_dir=tmp_path_factory.mktemp("emulator"), device_code_interval_s=1
    )
    with EmulatorServer(settings) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_session_emulator_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "emulator" in request.fixturenames:
        server: EmulatorServer = request.getfixturevalue("emulator")
        server.reset_faults()


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., EmulatorServer]]:
    started: list[EmulatorServer] = []

    def make(**overrides: Any) -> EmulatorServer:
        overrides.setdefault("data_dir", tmp_path / f"emulator{len(started)}")
        overrides.setdefault("device_code_interval_s", 1)
        server = EmulatorServer(EmulatorSettings(**overrides))
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


def certificate_credential(info: dict[str, Any]) -> dict[str, str]:
    """MSAL's certificate credential for the emulator's registered app."""
    cert = info["certificate"]
    return {"private_key": Path(cert["key_file"]).read_text(), "thumbprint": cert["thumbprint"]}


@pytest.fixture
def app_token() -> Callable[..., str]:
    """app_token(server, scope=None, certificate=False): an app-only token, got with the app's
    secret or (as SharePoint REST requires) its certificate."""

    def get(server: EmulatorServer, scope: str | None = None, certificate: bool = False) -> str:
        credential = certificate_credential(server.info) if certificate else None
        app = confidential_app(server.info, credential)
        try:
            result = app.acquire_token_for_client([scope or server.info["graph_scope"]])
        finally:
            close_msal(app)
        assert "access_token" in result, result.get("error_description")
        return str(result["access_token"])

    return get


@pytest.fixture
def user_token() -> Callable[..., str]:
    """user_token(server, upn="megan@contoso.com") -> a delegated Graph token for that user,
    signed by the emulator itself (what the device-code flow would give, without the wait)."""

    def get(server: EmulatorServer, upn: str = "megan@contoso.com") -> str:
        user = server.identity.find_user(upn)
        assert user is not None, f"no user {upn} in the emulator"
        return server.identity.issue_access_token(audience="https://graph.microsoft.com", user=user)

    return get


@pytest.fixture
def http_client() -> Iterator[Callable[..., httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(server: EmulatorServer, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("http2", True)
        kwargs.setdefault("timeout", 30)
        context = ssl_context_for(server.info)
        kwargs.setdefault(
            "mounts",
            connect_mounts_sync(server.info["connect"], verify=context, http2=kwargs["http2"]),
        )
        client = httpx.Client(verify=context, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def async_http_client() -> Callable[..., httpx.AsyncClient]:
    def make(server: EmulatorServer, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("http2", True)
        kwargs.setdefault("timeout", 30)
        context = ssl_context_for(server.info)
        kwargs.setdefault(
            "mounts", connect_mounts(server.info["connect"], verify=context, http2=kwargs["http2"])
        )
        return httpx.AsyncClient(verify=context, **kwargs)

    return make


@pytest.fixture(scope="session")
def _session_graph_token(emulator: EmulatorServer) -> str:
    app = confidential_app(emulator.info)
    try:
        result = app.acquire_token_for_client([emulator.info["graph_scope"]])
    finally:
        close_msal(app)
    return str(result["access_token"])


@pytest.fixture
def graph(emulator: EmulatorServer, _session_graph_token: str) -> Iterator[httpx.Client]:
    with graph_http(emulator.info, _session_graph_token, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def migration_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """An emulator whose Migration API runs from the start (Azurite included), for the session.

    Tests that change its faults reset them (`server.reset_faults()`) when done.
    """
    settings = EmulatorSettings(
        data_dir=tmp_path_factory.mktemp("migration-emulator"), migration_api="start"
    )
    with EmulatorServer(settings) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_migration_emulator_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "migration_emulator" in request.fixturenames:
        server: EmulatorServer = request.getfixturevalue("migration_emulator")
        server.reset_faults()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (initdb + pg_ctl in a temporary folder)."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A URL of the session's PostgreSQL server whose tables go to a new, empty schema."""
    return postgres_server.database()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new state store goes, once per backend: a SQLite file, then a PostgreSQL
    schema of its own (the state store's tests run against both)."""
    if request.param == "sqlite":
        return str(tmp_path / "state" / "sharelift.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server for the whole session, in a temporary folder."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def broker(redis_server: RedisServer) -> Iterator[str]:
    """The session's redis-server, emptied, as a broker URL for one test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def cluster_state(postgres_server: PostgresServer) -> str:
    """A PostgreSQL state store of its own for one test's cluster, its schema made before
    any worker reads it."""
    from sharelift.state import open_state

    url = postgres_server.database()
    open_state(url).close()
    return url
