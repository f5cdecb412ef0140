"""The emulator's new knobs as the command line and the settings read them, and how the connect
map's transport decides between a proxy and the mapped address."""

from __future__ import annotations

import httpx
import pytest

from sharelift.config import OPTIONS
from sharelift.emulator.settings import DEFAULT_REPLACE_NOT_FOUND_RATE, Faults, check_selectors
from sharelift.graph.connect import ConnectTransport, proxied, split_address


def test_the_flag_defaults_are_the_settings_defaults() -> None:
    assert OPTIONS["emulator_replace_not_found_rate"].default == DEFAULT_REPLACE_NOT_FOUND_RATE
    assert Faults().replace_not_found_rate == DEFAULT_REPLACE_NOT_FOUND_RATE
    assert OPTIONS["emulator_office_enrichment"].default is True
    assert OPTIONS["emulator_never_answer"].default == ""


def test_never_answer_selectors() -> None:
    assert check_selectors(" kind:get , signin,,upload-url ") == "kind:get,signin,upload-url"
    assert check_selectors("") == ""
    for bad in ("sometimes", "kind:", "colour:red", "host"):
        with pytest.raises(ValueError, match="never_answer"):
            check_selectors(bad)
    faults = Faults()
    faults.update({"never_answer": "path:/v1.0/*"})
    assert faults.never_answer == "path:/v1.0/*"
    with pytest.raises(ValueError, match="text"):
        faults.update({"never_answer": 1})
    with pytest.raises(ValueError, match="number"):
        faults.update({"replace_not_found_rate": "often"})


def test_addresses() -> None:
    assert split_address("127.0.0.1:8443") == ("127.0.0.1", 8443)
    assert split_address("[::1]:8443") == ("::1", 8443)
    for bad in ("127.0.0.1", ":80", "host:http"):
        with pytest.raises(ValueError):
            split_address(bad)


@pytest.mark.parametrize(
    ("no_proxy", "host", "through_proxy"),
    [
        ("", "contoso-my.sharepoint.com", True),
        ("*", "contoso-my.sharepoint.com", False),
        ("sharepoint.com", "contoso-my.sharepoint.com", False),
        ("sharepoint.com", "sharepoint.com", False),
        (".sharepoint.com", "sharepoint.com", True),
        (".sharepoint.com", "contoso.sharepoint.com", False),
        ("*.sharepoint.com", "contoso.sharepoint.com", False),
        ("127.0.0.1, example.com", "contoso.sharepoint.com", True),
        ("https://contoso.sharepoint.com", "contoso.sharepoint.com", False),
        ("notsharepoint.com", "sharepoint.com", True),
    ],
)
def test_which_hosts_the_environment_proxies(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, host: str, through_proxy: bool
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.setenv("no_proxy", no_proxy)
    assert proxied(host) is through_proxy


def test_no_proxy_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not proxied("contoso.sharepoint.com")


def test_the_transport_keeps_the_host_for_tls_and_the_host_header() -> None:
    seen: list[httpx.Request] = []

    class Recorder(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(204)

    transport = ConnectTransport("127.0.0.1:8443")
    transport._inner = Recorder()  # type: ignore[assignment]  # the network, for this test
    with httpx.Client(mounts={"https://contoso.sharepoint.com": transport}) as client:
        answer = client.put(
            "https://contoso.sharepoint.com/sites/T/_api/x?tempauth=t", content=b"b"
        )
    assert answer.status_code == 204
    (sent,) = seen
    assert (sent.url.host, sent.url.port) == ("127.0.0.1", 8443)
    assert sent.url.path == "/sites/T/_api/x" and sent.url.params["tempauth"] == "t"
    assert sent.headers["host"] == "contoso.sharepoint.com"
    assert sent.extensions["sni_hostname"] == "contoso.sharepoint.com"
    assert answer.request.url.host == "contoso.sharepoint.com"  # the caller sees its own URL
