"""A proxy that accepts every connection and never answers: what a broken company proxy (or a
firewall that swallows packets after the handshake) looks like to a client.

    with SilentProxy() as proxy:
        env["HTTPS_PROXY"] = proxy.url      # http://127.0.0.1:PORT
        ...
        assert proxy.accepted >= 1

It reads whatever is sent (so the client's writes never block) and sends nothing back, until
`stop()` closes the listener and every connection. It serves from one background thread.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from types import TracebackType


class SilentProxy:
    """Accepts TCP connections on 127.0.0.1 and never answers. `accepted` counts them."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="silent-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SilentProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._listener.close()

    def __enter__(self) -> SilentProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        self._listener.setblocking(False)
        selector.register(self._listener, selectors.EVENT_READ)
        open_: list[socket.socket] = []
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._listener:
                        conn, _ = self._listener.accept()
                        conn.setblocking(False)
                        self.accepted += 1
                        open_.append(conn)
                        selector.register(conn, selectors.EVENT_READ)
                        continue
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:  # the client gave up
                        selector.unregister(sock)
                        sock.close()
                        open_.remove(sock)
        finally:
            for conn in open_:
                with contextlib.suppress(OSError):
                    conn.close()
            selector.close()
