"""The tests' TLS-intercepting CONNECT proxy (tests/support/connect_proxy.py) in front of the
emulator: a client that only knows graph.microsoft.com reaches the emulator through it."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from sharelift.emulator.server import EmulatorServer
from support.connect_proxy import ConnectProxy


def _proxy_for(server: EmulatorServer) -> ConnectProxy:
    """A proxy that mints leaves with the emulator's CA and forwards to the emulator."""
    ca = Path(server.info["ca_file"])
    return ConnectProxy(
        ca_cert=ca,
        ca_key=server.data_dir / "ca-key.pem",
        upstream=("127.0.0.1", server.port),
        upstream_ca=ca,
    )


@pytest.mark.parametrize("http2", [True, False])
def test_graph_host_reaches_the_emulator(
    emulator: EmulatorServer, app_token: Callable[..., str], http2: bool
) -> None:
    token = app_token(emulator)
    drive_id = next(u["drive_id"] for u in emulator.info["users"] if u["drive_id"])
    with (
        _proxy_for(emulator) as proxy,
        httpx.Client(
            proxy=proxy.url,
            verify=ssl.create_default_context(cafile=emulator.info["ca_file"]),
            http2=http2,
            timeout=30,
        ) as client,
    ):
        answer = client.get(
            f"https://graph.microsoft.com/v1.0/drives/{drive_id}/root",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert answer.json()["root"] == {}
        # links the emulator hands out name the host the client asked for
        assert answer.json()["@odata.context"].startswith("https://graph.microsoft.com/")
        assert proxy.hosts == {"graph.microsoft.com"}
        assert proxy.connects == ["graph.microsoft.com:443"]


def test_mints_a_leaf_for_the_requested_host(emulator: EmulatorServer) -> None:
    ca = x509.load_pem_x509_certificate(Path(emulator.info["ca_file"]).read_bytes())
    context = ssl.create_default_context(cafile=emulator.info["ca_file"])
    with _proxy_for(emulator) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as s:
        s.sendall(b"CONNECT files.example.test:443 HTTP/1.1\r\nHost: files.example.test\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200 ")
        with context.wrap_socket(s, server_hostname="files.example.test") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    leaf = x509.load_der_x509_certificate(der)
    assert leaf.issuer == ca.subject
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["files.example.test"]
    assert proxy.hosts == {"files.example.test"}


def test_a_plain_request_is_refused(emulator: EmulatorServer) -> None:
    with _proxy_for(emulator) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as s:
        s.sendall(b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 405 ")
    assert proxy.connects == []


def test_stop_closes_open_tunnels(
    emulator_factory: Callable[..., EmulatorServer], app_token: Callable[..., str]
) -> None:
    server = emulator_factory()
    proxy = _proxy_for(server).start()
    with httpx.Client(
        proxy=proxy.url,
        verify=ssl.create_default_context(cafile=server.info["ca_file"]),
        timeout=30,
    ) as client:
        answer = client.get(
            "https://graph.microsoft.com/v1.0/users",
            headers={"Authorization": f"Bearer {app_token(server)}"},
        )
        assert answer.status_code == 200
        proxy.stop()  # the keep-alive tunnel is still open here
        proxy.stop()
        with pytest.raises(httpx.TransportError):
            client.get("https://graph.microsoft.com/v1.0/users")
