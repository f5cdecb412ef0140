"""Certificates for tests: a company's TLS-inspecting CA, for proxies in front of the emulator."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from sharelift.emulator.certs import make_ca as make_ca_certificate


def make_ca(folder: Path) -> tuple[Path, Path]:
    """A CA of its own (a TLS-inspecting proxy's, "Corp TLS Inspection CA"): its certificate
    and key as PEM files in `folder`."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corp TLS Inspection CA")])
    cert, key = make_ca_certificate(name, days=1, path_length=None)
    cert_path, key_path = folder / "corp-ca.pem", folder / "corp-ca-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
