"""The emulator's own PKI: a CA, the HTTPS server certificate, and the registered app's certificate.

Everything is generated once into the data directory and reused on every later start, so a client
that trusts `ca.pem` keeps trusting the emulator across restarts. Private keys are written 0600.

Files (all PEM):
    ca.pem / ca-key.pem           the CA (10 years); clients pass ca.pem as their trust anchor
    server.pem / server-key.pem   the server certificate, signed by the CA; it is re-issued when
                                  the tenant name changes (its SANs name the tenant's hosts)
    app.pem / app-key.pem         the registered app's certificate credential (self-signed, as
                                  Entra ID accepts), whose SHA-1 thumbprint MSAL sends as `x5t`
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sharelift.errors import EmulatorError

_CA_DAYS = 3650
_LEAF_DAYS = 825  # the longest validity Apple's TLS policy accepts for a server certificate

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class CertPaths:
    """Where the emulator's certificates and keys live, and the app certificate's thumbprints."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    app_cert: Path
    app_key: Path
    app_thumbprint_sha1: str
    """Hex, upper case, as the Azure portal shows it (MSAL's `thumbprint`)."""
    app_thumbprint_sha256: str


def server_hostnames(tenant: str) -> list[str]:
    """DNS names on the server certificate, besides the loopback addresses."""
    return [
        "localhost",
        "graph.microsoft.com",
        "login.microsoftonline.com",
        f"{tenant}.sharepoint.com",
        f"{tenant}-my.sharepoint.com",
        f"{tenant}-admin.sharepoint.com",
    ]


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by the owner only (0600), replacing it atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise EmulatorError(f"{path}: unsupported key type")
    return key


def _make_ca(tenant: str) -> tuple[x509.Certificate, PrivateKey]:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sharelift emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"sharelift emulator CA ({tenant})"),
        ]
    )
    return make_ca(name, days=_CA_DAYS, path_length=0)


def make_ca(
    name: x509.Name, *, days: float, path_length: int | None
) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA certificate named `name` (P-256, SHA-256), valid from five minutes ago
    for `days`, and its key: the emulator's own, or another for a test (a TLS-inspecting
    proxy's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_server(
    tenant: str, ca_cert: x509.Certificate, ca_key: PrivateKey
) -> tuple[x509.Certificate, PrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in server_hostnames(tenant)]
    sans += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _make_app_cert(tenant: str) -> tuple[x509.Certificate, PrivateKey]:
    # RSA: MSAL signs its client assertion with RS256 (SHA-1 thumbprint) or PS256 (SHA-256).
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sharelift app ({tenant})")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _san_names(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return set(ext.value.get_values_for_type(x509.DNSName))


def ensure_certs(data_dir: Path, tenant: str) -> CertPaths:
    """Create whatever is missing of the CA, server and app certificates; return their paths.

    Idempotent: existing files are reused. The server certificate is re-issued (by the same CA)
    when it is missing, about to expire, or does not name this tenant's hosts.
    Raises EmulatorError when an existing file cannot be read.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    ca_cert_p, ca_key_p = data_dir / "ca.pem", data_dir / "ca-key.pem"
    srv_cert_p, srv_key_p = data_dir / "server.pem", data_dir / "server-key.pem"
    app_cert_p, app_key_p = data_dir / "app.pem", data_dir / "app-key.pem"
    try:
        if ca_cert_p.exists() and ca_key_p.exists():
            ca_cert = x509.load_pem_x509_certificate(ca_cert_p.read_bytes())
            ca_key = _load_key(ca_key_p)
        else:
            ca_cert, ca_key = _make_ca(tenant)
            write_private(ca_key_p, _key_pem(ca_key))
            ca_cert_p.write_bytes(_cert_pem(ca_cert))
            srv_cert_p.unlink(missing_ok=True)  # a new CA invalidates the old server certificate

        renew = True
        if srv_cert_p.exists() and srv_key_p.exists():
            srv = x509.load_pem_x509_certificate(srv_cert_p.read_bytes())
            fresh = srv.not_valid_after_utc > _now() + dt.timedelta(days=7)
            renew = not fresh or _san_names(srv) != set(server_hostnames(tenant))
        if renew:
            srv, srv_key = _make_server(tenant, ca_cert, ca_key)
            write_private(srv_key_p, _key_pem(srv_key))
            srv_cert_p.write_bytes(_cert_pem(srv))

        if app_cert_p.exists() and app_key_p.exists():
            app_cert = x509.load_pem_x509_certificate(app_cert_p.read_bytes())
        else:
            app_cert, app_key = _make_app_cert(tenant)
            write_private(app_key_p, _key_pem(app_key))
            app_cert_p.write_bytes(_cert_pem(app_cert))
    except (OSError, ValueError) as exc:
        raise EmulatorError(f"cannot prepare certificates in {data_dir}: {exc}") from exc
    return CertPaths(
        ca_cert=ca_cert_p,
        ca_key=ca_key_p,
        server_cert=srv_cert_p,
        server_key=srv_key_p,
        app_cert=app_cert_p,
        app_key=app_key_p,
        app_thumbprint_sha1=app_cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303
        app_thumbprint_sha256=app_cert.fingerprint(hashes.SHA256()).hex().upper(),
    )
