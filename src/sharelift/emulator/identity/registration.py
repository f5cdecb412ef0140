"""The tenant's app registration and the keys behind it, persisted in the data folder.

`identity.json` (0600) holds the tenant id, the one registered app (client id and secret) and
the admin key; `signing-key.pem` (0600) the RSA key that signs every token. The app's
certificate (for certificate sign-in) is made by `certs.py`; `AppCertificate` is what the token
endpoint needs of it to check a client assertion.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sharelift.emulator.certs import write_private
from sharelift.errors import EmulatorError


@dataclass(frozen=True)
class Registration:
    """The tenant and its one registered app, as persisted in identity.json."""

    tenant_id: str
    client_id: str
    client_secret: str
    admin_key: str
    signing_kid: str


def load_or_create_registration(data_dir: Path) -> tuple[Registration, rsa.RSAPrivateKey]:
    """Read identity.json and signing-key.pem from `data_dir`, creating them on first start.

    Raises EmulatorError naming the file when an existing one is unreadable.
    """
    reg_path, key_path = data_dir / "identity.json", data_dir / "signing-key.pem"
    if reg_path.exists() and key_path.exists():
        try:
            raw = json.loads(reg_path.read_text("utf-8"))
            reg = Registration(**{k: str(raw[k]) for k in Registration.__dataclass_fields__})
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EmulatorError(f"{reg_path}: unreadable emulator identity ({exc})") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise EmulatorError(f"{key_path}: not an RSA key")
        return reg, key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    reg = Registration(
        tenant_id=str(uuid.uuid4()),
        client_id=str(uuid.uuid4()),
        # Entra ID secrets are 40 characters of a URL-safe alphabet with a `~`; ours look alike.
        client_secret=secrets.token_urlsafe(30)[:40],
        admin_key=secrets.token_urlsafe(24),
        signing_kid=secrets.token_hex(8),
    )
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_private(reg_path, json.dumps(reg.__dict__, indent=2).encode())
    return reg, key


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class AppCertificate:
    """The registered app's certificate as the token endpoint checks assertions against it:
    its public key and its thumbprints (`x5t`, SHA-1, and `x5t#S256`, base64url)."""

    public_key: rsa.RSAPublicKey
    thumbprints: frozenset[str]

    @classmethod
    def load(cls, cert_file: Path) -> AppCertificate:
        """Read a PEM certificate; raises EmulatorError when it does not hold an RSA key."""
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        public = cert.public_key()
        if not isinstance(public, rsa.RSAPublicKey):
            raise EmulatorError(f"{cert_file}: the app certificate must hold an RSA key")
        sha1 = cert.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is SHA-1 by definition
        return cls(public, frozenset({b64url(sha1), b64url(cert.fingerprint(hashes.SHA256()))}))
