"""Serves the dashboard over HTTP with Hypercorn, in a background thread with its own event loop
(`start()` / `stop()`: beside a run, in tests) or until Ctrl-C (`serve_forever()`: the
`sharelift dashboard` command).

The listening socket is bound before Hypercorn starts, so port 0 becomes a known free port and
the address printed at start is the one that answers. Bound to a loopback address, the
dashboard asks for no token; bound to any other, it needs one (`token`, or a new random one),
which `url` carries for the first visit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import socket
import threading
from typing import Any, cast

from hypercorn.asyncio import serve
from hypercorn.config import Config

from sharelift.dashboard.app import create_app
from sharelift.dashboard.live import Live
from sharelift.errors import DashboardError

log = logging.getLogger("sharelift.dashboard")


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class DashboardServer:
    """The dashboard over the state store at `state` (a path, or a `postgresql://` URL), on
    `host:port` (see the module docstring). `interval` is the seconds between two readings of
    the store."""

    def __init__(
        self,
        state: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        interval: float = 2.0,
    ) -> None:
        self.state = state
        self.host = host
        self.token = None if is_loopback(host) else (token or secrets.token_urlsafe(24))
        self.live = Live(state, interval=interval)
        self.port = port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """The address to open (with the token, for the first visit, when one is needed)."""
        host = self.host
        if host in ("0.0.0.0", ""):  # noqa: S104 - comparing, not binding
            host = socket.gethostname()
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def _bind(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host.strip("[]"), self.port))
            sock.listen(64)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise DashboardError(
                f"the dashboard cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from exc
        self._sock = sock
        self.port = int(sock.getsockname()[1])

    def _config(self) -> Config:
        assert self._sock is not None
        config = Config()
        # Hypercorn adopts the descriptor and closes it at shutdown.
        config.bind = [f"fd://{self._sock.detach()}"]
        self._sock = None
        config.accesslog = None
        config.errorlog = log
        config.graceful_timeout = 1.0
        config.keep_alive_timeout = 30.0
        return config

    @staticmethod
    def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # A page that went away, or an event stream cut at shutdown, is the browser's business;
        # anything else is reported as usual.
        exc = context.get("exception")
        if isinstance(exc, asyncio.CancelledError | ConnectionError | TimeoutError):
            return
        loop.default_exception_handler(context)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(self._loop_exception)
        self._shutdown = asyncio.Event()
        app = create_app(self.live, token=self.token)
        task = asyncio.ensure_future(
            serve(cast(Any, app), self._config(), shutdown_trigger=self._shutdown.wait)
        )
        await asyncio.sleep(0)
        self._ready.set()
        await task

    def _run_thread(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
        finally:
            self._ready.set()

    def start(self) -> DashboardServer:
        """Bind and serve from a background thread; returns self. Raises DashboardError
        when the address cannot be used."""
        self._bind()
        self._thread = threading.Thread(target=self._run_thread, name="dashboard", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise DashboardError(f"the dashboard failed to start: {self._error}")
        return self

    def stop(self) -> None:
        """End the event streams and stop serving. Idempotent."""
        thread, loop, shutdown = self._thread, self._loop, self._shutdown
        if thread is not None and thread.is_alive() and loop is not None and shutdown is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(self.live.closing.set)
                loop.call_soon_threadsafe(shutdown.set)
            thread.join(10)
        self._thread = None

    def serve_forever(self) -> None:
        """Serve until KeyboardInterrupt, then stop cleanly."""
        if self._thread is None:
            self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
