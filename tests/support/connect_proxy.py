"""A TLS-intercepting HTTP CONNECT proxy for tests: real clients that only speak to
`https://graph.microsoft.com` (rclone, browsers, SDKs) reach the emulator through it.

    with ConnectProxy(ca_cert=ca, ca_key=ca_key, upstream=("127.0.0.1", port),
                      upstream_ca=ca) as proxy:
        env["HTTPS_PROXY"] = proxy.url          # http://127.0.0.1:PORT
        ...
        assert proxy.hosts == {"graph.microsoft.com"}

How a tunnel works: the client sends `CONNECT host:443`; the proxy answers 200, then plays the
TLS server for `host` with a leaf certificate signed by its own CA (minted for that host on first
use and cached; or one fixed leaf given as `leaf=(cert, key)`). Once the client's handshake is
done, the proxy opens TLS to `upstream` (verifying it against `upstream_ca`, by the requested host
name, so the upstream certificate must name it too: the emulator's does) with the ALPN protocol
the client chose, and relays the decrypted bytes both ways until either side closes. It does not
parse HTTP inside the tunnel, so HTTP/1.1 and HTTP/2 pass alike; every CONNECT goes to the same
upstream whatever host it names, which is what pointing a client at a local tenant needs.

The client must trust `ca_cert` (rclone `--ca-cert`, `SSL_CERT_FILE`, ...). In front of the
emulator, pass its `ca.pem` / `ca-key.pem`: the client then trusts one CA for the proxy and the
emulator alike, and any host can be intercepted, not only those on the emulator's certificate
(`leaf=(server.pem, server-key.pem)` would reuse that certificate instead). A test that needs
a proxy with a CA of its own passes that CA. Minted keys live in a private temporary directory
removed by `stop()`. Requests other than CONNECT get 405.

The proxy serves from one background thread running an asyncio loop, on 127.0.0.1 and a free
port; `stop()` closes the listener and every tunnel, and leaves no socket or file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CHUNK = 256 * 1024
_LEAF_DAYS = 30


class ConnectProxy:
    """A CONNECT proxy that terminates TLS with its own CA and relays to one TLS upstream.

    `ca_cert` / `ca_key`: PEM files of the CA that signs the leaf certificates (ignored for
    signing when `leaf` is given). `upstream`: (host, port) every tunnel is forwarded to.
    `upstream_ca`: PEM trust anchor for the upstream's certificate (None: the system store).
    After `start()`, `port` and `url` say where it listens; `connects` lists every CONNECT
    target (`host:port`) in arrival order and `hosts` the distinct host names.
    Not restartable: make a new one after `stop()`.
    """

    def __init__(
        self,
        *,
        ca_cert: Path,
        ca_key: Path | None,
        upstream: tuple[str, int],
        upstream_ca: Path | None = None,
        leaf: tuple[Path, Path] | None = None,
    ) -> None:
        if leaf is None and ca_key is None:
            raise ValueError("ConnectProxy needs ca_key to mint leaf certificates, or a leaf")
        self.ca_cert = Path(ca_cert)
        self.ca_key = Path(ca_key) if ca_key is not None else None
        self.upstream = upstream
        self.upstream_ca = upstream_ca
        self.leaf = leaf
        self.port = 0
        self.connects: list[str] = []
        self._lock = threading.Lock()
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.WriteTransport] = set()

    # -- life cycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy URL for HTTPS_PROXY / `proxies=`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def hosts(self) -> set[str]:
        """Distinct host names that were CONNECTed to."""
        with self._lock:
            return {target.rpartition(":")[0] for target in self.connects}

    def start(self) -> ConnectProxy:
        """Listen on 127.0.0.1 (a free port) and serve from a background thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("this proxy was already started")
        self._tmp = tempfile.TemporaryDirectory(prefix="connect-proxy-")
        self._thread = threading.Thread(target=self._run, name="connect-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None or self.port == 0:
            self.stop()
            raise RuntimeError(f"the CONNECT proxy failed to start: {self._error}")
        return self

    def stop(self) -> None:
        """Close the listener and every tunnel, remove minted keys. Idempotent."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is not None and loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stopping.set)
            thread.join(10)
        self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ConnectProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        async with server:
            await self._stopping.wait()
            server.close()
            # Abort rather than close: a graceful TLS close waits (up to 30 s) for the peer's
            # close_notify, which an idle keep-alive client never sends. The tunnels then end
            # on their own; cancelling them instead trips asyncio's stream callback.
            for transport in list(self._transports):
                transport.abort()
            if self._tasks:
                _, late = await asyncio.wait(self._tasks, timeout=5)
                for task in late:
                    task.cancel()
                if late:
                    await asyncio.wait(late)
            await server.wait_closed()

    # -- certificates ----------------------------------------------------------------------

    def _server_context(self, host: str) -> ssl.SSLContext:
        """The TLS server context presenting a certificate for `host` (cached per host)."""
        with self._lock:
            ctx = self._contexts.get(host)
            if ctx is not None:
                return ctx
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            cert, key = self.leaf if self.leaf is not None else self._mint(host)
            ctx.load_cert_chain(cert, key)
            self._contexts[host] = ctx
            return ctx

    def _mint(self, host: str) -> tuple[Path, Path]:
        """A leaf certificate for `host` signed by the CA, written to the private temp dir."""
        assert self._tmp is not None and self.ca_key is not None
        ca = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        if not isinstance(ca_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self.ca_key}: unsupported CA key type")
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        stem = Path(self._tmp.name) / host.replace(":", "_")
        cert_path, key_path = stem.with_suffix(".pem"), stem.with_suffix(".key")
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, key_path

    def _upstream_context(self, alpn: str | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(
            cafile=str(self.upstream_ca) if self.upstream_ca is not None else None
        )
        if alpn:
            ctx.set_alpn_protocols([alpn])
        return ctx

    # -- tunnels ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        raw = writer.transport
        self._transports.add(raw)
        try:
            target = await self._read_connect(reader, writer)
            if target is None:
                return
            host = target.rpartition(":")[0].strip("[]")
            with self._lock:
                self.connects.append(target)
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await writer.drain()
            await writer.start_tls(self._server_context(host))
            self._transports.add(writer.transport)
            ssl_object = writer.get_extra_info("ssl_object")
            alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            up_reader, upstream = await asyncio.open_connection(
                *self.upstream, ssl=self._upstream_context(alpn), server_hostname=host
            )
            self._transports.add(upstream.transport)
            await asyncio.gather(_pump(reader, upstream), _pump(up_reader, writer))
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, EOFError):
            pass  # a client or upstream that went away ends its tunnel, nothing more
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio's stream callback reports a cancelled handler)
        finally:
            for w in (upstream, writer):
                if w is not None:
                    w.close()
                    with contextlib.suppress(Exception):
                        await w.wait_closed()
                    self._transports.discard(w.transport)
            self._transports.discard(raw)
            self._tasks.discard(task)

    async def _read_connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> str | None:
        """The CONNECT target (`host:port`), or None after refusing anything else."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            return None
        method, _, rest = head.decode("latin-1").partition(" ")
        target = rest.partition(" ")[0]
        if method != "CONNECT" or ":" not in target:
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return None
        return target


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until EOF, then half-close (or close, over TLS) the other side."""
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        if writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()
        else:
            writer.close()
