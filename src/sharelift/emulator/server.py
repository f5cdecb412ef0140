"""Runs the emulator over HTTPS (Hypercorn; HTTP/2 and HTTP/1.1 by ALPN) and writes emulator.json.

    with EmulatorServer(EmulatorSettings(data_dir=tmp)) as server:
        server.info["graph_url"]          # https://127.0.0.1:PORT/v1.0
        server.set_faults(latency_ms=20)
        server.stats()

`start()` serves from a background thread with its own event loop; `serve_forever()` serves
until Ctrl-C (the CLI). The listening socket is bound before Hypercorn starts, so port 0 becomes
a known free port and clients may connect as soon as `start()` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import ssl
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from sharelift.emulator.app import ADMIN_KEY_HEADER, create_app, reset_faults
from sharelift.emulator.certs import write_private
from sharelift.emulator.faults import ConnectionDropper, DroppedConnection
from sharelift.emulator.identity import Identity
from sharelift.emulator.info import INFO_FILE, connection_info
from sharelift.emulator.migration.service import MigrationService
from sharelift.emulator.observe import RequestLog, Stats
from sharelift.emulator.settings import EmulatorSettings, Faults
from sharelift.emulator.sharepoint import Provisioner
from sharelift.emulator.store import DEFAULT_USERS, Store, UserSpec
from sharelift.emulator.users_file import load_users
from sharelift.errors import EmulatorError


class _DropFilter(logging.Filter):
    """Hides the tracebacks of connections dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):  # noqa: S104 - comparing, not binding
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host


_SSL_SHUTDOWN_S = 0.5


class _EmulatorLoop(asyncio.SelectorEventLoop):
    """The server thread's loop: TLS connections wait at most half a second for the peer's
    close_notify at shutdown (asyncio's default is 30 s, and Hypercorn does not set it), so an
    idle keep-alive client cannot hold `stop()` up."""

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_shutdown_timeout", _SSL_SHUTDOWN_S)
        return await super().create_server(*args, **kwargs)


class EmulatorServer:
    """One running emulator: store, app, certificates, HTTPS listener.

    Not restartable: after `stop()` make a new one (on the same data_dir to keep the state).
    """

    def __init__(
        self,
        settings: EmulatorSettings,
        *,
        graph_routes: list[BaseRoute] | None = None,
        users: Sequence[UserSpec] | None = None,
    ) -> None:
        self.settings = settings
        self._graph_routes = graph_routes
        self._users = users
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.store: Store | None = None
        self.app: Starlette | None = None
        self.port = 0
        self.info: dict[str, Any] = {}

    # -- life cycle --------------------------------------------------------------------------

    def _prepare(self) -> None:
        settings = self.settings
        settings.data_dir = Path(settings.data_dir)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        users: Sequence[UserSpec] = (
            self._users
            if self._users is not None
            else (load_users(settings.users_file) if settings.users_file else DEFAULT_USERS)
        )
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((settings.host, settings.port))
            sock.listen(512)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise EmulatorError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
            ) from exc
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        try:
            self.store = Store.open(settings)
            self.store.tenant.seed(users)
            self.app = create_app(settings, self.store, graph_routes=self._graph_routes)
        except BaseException:
            self._release()
            raise
        self.identity.base_url = f"https://{_url_host(settings.host)}:{self.port}"
        self.app.state.info_provider = self.build_info
        self._write_info()
        self.migration.on_started.append(self._write_info)
        if settings.migration_api == "start":
            try:
                self.migration.ensure_started()
            except BaseException:
                self._release()
                raise

    def _write_info(self) -> None:
        """(Re)write emulator.json; the Migration API's storage endpoints appear once it runs."""
        self.info = self.build_info()
        if self.app is not None:
            self.app.state.info = self.info
        write_private(self.settings.data_dir / INFO_FILE, json.dumps(self.info, indent=2).encode())

    def _config(self) -> Config:
        assert self._sock is not None
        certs = self.identity_certs()
        config = Config()
        # Hypercorn adopts the descriptor (socket.socket(fileno=...)) and closes it at shutdown.
        config.bind = [f"fd://{self._sock.detach()}"]
        self._sock = None
        config.certfile = str(certs[0])
        config.keyfile = str(certs[1])
        config.alpn_protocols = ["h2", "http/1.1"]
        config.accesslog = None
        error_log = logging.getLogger("sharelift.emulator.server")
        if not any(isinstance(f, _DropFilter) for f in error_log.filters):
            error_log.addFilter(_DropFilter())
        config.errorlog = error_log
        config.graceful_timeout = 0.5
        config.keep_alive_timeout = 30.0
        config.h2_max_concurrent_streams = 256
        # Hypercorn ends an HTTP/2 connection (GOAWAY) after 1,000 requests by default, which
        # fails a busy client's in-flight streams; Graph's front ends keep connections far longer.
        config.keep_alive_max_requests = 2**31
        config.h11_max_incomplete_size = 64 * 1024
        return config

    def identity_certs(self) -> tuple[Path, Path]:
        assert self.app is not None
        certs = self.app.state.certs
        return certs.server_cert, certs.server_key

    @staticmethod
    def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # A client that vanished, or that never answered TLS close_notify at shutdown, is the
        # client's business; anything else is reported as usual.
        exc = context.get("exception")
        if isinstance(exc, TimeoutError | ConnectionError | ssl.SSLError | DroppedConnection):
            return
        loop.default_exception_handler(context)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(self._loop_exception)
        self._shutdown = asyncio.Event()
        assert self.app is not None
        task = asyncio.ensure_future(
            serve(
                cast(Any, ConnectionDropper(self.app)),
                self._config(),
                shutdown_trigger=self._shutdown.wait,
                mode="asgi",
            )
        )
        await asyncio.sleep(0)
        self._ready.set()
        try:
            await task
        finally:
            self.provisioner.cancel()

    def _run_thread(self) -> None:
        try:
            with asyncio.Runner(loop_factory=_EmulatorLoop) as runner:
                runner.run(self._serve())
        except BaseException as exc:  # reported by start() / stop()
            self._error = exc
        finally:
            self._ready.set()

    def start(self) -> EmulatorServer:
        """Bind, prepare the data directory and serve in a background thread; returns self.

        Raises EmulatorError when the port or the data directory cannot be used.
        """
        if self._thread is not None:
            raise EmulatorError("this emulator server was already started")
        self._prepare()
        self._thread = threading.Thread(
            target=self._run_thread, name=f"emulator-{self.port}", daemon=True
        )
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            self.stop()
            raise EmulatorError(f"the emulator failed to start: {self._error}")
        return self

    def serve_forever(self) -> None:
        """Serve (starting first if needed) until KeyboardInterrupt; then stop cleanly."""
        if self._thread is None:
            self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving, close the store and the log. Idempotent; quick (about a second)."""
        thread, loop, shutdown = self._thread, self._loop, self._shutdown
        if thread is not None and thread.is_alive() and loop is not None and shutdown is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(shutdown.set)
            thread.join(10)
        self._thread = None
        self._release()

    def _release(self) -> None:
        if self.app is not None:
            self.migration.stop()
            self.request_log.close()
        if self.store is not None:
            self.store.close()
            self.store = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers for tests, benchmarks and the CLI ---------------------------------------------

    @property
    def identity(self) -> Identity:
        assert self.app is not None, "start() the server first"
        identity: Identity = self.app.state.identity
        return identity

    @property
    def request_log(self) -> RequestLog:
        assert self.app is not None
        log: RequestLog = self.app.state.request_log
        return log

    @property
    def provisioner(self) -> Provisioner:
        assert self.app is not None
        provisioner: Provisioner = self.app.state.provisioner
        return provisioner

    @property
    def migration(self) -> MigrationService:
        assert self.app is not None
        service: MigrationService = self.app.state.migration
        return service

    @property
    def base_url(self) -> str:
        return self.identity.base_url

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir)

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "ca.pem"

    def build_info(self) -> dict[str, Any]:
        """The emulator.json contents: URLs, credentials, users and drives (current state)."""
        assert self.app is not None and self.store is not None
        info = connection_info(self.settings, self.identity, self.app.state.certs, self.store)
        info["migration_api"] = self.migration.info()
        return info

    def admin_headers(self) -> dict[str, str]:
        return {ADMIN_KEY_HEADER: self.identity.registration.admin_key}

    def stats(self) -> dict[str, Any]:
        """The counters (as GET /_emulator/stats); flushes the request log first."""
        assert self.app is not None
        self.request_log.flush()
        stats: Stats = self.app.state.stats
        return stats.snapshot()

    def reset_stats(self) -> None:
        assert self.app is not None
        self.app.state.stats.reset()

    def set_faults(self, **changes: float | str) -> Faults:
        """Change some faults now (same names as Faults' fields); returns the new faults."""
        self.settings.faults.update(dict(changes))
        return self.settings.faults

    def reset_faults(self) -> None:
        """All faults off, throttling windows emptied, provisioning delay and upload-session
        lifetime back to their start values."""
        assert self.app is not None
        reset_faults(self.app)

    def approve_device_code(self, user_code: str, upn: str) -> None:
        """Sign `upn` in for a pending device code; raises KeyError / LookupError."""
        self.identity.approve_device_code(user_code, upn)

    def decline_device_code(self, user_code: str) -> None:
        self.identity.decline_device_code(user_code)
