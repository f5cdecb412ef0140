"""Credential selection and certificate loading (the MSAL flows run against the emulator in
tests/integration/test_auth_emulator.py)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from sharelift.auth import (
    AuthSettings,
    StaticToken,
    _Cached,
    build_credential,
    load_certificate,
)
from sharelift.errors import AuthError


def _key_and_cert() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sharelift-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def test_pre_acquired_token() -> None:
    cred = build_credential(AuthSettings(method="token", token="Bearer abc.def.ghi"))
    assert cred.token(["https://graph.microsoft.com/.default"]) == "abc.def.ghi"
    assert "abc" not in repr(cred) and "abc" not in repr(AuthSettings("token", token="abc"))


def test_token_method_without_a_token() -> None:
    with pytest.raises(AuthError, match="needs the access token") as missing:
        StaticToken(" ")
    assert missing.value.option == "access_token"


@pytest.mark.parametrize(
    ("settings", "option", "needle"),
    [
        (AuthSettings(method="password"), "auth", "choose one of"),
        (AuthSettings(method="secret", authority="https://login/t"), "client_id", "client id"),
        (AuthSettings(method="secret", client_id="c"), "tenant", "tenant"),
        (
            AuthSettings(method="secret", client_id="c", authority="https://l/t"),
            "client_secret",
            "client secret",
        ),
        (
            AuthSettings(method="certificate", client_id="c", authority="https://l/t"),
            "certificate",
            "certificate file",
        ),
    ],
)
def test_missing_pieces_are_named(settings: AuthSettings, option: str, needle: str) -> None:
    """The option at fault is named (the command line turns it into a flag); no flag is."""
    with pytest.raises(AuthError, match=needle) as missing:
        build_credential(settings)
    assert missing.value.option == option
    assert "--" not in str(missing.value)


def test_secret_never_in_repr() -> None:
    s = AuthSettings(method="secret", client_id="c", secret="s3cr3t-value")
    assert "s3cr3t-value" not in repr(s)


def test_pem_certificate(tmp_path: Path) -> None:
    key, cert = _key_and_cert()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)
    path = tmp_path / "app.pem"
    path.write_bytes(pem)
    loaded = load_certificate(AuthSettings(method="certificate", certificate_path=path))
    assert loaded["thumbprint"] == cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
    assert "PRIVATE KEY" in loaded["private_key"]


def test_pfx_certificate_with_password(tmp_path: Path) -> None:
    key, cert = _key_and_cert()
    data = pkcs12.serialize_key_and_certificates(
        b"app", key, cert, None, serialization.BestAvailableEncryption(b"pw")
    )
    path = tmp_path / "app.pfx"
    path.write_bytes(data)
    ok = AuthSettings(method="certificate", certificate_path=path, certificate_password="pw")
    assert len(load_certificate(ok)["thumbprint"]) == 40
    wrong = AuthSettings(method="certificate", certificate_path=path, certificate_password="no")
    with pytest.raises(AuthError, match=r"app\.pfx"):
        load_certificate(wrong)


def test_certificate_errors_name_the_file(tmp_path: Path) -> None:
    missing = AuthSettings(method="certificate", certificate_path=tmp_path / "nope.pem")
    with pytest.raises(AuthError, match=r"nope\.pem"):
        load_certificate(missing)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(AuthError, match=r"junk\.pem"):
        load_certificate(AuthSettings(method="certificate", certificate_path=junk))


def test_token_cache_is_private(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "tokens.json"
    cache = _Cached(path)
    cache.cache.has_state_changed = True
    cache.save()
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)
    path.chmod(0o644)
    with pytest.raises(AuthError, match="readable by others"):
        _Cached(path)


def test_an_unreachable_identity_service_names_the_host_and_the_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno

    from requests.exceptions import ConnectionError as Unreachable

    from sharelift.auth import _unreachable

    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    settings = AuthSettings("secret", authority="https://login.microsoftonline.com/contoso.com")
    refused = Unreachable(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    direct = _unreachable(refused, settings)
    assert str(direct) == (
        "sign-in failed: cannot connect to login.microsoftonline.com (no proxy) (Connection "
        "refused); check the network, DNS and the proxy settings (HTTPS_PROXY, NO_PROXY)"
    )
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pa55word@proxy.corp.example:3128")
    proxied = str(_unreachable(refused, settings))
    assert "through the proxy http://proxy.corp.example:3128" in proxied
    assert "pa55word" not in proxied and "user" not in proxied
