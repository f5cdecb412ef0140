"""Where a request goes (the environment's proxy) and the one line that says it got no answer."""

from __future__ import annotations

import httpx
import pytest
import requests

from sharelift.network import Timeouts, describe_failure, host_of, proxy_for


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_proxy_is_shown_without_its_credentials(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HTTPS_PROXY", "http://alice:s3cret@proxy.corp:3128")
    assert proxy_for("https://graph.microsoft.com/v1.0/me") == "http://proxy.corp:3128"


def test_no_proxy_names_and_domains_go_direct(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HTTPS_PROXY", "proxy.corp:3128")
    clean_env.setenv("NO_PROXY", "localhost, .sharepoint.com,login.microsoftonline.com:443")
    assert proxy_for("https://contoso-my.sharepoint.com/personal/x") is None
    assert proxy_for("https://login.microsoftonline.com/t") is None
    assert proxy_for("https://graph.microsoft.com/v1.0") == "http://proxy.corp:3128"
    clean_env.setenv("NO_PROXY", "*")
    assert proxy_for("https://graph.microsoft.com/v1.0") is None


def test_no_proxy_set_means_direct(clean_env: pytest.MonkeyPatch) -> None:
    assert proxy_for("https://graph.microsoft.com/v1.0") is None
    assert host_of("https://graph.microsoft.com:443/v1.0") == "graph.microsoft.com"
    assert host_of("https://127.0.0.1:8443/v1.0") == "127.0.0.1:8443"


def test_each_failure_says_what_to_check(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    url = "https://contoso-my.sharepoint.com/personal/m/_api/v2.0/up?tempauth=SECRET"
    timeouts = Timeouts(connect=5, read=60)
    lines = {
        "connect": describe_failure(httpx.ConnectTimeout("x"), url, timeouts),
        "read": describe_failure(httpx.ReadTimeout("x"), url, timeouts),
        "refused": describe_failure(httpx.ConnectError("x"), url, timeouts),
        "requests": describe_failure(requests.exceptions.ConnectTimeout("x"), url, timeouts),
    }
    for line in lines.values():
        assert "contoso-my.sharepoint.com" in line and "http://proxy.corp:3128" in line
        assert "SECRET" not in line and "personal" not in line and "\n" not in line
    assert "within 5 s" in lines["connect"] and "connect_timeout" in lines["connect"]
    assert "within 60 s" in lines["read"] and "read_timeout" in lines["read"]
    assert "within 5 s" in lines["requests"]
    assert "cannot connect" in lines["refused"]
